import { readFile, stat } from 'node:fs/promises';
import type pg from 'pg';
import { InvalidArgumentError } from '../errors/tenantry-error.js';
import type { LocalDatabase } from '../embedded/local-database.js';
import type { PlacementTarget, Placements } from '../tiers/placements.js';
import { createTenantDatabase, createTenantSchema } from '../tiers/provision.js';
import { migrateLocation } from '../tiers/migrate/migrate-location.js';
import type { MigrationReport } from '../tiers/migrate/migrate-everywhere.js';
import { migrationsWithPlugins } from './plugins-definition.js';

/** What `--ddl` did to the target before the move. */
export type PreparedTarget =
  { kind: 'migrations'; report: MigrationReport } | { kind: 'sql' } | { kind: 'nothing'; reason: string };

/** Whether this deployment's databases are versioned by `tenantry migrate` (the catalog database has migration records). */
async function managedByMigrate(catalog: pg.Pool): Promise<boolean> {
  const { rows } = await catalog.query<{ managed: boolean }>(
    `select to_regclass('tenantry.schema_migrations') is not null
        and exists (select from tenantry.schema_migrations) as managed`,
  );
  return rows[0]!.managed;
}

/**
 * `tenants move --ddl <path>`: makes the target location ready before the move.
 *
 * - A migrations directory (`global/`, `tenant/`): the schema or database is created empty, then
 *   brought to the latest version by `migrateLocation` — the same transactions and bookkeeping
 *   (`tenantry.schema_migrations`) as `tenantry migrate`, so `migrate status` and the next
 *   `migrate` find the new location current instead of failing on tables that already exist.
 * - One SQL file: run as it is, for deployments that do not use `tenantry migrate`. Refused when
 *   the catalog database has migration records: the target would hold tables its migration
 *   table does not know of (the next `tenantry migrate` there fails with 42P07).
 */
export async function prepareMoveTarget(options: {
  target: PlacementTarget;
  /** The tenant the target is for: a schema target is claimed for it (its tables refuse other tenants' rows). */
  tenant: string;
  path: string;
  /** The application's plugin registry module (`--plugins`, or TENANTRY_PLUGINS_MODULE): its migrations are applied too. */
  plugins?: string;
  placements: Placements;
  catalog: pg.Pool;
  db: LocalDatabase;
  /** Each cluster's shared database as the owner role (what the mover uses). */
  owners: Record<string, string>;
}): Promise<PreparedTarget> {
  const { target, tenant, path, placements, catalog, db, owners } = options;
  const info = await stat(path).catch(() => {
    throw new InvalidArgumentError(`--ddl: no such file or directory: ${path}`, 'ddl');
  });
  const migrations = info.isDirectory();
  if (!migrations && (await managedByMigrate(catalog)))
    throw new InvalidArgumentError(
      '--ddl: this deployment is versioned by `tenantry migrate`; pass its migrations directory (e.g. --ddl migrations), ' +
        'so that the target records the migrations it applies',
      'ddl',
    );
  const ddl = migrations ? '' : await readFile(path, 'utf8');
  if (target.tier === 'schema' && target.schema) {
    await createTenantSchema(placements.ownerPool(target), target.schema, ddl, { tenant });
  } else if (target.tier === 'database' && target.database) {
    if (target.cluster !== 'home')
      throw new InvalidArgumentError(
        '--ddl creates databases on the home cluster only: create it with createTenantDatabase elsewhere',
        'ddl',
      );
    await createTenantDatabase({
      adminUrl: db.adminUrl,
      ownerUrl: owners.home!,
      database: target.database,
      ddl,
      appRole: db.appRole,
      ownerRole: db.ownerRole,
      appPassword: db.appPassword,
      ownerPassword: db.ownerPassword,
      contextSecret: db.contextSecret,
    });
  } else if (!migrations) {
    return { kind: 'nothing', reason: 'the shared tier has its tables already' };
  }
  if (!migrations) return { kind: 'sql' };
  const report = await migrateLocation({
    clusters: owners,
    cluster: target.cluster,
    database: target.tier === 'database' ? target.database : null,
    schema: target.tier === 'schema' ? target.schema : null,
    migrations: await migrationsWithPlugins(path, options.plugins),
  });
  return { kind: 'migrations', report };
}
