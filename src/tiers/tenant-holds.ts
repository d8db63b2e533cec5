import pg from 'pg';
import { withTenantLock, writeTenantHold, type Queryable } from '../catalog/tenant-catalog.js';
import type { TenantStatus } from '../catalog/tenant.js';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { listMigrationTargets } from './migrate/migration-target.js';
import { withDatabase } from './provision.js';

/** One database's reconciliation: holds written (missing or wrong) and released (tenant active again). */
export interface HoldReconcile {
  cluster: string;
  database: string;
  written: number;
  released: number;
  error: string | null;
}

/** The answer of {@link reconcileTenantHolds}: `ok` when every database was reached. */
export interface HoldReconcileReport {
  ok: boolean;
  databases: HoldReconcile[];
}

/** Options of {@link reconcileTenantHolds}. */
export interface ReconcileTenantHoldsOptions {
  /** The home database (owner role or a superuser): the catalog. */
  catalog: Queryable;
  /** Each cluster's shared database URL (owner role or a superuser); `home` is the home database. */
  clusters: Record<string, string>;
  /** The cluster whose shared database is the home database (default `home`). */
  homeCluster?: string;
  /** Report what would change, change nothing. */
  dryRun?: boolean;
}

/**
 * Brings every database's holds (`tenantry.inactive_tenants`, core migration 005) in line with
 * the catalog: a suspended or deleted tenant is held in the home database and in the database it
 * is placed in; a hold of a tenant the catalog says is active is released. Repairs a status
 * change that stopped half-way (a placement database unreachable during `TenantCatalog.suspend`,
 * `resume` or `softDelete`). Holds of tenants the catalog does not know are kept (fail closed).
 * `tenantry install --everywhere` runs it after installing.
 *
 * @example
 * const report = await reconcileTenantHolds({ catalog: homeOwnerPool, clusters: { home: homeOwnerUrl, eu: euOwnerUrl } });
 */
export async function reconcileTenantHolds(options: ReconcileTenantHoldsOptions): Promise<HoldReconcileReport> {
  const home = options.homeCluster ?? 'home';
  const { rows: tenants } = await options.catalog.query<{
    id: string;
    status: TenantStatus;
    cluster: string | null;
    database: string | null;
  }>(
    `select t.id::text as id, t.status, p.cluster, p.database
       from tenantry.tenants t left join tenantry.placements p on p.tenant_id = t.id`,
  );
  const statusOf = new Map(tenants.map((t) => [t.id, t.status]));
  const targets = (await listMigrationTargets(options.catalog, options.clusters)).filter((t) => t.schema === null);
  const databases: HoldReconcile[] = [];
  for (const target of targets) {
    const result: HoldReconcile = {
      cluster: target.cluster,
      database: target.database,
      written: 0,
      released: 0,
      error: null,
    };
    databases.push(result);
    const isHome = target.cluster === home && target.kind === 'shared';
    // the inactive tenants whose data is here (every one at home: pinned and identity tables)
    const expected = new Map<string, TenantStatus>();
    for (const t of tenants) {
      if (t.status === 'active') continue;
      const cluster = t.cluster ?? home;
      const here =
        isHome ||
        (cluster === target.cluster &&
          (t.database === null ? target.kind === 'shared' : t.database === target.database));
      if (here) expected.set(t.id, t.status);
    }
    let client: pg.Client | undefined;
    try {
      const base = options.clusters[target.cluster];
      if (base === undefined) throw new ConfigurationError(`No connection is configured for cluster ${target.cluster}`);
      client = new pg.Client({
        connectionString: target.kind === 'shared' ? base : withDatabase(base, target.database),
        application_name: 'tenantry holds',
        connectionTimeoutMillis: 10_000,
      });
      client.on('error', () => undefined);
      await client.connect();
      const { rows } = await client.query<{ tenant_key: string; status: TenantStatus }>(
        'select tenant_key, status from tenantry.inactive_tenants',
      );
      const held = new Map(rows.map((r) => [r.tenant_key, r.status]));
      // each change under the tenant's lock, with its status read again: a transition running
      // meanwhile is never undone by this (older) view of the catalog
      const repair = async (id: string, want: TenantStatus) => {
        if (options.dryRun) return true;
        const db = client!;
        return withTenantLock(options.catalog, id, async (on) => {
          const { rows: now } = await on.query<{ status: TenantStatus }>(
            'select status from tenantry.tenants where id = $1',
            [id],
          );
          if (now[0]?.status !== want) return false;
          await writeTenantHold(db, id, want);
          return true;
        });
      };
      for (const [id, status] of expected) {
        if (held.get(id) === status) continue;
        if (await repair(id, status)) result.written++;
      }
      for (const id of held.keys()) {
        if (statusOf.get(id) !== 'active') continue;
        if (await repair(id, 'active')) result.released++;
      }
    } catch (error) {
      result.error = (error as Error).message;
    } finally {
      await client?.end().catch(() => undefined);
    }
  }
  return { ok: databases.every((d) => d.error === null), databases };
}
