-- purge 001: the records of tenant purges (plan, progress, signed report) and the key that signs
-- the reports. Runs as the owner role. Idempotent.
--
-- One row per purge of a tenant. `report` is the report's exact text (JSON), signed as text: jsonb
-- would reorder its keys, and the signature covers bytes. The row outlives the tenant (no foreign
-- key): it is the proof that the tenant's data was removed, and names it by id and slug only.
CREATE TABLE IF NOT EXISTS tenantry.purges (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL,
  slug text NOT NULL,
  operator text NOT NULL CHECK (length(operator) BETWEEN 1 AND 200),
  state text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'completed')),
  -- the steps, with the rows each held when the purge began (kept across a resumed run)
  plan jsonb NOT NULL,
  options jsonb NOT NULL DEFAULT '{}',
  started_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  report text,
  -- 'hmac-sha256:<key id>:<hex>' over `report`
  signature text,
  CHECK ((state = 'completed') = (report IS NOT NULL AND signature IS NOT NULL AND finished_at IS NOT NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS purges_one_running ON tenantry.purges (tenant_id) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS purges_slug_idx ON tenantry.purges (slug, started_at DESC);
REVOKE ALL ON tenantry.purges FROM PUBLIC, :TENANTRY_APP_ROLE;
-- deny by default: no policy (the owner role bypasses RLS; the app role has no grant either)
ALTER TABLE tenantry.purges ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- The HMAC-SHA256 keys of purge reports (32 random bytes from the library, node:crypto). Only the
-- owner role reads them; a report names the key id it was signed with, so keys can be added later
-- without breaking older reports.
CREATE TABLE IF NOT EXISTS tenantry_private.purge_keys (
  id integer PRIMARY KEY CHECK (id > 0),
  secret bytea NOT NULL CHECK (length(secret) = 32),
  created_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON tenantry_private.purge_keys FROM PUBLIC, :TENANTRY_APP_ROLE;
ALTER TABLE tenantry_private.purge_keys ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- A deleted tenant cannot come back while its purge runs (TenantCatalog.restore, or any UPDATE of
-- its status): half its rows may be gone. Raised as TR010, which the catalog maps to TENANT_PURGING.
CREATE OR REPLACE FUNCTION tenantry.refuse_restore_while_purging() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF OLD.status = 'deleted' AND NEW.status <> 'deleted'
     AND EXISTS (SELECT FROM tenantry.purges p WHERE p.tenant_id = OLD.id AND p.state = 'running') THEN
    RAISE EXCEPTION 'tenantry: the tenant is being purged and cannot be restored' USING ERRCODE = 'TR010';
  END IF;
  RETURN NEW;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.refuse_restore_while_purging() FROM PUBLIC;
DROP TRIGGER IF EXISTS tenants_no_restore_while_purging ON tenantry.tenants;
CREATE TRIGGER tenants_no_restore_while_purging BEFORE UPDATE OF status ON tenantry.tenants
  FOR EACH ROW EXECUTE FUNCTION tenantry.refuse_restore_while_purging();
