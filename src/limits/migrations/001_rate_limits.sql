-- limits 001: the counters of tenantry/limits (src/limits) and the doorbell that tells every
-- instance a tenant's plan or limits changed. Owner role only: the limiter reaches the counters
-- and the catalog through the owner pool, never the app role.

-- rate-limiter-flexible's RateLimiterPostgres table, created here (reviewed DDL, one owner) rather
-- than by the library at run time (`tableCreated: true`). Its shape is the library's own: key,
-- points, expire (ms since the epoch). UNLOGGED: counters live for one window, so they need no
-- WAL; a crash empties the table, which only resets the current windows.
CREATE UNLOGGED TABLE IF NOT EXISTS tenantry_private.rate_limits (
  key varchar(255) PRIMARY KEY,
  points integer NOT NULL DEFAULT 0,
  expire bigint
);
-- the library deletes rows expired an hour ago every five minutes
CREATE INDEX IF NOT EXISTS rate_limits_expire_idx ON tenantry_private.rate_limits (expire);
REVOKE ALL ON tenantry_private.rate_limits FROM PUBLIC, :TENANTRY_APP_ROLE;
ALTER TABLE tenantry_private.rate_limits ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- A change of a tenant's plan or limit overrides (settings.plan, settings.limits) rings every
-- instance at commit, which forgets its cached limits. The payload is empty: no tenant id on the
-- wire (any role may LISTEN), and plan changes are rare enough that forgetting all is cheap.
CREATE OR REPLACE FUNCTION tenantry_private.rate_limits_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM pg_notify('tenantry_limits', '');
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION tenantry_private.rate_limits_changed() FROM PUBLIC;
DROP TRIGGER IF EXISTS rate_limits_changed ON tenantry.tenants;
CREATE TRIGGER rate_limits_changed
  AFTER UPDATE OF settings ON tenantry.tenants
  FOR EACH ROW
  WHEN (OLD.settings -> 'plan' IS DISTINCT FROM NEW.settings -> 'plan'
     OR OLD.settings -> 'limits' IS DISTINCT FROM NEW.settings -> 'limits')
  EXECUTE FUNCTION tenantry_private.rate_limits_changed();
