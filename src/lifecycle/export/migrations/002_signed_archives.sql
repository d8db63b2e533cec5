-- export 002: signed archives, and failed imports closed with their reason.
--
-- The key export archives are signed with (HMAC-SHA256 over the manifest's bytes; the manifest
-- holds every table's SHA-256, row and byte counts, which the import checks entry by entry): 32
-- random bytes made on first use, readable by the owner role only. Kept apart from the purge
-- reports' key (tenantry_private.purge_keys): one key, one purpose.
CREATE TABLE IF NOT EXISTS tenantry_private.archive_keys (
  id integer PRIMARY KEY CHECK (id > 0),
  secret bytea NOT NULL CHECK (length(secret) = 32),
  created_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON tenantry_private.archive_keys FROM PUBLIC, :TENANTRY_APP_ROLE;
ALTER TABLE tenantry_private.archive_keys ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- an import that fails is closed as 'failed' (its reason in `error`), after what it committed
-- for a tenant the catalog never showed is removed; 'abandoned' stays for one a crash left open.
-- `signature`: whether the archive's signature was verified, or its absence allowed.
ALTER TABLE tenantry.tenant_imports DROP CONSTRAINT IF EXISTS tenant_imports_step_check;
ALTER TABLE tenantry.tenant_imports ADD CONSTRAINT tenant_imports_step_check
  CHECK (step IN ('loading', 'loaded', 'done', 'abandoned', 'failed'));
ALTER TABLE tenantry.tenant_imports ADD COLUMN IF NOT EXISTS signature text
  CHECK (signature IN ('verified', 'unsigned', 'unverifiable'));
