-- export 001: the journal of tenant imports (tenantry tenants import), in the home catalog.
-- An import loads a tenant's rows before the tenant exists in the catalog; this row says which
-- tenant id and target it used, so that a re-run after a crash finds and removes what an attempt
-- committed but never made visible. Runs as the owner role; the app role has no access.
CREATE TABLE IF NOT EXISTS tenantry.tenant_imports (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL,
  slug text NOT NULL CHECK (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'),
  -- SHA-256 of the archive's manifest: which archive this attempt loaded
  manifest_sha256 text NOT NULL CHECK (manifest_sha256 ~ '^[0-9a-f]{64}$'),
  target jsonb NOT NULL,
  replace boolean NOT NULL DEFAULT false,
  step text NOT NULL DEFAULT 'loading' CHECK (step IN ('loading', 'loaded', 'done', 'abandoned')),
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
-- one open import per slug (the import also holds an advisory lock on the slug while it runs)
CREATE UNIQUE INDEX IF NOT EXISTS tenant_imports_open_slug ON tenantry.tenant_imports (slug)
  WHERE step IN ('loading', 'loaded');
ALTER TABLE tenantry.tenant_imports ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
REVOKE ALL ON tenantry.tenant_imports FROM PUBLIC, :TENANTRY_APP_ROLE;
