import type { Queryable } from '../catalog/tenant-catalog.js';
import { InvalidArgumentError } from '../errors/tenantry-error.js';
import { usageReport, type UsageReportQuery, type UsageRow } from './usage-report.js';
import { exportUsage, type UsageCloudEvent, type UsageExportQuery } from './usage-export.js';

/** A database that may hold part of a tenant's usage: a cluster's shared database (`database` null) or a tenant database. */
export interface UsageLocation {
  cluster: string;
  database: string | null;
}

/** Options of {@link usageReportEverywhere}. */
export interface UsageEverywhereOptions {
  /**
   * The catalog's database as the OWNER role (or a superuser): `tenantry.usage_events` (the
   * recorder's ledger), the tenant's placements and moves, and the rows its tenants wrote while
   * they lived in this database's shared tables or schemas.
   */
  catalog: Queryable;
  /**
   * An OWNER-role connection to a placement's database (`Placements.ownerPool`, or
   * `TenantTiers.placements.ownerPool`), for the ledgers of the databases the tenant lives or has
   * lived in. Never called for the catalog's own database.
   */
  ownerPool: (where: UsageLocation) => Queryable;
  /** The cluster whose shared database is the catalog's (default `home`). */
  homeCluster?: string;
}

const key = (l: UsageLocation) => `${l.cluster}\u0000${l.database ?? ''}`;

/**
 * Every database holding a part of a tenant's usage: the catalog's, where the tenant lives now,
 * and every place a move took it from or to (`tenantry.moves`), each database once (a schema and
 * the shared tables of one cluster share its database's ledger).
 */
export async function usageLocations(
  catalog: Queryable,
  tenantId: string,
  homeCluster = 'home',
): Promise<UsageLocation[]> {
  return locations(catalog, tenantId, homeCluster);
}

/**
 * Every database holding a part of any tenant's usage: the catalog's, and every place a tenant
 * lives in or a move took one from or to, each database once.
 */
export async function allUsageLocations(catalog: Queryable, homeCluster = 'home'): Promise<UsageLocation[]> {
  return locations(catalog, null, homeCluster);
}

async function locations(catalog: Queryable, tenantId: string | null, homeCluster: string): Promise<UsageLocation[]> {
  const home = { cluster: homeCluster, database: null };
  const out = new Map<string, UsageLocation>([[key(home), home]]);
  // without the tiers feature (no placements, no moves) every tenant lives in the catalog's database
  const { rows: tables } = await catalog.query<{ placements: boolean; moves: boolean }>(
    `select to_regclass('tenantry.placements') is not null as placements, to_regclass('tenantry.moves') is not null as moves`,
  );
  const parts: string[] = [];
  if (tables[0]?.placements)
    parts.push(`select p.cluster, p.database from tenantry.placements p where $1::uuid is null or p.tenant_id = $1`);
  if (tables[0]?.moves)
    parts.push(
      `select m.source ->> 'cluster', nullif(m.source ->> 'database', '') from tenantry.moves m where $1::uuid is null or m.tenant_id = $1`,
      `select m.target ->> 'cluster', nullif(m.target ->> 'database', '') from tenantry.moves m where $1::uuid is null or m.tenant_id = $1`,
    );
  if (parts.length === 0) return [home];
  const { rows } = await catalog.query<{ cluster: string | null; database: string | null }>(
    `select cluster, database from (${parts.join(' union ')}) as l(cluster, database) order by cluster, database nulls first`,
    [tenantId],
  );
  for (const r of rows) {
    if (r.cluster === null) continue;
    const l = { cluster: r.cluster, database: r.database };
    out.set(key(l), l);
  }
  return [...out.values()];
}

/**
 * A tenant's usage wherever it was recorded: {@link usageReport} of every database it lives or
 * has lived in ({@link usageLocations}), merged. Rows written are counted where they were written
 * (a move's own copy is not metered, metering migration 002), so after a move to its own database
 * the tenant's report still holds what it wrote in the shared tables before, and nothing twice.
 * Reads as the owner role with the tenant's id: pass the id of the tenant the caller is entitled
 * to (e.g. `currentTenant()` in a tenant route).
 *
 * @example
 * const rows = await usageReportEverywhere(
 *   { catalog: ownerPool, ownerPool: (where) => placements.ownerPool({ tier: 'database', ...where }) },
 *   { tenantId, from, to, granularity: 'day' },
 * );
 */
export async function usageReportEverywhere(
  options: UsageEverywhereOptions,
  query: UsageReportQuery,
): Promise<UsageRow[]> {
  if (!options || typeof options.ownerPool !== 'function')
    throw new InvalidArgumentError('usageReportEverywhere needs catalog and ownerPool', 'options');
  const homeCluster = options.homeCluster ?? 'home';
  const locations = await usageLocations(options.catalog, query.tenantId, homeCluster);
  const reports = await Promise.all(
    locations.map((l) =>
      usageReport(l.cluster === homeCluster && l.database === null ? options.catalog : options.ownerPool(l), query),
    ),
  );
  const merged = new Map<string, UsageRow>();
  for (const row of reports.flat()) {
    const id = `${row.windowStart.toISOString()}\u0000${row.meter}\u0000${row.subject ?? ''}`;
    const seen = merged.get(id);
    if (seen) seen.quantity += row.quantity;
    else merged.set(id, { ...row });
  }
  return [...merged.values()].sort(
    (a, b) =>
      a.windowStart.getTime() - b.windowStart.getTime() ||
      a.meter.localeCompare(b.meter) ||
      (a.subject ?? '').localeCompare(b.subject ?? ''),
  );
}

/**
 * Usage as CloudEvents ({@link exportUsage}) from every database holding a part of it: one
 * tenant's ({@link usageLocations}) or, without `tenantId`, every tenant's
 * ({@link allUsageLocations}), database by database (each in time order). Ids stay stable
 * across exports: a database other than the catalog's is named in its rows-written ids
 * (`<tenant>/rows_written@<cluster>/<database>:<ledger id>`), as each database numbers its own
 * ledger. Reads as the owner role.
 *
 * @example
 * for await (const event of exportUsageEverywhere(
 *   { catalog: ownerPool, ownerPool: (where) => placements.ownerPool({ tier: where.database ? 'database' : 'shared', ...where }) },
 *   { from, to, source: 'tenantry://eu-1' },
 * )) send(event);
 */
export async function* exportUsageEverywhere(
  options: UsageEverywhereOptions,
  query: UsageExportQuery,
): AsyncGenerator<UsageCloudEvent> {
  if (!options || typeof options.ownerPool !== 'function')
    throw new InvalidArgumentError('exportUsageEverywhere needs catalog and ownerPool', 'options');
  const homeCluster = options.homeCluster ?? 'home';
  const where =
    query.tenantId === undefined
      ? await allUsageLocations(options.catalog, homeCluster)
      : await usageLocations(options.catalog, query.tenantId, homeCluster);
  for (const l of where) {
    const home = l.cluster === homeCluster && l.database === null;
    yield* exportUsage(home ? options.catalog : options.ownerPool(l), {
      ...query,
      ledger: home ? undefined : `${l.cluster}/${l.database ?? ''}`,
    });
  }
}
