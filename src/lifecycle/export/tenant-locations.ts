import type pg from 'pg';
import type { Queryable } from '../../catalog/tenant-catalog.js';
import type { Placement, PlacementTarget, Placements } from '../../tiers/placements.js';
import { registeredTenantTables, type TenantTable } from './tenant-tables.js';

/** A database holding some of a tenant's tables, with the tables it holds for the tenant. */
export interface TableSite {
  where: PlacementTarget;
  pool: pg.Pool;
  tables: TenantTable[];
}

/** The home cluster's shared database: where pinned tables live. */
export function homeOf(cluster = 'home'): PlacementTarget {
  return { tier: 'shared', cluster, database: null, schema: null };
}

/**
 * Where a tenant placed at `placement` keeps its rows: the registered tenant tables of its
 * placement (its schema, its database, or the shared tables in `dataSchemas`), pinned ones
 * excepted, and the pinned tables of the home database (which stay there whatever the tier). One
 * site when both are the same database.
 */
export async function tableSites(
  placements: Placements,
  placement: PlacementTarget | Placement,
  dataSchemas: string[],
  homeCluster = 'home',
): Promise<TableSite[]> {
  const home = homeOf(homeCluster);
  const homePool = placements.ownerPool(home);
  const sameDatabase = placement.cluster === homeCluster && !placement.database;
  const placed = placement.schema ? [placement.schema] : dataSchemas;
  if (sameDatabase) {
    const all = await registeredTenantTables(homePool, [...new Set([...placed, ...dataSchemas])]);
    const tables = all.filter((t) => (t.pinned ? dataSchemas.includes(t.schema) : placed.includes(t.schema)));
    return [{ where: placement, pool: homePool, tables }];
  }
  const dataPool = placements.ownerPool(placement);
  const [data, pinned] = await Promise.all([
    registeredTenantTables(dataPool, placed),
    registeredTenantTables(homePool, dataSchemas),
  ]);
  return [
    { where: home, pool: homePool, tables: pinned.filter((t) => t.pinned) },
    { where: placement, pool: dataPool, tables: data.filter((t) => !t.pinned) },
  ].filter((s) => s.tables.length > 0);
}

/** The application's migration version recorded for a location (`tenantry migrate`), or null when it has none. */
export async function appMigrationVersion(db: Queryable, where: PlacementTarget): Promise<number | null> {
  const { rows } = await db.query<{ present: boolean; database: string }>(
    `select to_regclass('tenantry.schema_migrations') is not null as present, current_database() as database`,
  );
  if (!rows[0]?.present) return null;
  const key = `${where.cluster}/${rows[0].database}${where.schema ? `/${where.schema}` : ''}`;
  const { rows: v } = await db.query<{ version: number | null }>(
    'select max(version) as version from tenantry.schema_migrations where target = $1',
    [key],
  );
  return v[0]?.version ?? null;
}
