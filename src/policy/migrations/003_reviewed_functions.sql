-- core 003: the allow-list of reviewed SECURITY DEFINER functions (`tenantry doctor
-- accept-function`). One row per function the app role can execute, bound to the hash of the body
-- a reviewer accepted, so a changed body is reported again. Owned by the owner role (migrations
-- run as it), readable by nobody else.
CREATE TABLE IF NOT EXISTS tenantry.reviewed_functions (
  signature text PRIMARY KEY,
  body_sha256 text NOT NULL CHECK (body_sha256 ~ '^[0-9a-f]{64}$'),
  reason text NOT NULL CHECK (length(btrim(reason)) > 0),
  reviewed_by name NOT NULL DEFAULT current_user,
  reviewed_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON tenantry.reviewed_functions FROM PUBLIC;
-- closed like every table the event trigger sees created (an upgrade has it, a fresh install runs
-- its migrations before it): no policy, and the owner role bypasses RLS
ALTER TABLE tenantry.reviewed_functions ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
