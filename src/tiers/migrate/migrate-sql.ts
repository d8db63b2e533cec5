import { quoteIdent } from '../../policy/identifiers.js';

/**
 * The migration bookkeeping of one database, created by `tenantry install` (and, for databases
 * installed before it existed, by the migrator itself as the owner role):
 *
 * - `tenantry.schema_migrations`: which migration each target of this database has applied.
 *   `target` is the schema the tenant migrations ran in: a tenant's schema, or the database's
 *   first data schema for the database itself (global and tenant migrations).
 * - `tenantry.migration_failures`: each target's last failure, cleared when it next succeeds.
 */
export function migrateSql(roles: { appRole: string }): string {
  const app = quoteIdent(roles.appRole);
  return `
-- migrations: what each location of this database has applied
CREATE TABLE IF NOT EXISTS tenantry.schema_migrations (
  target text NOT NULL,
  version integer NOT NULL,
  name text NOT NULL,
  scope text NOT NULL CHECK (scope IN ('global', 'tenant')),
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (target, version)
);
CREATE TABLE IF NOT EXISTS tenantry.migration_failures (
  target text PRIMARY KEY,
  version integer,
  name text,
  sqlstate text,
  message text NOT NULL,
  failed_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON tenantry.schema_migrations, tenantry.migration_failures FROM PUBLIC, ${app};`;
}
