-- activity 002: whether someone watches the live activity now (`tenantry tenants top`, the
-- console's top page). Pools made with `activityTag: 'watched'` tag their statements in
-- pg_stat_activity only while `until` is ahead: the tag's cost per statement is paid only while
-- someone looks. One row; written by the watchers (owner role), polled by each instance's
-- publisher (owner pool). The app role neither reads nor writes it.
CREATE TABLE IF NOT EXISTS tenantry_private.activity_watch (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  until timestamptz NOT NULL
);
REVOKE ALL ON tenantry_private.activity_watch FROM PUBLIC, :TENANTRY_APP_ROLE;
ALTER TABLE tenantry_private.activity_watch ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
