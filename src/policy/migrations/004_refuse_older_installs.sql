-- core 004: an older Tenantry never downgrades this schema. The install of before the versioned
-- schema ran its whole SQL in one transaction that re-created every function with CREATE OR
-- REPLACE (the context functions without core 002's previous-key check, ending a rotation's
-- overlap at once) and wrote its install digest into tenantry.meta. Refusing that row makes such
-- an install fail as a whole, changing nothing; the constraint's name is what its operator reads.
-- Versioned installs never write these keys (their grants step deletes them), and refuse to run
-- over a database that records a migration they do not know (installer.ts).
DELETE FROM tenantry.meta WHERE key IN ('version', 'install_digest');
ALTER TABLE tenantry.meta DROP CONSTRAINT IF EXISTS schema_newer_than_this_tenantry_install;
ALTER TABLE tenantry.meta ADD CONSTRAINT schema_newer_than_this_tenantry_install
  CHECK (key NOT IN ('version', 'install_digest'));
