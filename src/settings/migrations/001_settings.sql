-- settings 001: per-tenant setting overrides and their history, feature flag state (global kill
-- switches and rollouts, per-tenant overrides) and its change log. Owner role only, like the job
-- ledgers: the control plane (CLI, admin API) writes through the owner pool, and each instance's
-- settings store reads there for the tenant in context; the app role has no access at all.

-- a tenant's overrides: one row per key it overrides (absent: the plan's or the defaults apply)
CREATE TABLE IF NOT EXISTS tenantry_private.tenant_settings (
  tenant_id uuid NOT NULL REFERENCES tenantry.tenants (id) ON DELETE CASCADE,
  key text NOT NULL CHECK (key ~ '^[A-Za-z][A-Za-z0-9_.-]{0,127}$'),
  value jsonb NOT NULL CHECK (length(value::text) <= 65536),
  -- the change (tenant_settings_heads.version) that wrote it
  version bigint NOT NULL CHECK (version > 0),
  PRIMARY KEY (tenant_id, key)
);

-- the tenant's last change number: 1, 2, 3… (the row lock orders concurrent writers)
CREATE TABLE IF NOT EXISTS tenantry_private.tenant_settings_heads (
  tenant_id uuid PRIMARY KEY REFERENCES tenantry.tenants (id) ON DELETE CASCADE,
  version bigint NOT NULL CHECK (version > 0)
);

-- who changed what, when, why, from what to what; one change (version) may touch several keys
-- (a rollback). old/new NULL: the key had / has no override.
CREATE TABLE IF NOT EXISTS tenantry_private.tenant_settings_history (
  tenant_id uuid NOT NULL REFERENCES tenantry.tenants (id) ON DELETE CASCADE,
  version bigint NOT NULL CHECK (version > 0),
  key text NOT NULL,
  action text NOT NULL CHECK (action IN ('set', 'unset', 'rollback')),
  old_value jsonb,
  new_value jsonb,
  actor text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
  reason text CHECK (length(reason) <= 500),
  changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (tenant_id, version, key)
);

-- a flag's deployment-wide state; a flag without a row runs as the code declares it
CREATE TABLE IF NOT EXISTS tenantry_private.feature_flags (
  flag text PRIMARY KEY CHECK (flag ~ '^[A-Za-z][A-Za-z0-9_.-]{0,127}$'),
  -- the kill switch: every tenant gets the flag's default, overrides and rollouts included
  killed boolean NOT NULL DEFAULT false,
  -- NULL: the rollout the code declares
  rollout_percent numeric(5, 2) CHECK (rollout_percent BETWEEN 0 AND 100),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS tenantry_private.tenant_flags (
  tenant_id uuid NOT NULL REFERENCES tenantry.tenants (id) ON DELETE CASCADE,
  flag text NOT NULL CHECK (flag ~ '^[A-Za-z][A-Za-z0-9_.-]{0,127}$'),
  value jsonb NOT NULL CHECK (length(value::text) <= 8192),
  PRIMARY KEY (tenant_id, flag)
);

-- every flag change; tenant_id NULL for a deployment-wide one (kill switch, rollout)
CREATE TABLE IF NOT EXISTS tenantry_private.flag_changes (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id uuid REFERENCES tenantry.tenants (id) ON DELETE CASCADE,
  flag text NOT NULL,
  change text NOT NULL CHECK (change IN ('kill', 'revive', 'rollout', 'override', 'clear')),
  old_value jsonb,
  new_value jsonb,
  actor text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
  reason text CHECK (length(reason) <= 500),
  changed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS flag_changes_tenant_idx ON tenantry_private.flag_changes (tenant_id, id);
CREATE INDEX IF NOT EXISTS flag_changes_flag_idx ON tenantry_private.flag_changes (flag, id);

ALTER TABLE tenantry_private.tenant_settings ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE tenantry_private.tenant_settings_heads ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE tenantry_private.tenant_settings_history ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE tenantry_private.feature_flags ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE tenantry_private.tenant_flags ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE tenantry_private.flag_changes ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
REVOKE ALL ON tenantry_private.tenant_settings, tenantry_private.tenant_settings_heads,
  tenantry_private.tenant_settings_history, tenantry_private.feature_flags, tenantry_private.tenant_flags,
  tenantry_private.flag_changes FROM PUBLIC, :TENANTRY_APP_ROLE;
