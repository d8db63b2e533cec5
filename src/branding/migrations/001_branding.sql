-- branding 001: each tenant's brand (display name, colours, e-mail sender name, logo), its
-- history and the logos the history refers to. Owner role only, like settings: the control plane
-- (CLI, admin API) writes through the owner pool and each instance reads the current tenant's
-- brand there (a sign-in page is served before anyone signed in); the app role has no access.
-- RLS is forced with no policy: only the owner (BYPASSRLS) reaches the rows.

-- the current brand: the checked fields as jsonb (the logo as its digest, type, size, dimensions)
CREATE TABLE IF NOT EXISTS tenantry_private.tenant_brands (
  tenant_id uuid PRIMARY KEY REFERENCES tenantry.tenants (id) ON DELETE CASCADE,
  brand jsonb NOT NULL CHECK (length(brand::text) <= 8192),
  -- the change (tenant_brand_history.version) that wrote it
  version bigint NOT NULL CHECK (version > 0),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- logos by content: a history entry names its logo by digest, so a rollback finds the bytes
CREATE TABLE IF NOT EXISTS tenantry_private.tenant_brand_logos (
  tenant_id uuid NOT NULL REFERENCES tenantry.tenants (id) ON DELETE CASCADE,
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  content_type text NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp')),
  bytes bytea NOT NULL CHECK (octet_length(bytes) BETWEEN 1 AND 1048576),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (tenant_id, sha256)
);

-- who changed the brand, when, why, from what to what (old NULL: the tenant had no brand)
CREATE TABLE IF NOT EXISTS tenantry_private.tenant_brand_history (
  tenant_id uuid NOT NULL REFERENCES tenantry.tenants (id) ON DELETE CASCADE,
  version bigint NOT NULL CHECK (version > 0),
  action text NOT NULL CHECK (action IN ('set', 'rollback', 'reset')),
  old_brand jsonb,
  new_brand jsonb,
  actor text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
  reason text CHECK (length(reason) <= 500),
  changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (tenant_id, version)
);

ALTER TABLE tenantry_private.tenant_brands ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE tenantry_private.tenant_brand_logos ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE tenantry_private.tenant_brand_history ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
REVOKE ALL ON tenantry_private.tenant_brands, tenantry_private.tenant_brand_logos,
  tenantry_private.tenant_brand_history FROM PUBLIC, :TENANTRY_APP_ROLE;
