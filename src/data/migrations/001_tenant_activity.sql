-- activity 001: what each tenant did in the database, as the application's pools measured it
-- (TenantActivity), published per instance and time window by TenantActivityPublisher through
-- the owner pool, and read by `tenantry tenants top`. Owner role only: the app role neither
-- reads another tenant's figures nor writes figures of its own.
CREATE TABLE IF NOT EXISTS tenantry_private.tenant_activity (
  -- which application process measured it (host:pid by default)
  instance text NOT NULL CHECK (length(instance) BETWEEN 1 AND 200),
  -- the tenant's id, or '' for statements without a tenant
  tenant_key text NOT NULL,
  window_start timestamptz NOT NULL,
  window_end timestamptz NOT NULL,
  db_time_ms double precision NOT NULL DEFAULT 0 CHECK (db_time_ms >= 0),
  statements bigint NOT NULL DEFAULT 0 CHECK (statements >= 0),
  rows bigint NOT NULL DEFAULT 0 CHECK (rows >= 0),
  errors bigint NOT NULL DEFAULT 0 CHECK (errors >= 0),
  timeouts bigint NOT NULL DEFAULT 0 CHECK (timeouts >= 0),
  checkouts bigint NOT NULL DEFAULT 0 CHECK (checkouts >= 0),
  waits bigint NOT NULL DEFAULT 0 CHECK (waits >= 0),
  wait_ms double precision NOT NULL DEFAULT 0 CHECK (wait_ms >= 0),
  -- connections held at window_end
  connections integer NOT NULL DEFAULT 0 CHECK (connections >= 0),
  PRIMARY KEY (instance, tenant_key, window_start)
);
CREATE INDEX IF NOT EXISTS tenant_activity_window_idx ON tenantry_private.tenant_activity (window_end);
CREATE INDEX IF NOT EXISTS tenant_activity_tenant_idx ON tenantry_private.tenant_activity (tenant_key);
REVOKE ALL ON tenantry_private.tenant_activity FROM PUBLIC, :TENANTRY_APP_ROLE;
ALTER TABLE tenantry_private.tenant_activity ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
