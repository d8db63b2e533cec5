import { libraryMigrations, renderMigration } from '../../policy/library-migrations.js';

/**
 * The migration bookkeeping of one database (the `migrate` feature's library migrations,
 * src/tiers/migrate/migrations/), created by `tenantry install` and, for databases installed
 * before it existed, by the migrator itself as the owner role:
 *
 * - `tenantry.schema_migrations`: which migration each target of this database has applied.
 *   `target` is the schema the tenant migrations ran in: a tenant's schema, or the database's
 *   first data schema for the database itself (global and tenant migrations).
 * - `tenantry.migration_failures`: each target's last failure, cleared when it next succeeds.
 *
 * Idempotent (CREATE … IF NOT EXISTS).
 */
export function migrateSql(roles: { appRole: string }): string {
  return libraryMigrations()
    .filter((m) => m.feature === 'migrate')
    .map((m) => renderMigration(m, { appRole: roles.appRole, ownerRole: roles.appRole }))
    .join('\n');
}
