import pg from 'pg';
import { toTenantId } from '../context/tenant-id.js';
import { writeTenantHold, type Queryable } from '../catalog/tenant-catalog.js';
import type { TenantStatus } from '../catalog/tenant.js';
import { InvalidArgumentError, TenantryError } from '../errors/tenantry-error.js';
import { validIdentifier } from '../policy/identifiers.js';
import { schemaTakenError, withDatabase } from './provision.js';
import { findSharedTarget } from './target-guard.js';
import type { Tier } from './tenant-router.js';

/**
 * The setting every connection of a move carries (`on`): application triggers skip their side
 * effects for the rows a move copies or deletes (those rows' events travel as rows themselves).
 * Triggers read it through `tenantry.is_moving()`, which also requires the session's role to be
 * the owner or a superuser: the app role can set the setting, but cannot make it count.
 */
export const MOVING_SETTING = 'tenantry.moving';

/** Where a tenant should live. */
export interface PlacementTarget {
  tier: Tier;
  cluster: string;
  /** The tenant's own database (database tier); the cluster's shared database otherwise. */
  database?: string | null;
  /** The tenant's own schema (schema tier). */
  schema?: string | null;
}

/** A placement as the catalog records it. */
export interface Placement extends Required<PlacementTarget> {
  tenantId: string;
  epoch: number;
}

/** State of a tenant in one database (tenantry.local_tenants). */
export type LocalState = 'active' | 'frozen' | 'moved';

/** Options of {@link Placements}. */
export interface PlacementsOptions {
  /** The home database (the catalog) as the owner role. */
  catalog: Queryable;
  /** Each cluster's shared database as the owner role: `{ home: ownerUrl, eu: … }`. */
  owners: Record<string, string>;
  /** The cluster of tenants without a placement (default `home`). */
  homeCluster?: string;
}

/**
 * The control plane's view of placements: clusters, where each tenant lives, and the local route
 * state in each database (`tenantry.local_tenants`) that lets a database refuse a stale route.
 * Runs as the owner role. Moving data is `TenantMover`'s job; `assign` only switches the route of
 * a tenant whose data is already where it points (a new tenant, or the last step of a move).
 *
 * @example
 * const placements = new Placements({ catalog: homeOwnerPool, owners: { home: homeOwnerUrl } });
 * await createTenantSchema(homeOwnerPool, 't_acme', tenantTablesDdl);
 * await placements.assign(acme.id, { tier: 'schema', cluster: 'home', schema: 't_acme' });
 */
export class Placements {
  readonly #catalog: Queryable;
  readonly #owners: Record<string, string>;
  readonly #home: string;
  readonly #pools = new Map<string, pg.Pool>();

  constructor(options: PlacementsOptions) {
    this.#catalog = options.catalog;
    this.#owners = options.owners;
    this.#home = options.homeCluster ?? 'home';
  }

  /** The cluster whose shared database is the home database (tenants without a placement live there). */
  get homeCluster(): string {
    return this.#home;
  }

  /** The clusters this process has an owner connection for. */
  get clusters(): string[] {
    return Object.keys(this.#owners);
  }

  /** Registers (or updates) a cluster in the catalog. */
  async addCluster(
    name: string,
    options: { capacity?: number; status?: 'active' | 'draining' | 'disabled' } = {},
  ): Promise<void> {
    if (!/^[a-z][a-z0-9_-]{0,62}$/.test(name))
      throw new InvalidArgumentError('cluster names are 1-63 of [a-z0-9_-], starting with a letter', 'name');
    await this.#catalog.query(
      `insert into tenantry.clusters (name, capacity, status) values ($1, coalesce($2, 1000), coalesce($3, 'active'))
       on conflict (name) do update set capacity = coalesce($2, clusters.capacity), status = coalesce($3, clusters.status)`,
      [name, options.capacity ?? null, options.status ?? null],
    );
  }

  /** The tenant's placement; the default (shared, home cluster, epoch 0) when it has none. */
  async get(tenant: string, catalog: Queryable = this.#catalog): Promise<Placement> {
    const tenantId = toTenantId(tenant);
    const { rows } = await catalog.query<{
      tier: Tier;
      cluster: string;
      database: string | null;
      schema: string | null;
      epoch: string;
    }>('select tier, cluster, database, schema, epoch from tenantry.placements where tenant_id = $1', [tenantId]);
    const r = rows[0];
    return r
      ? { tenantId, tier: r.tier, cluster: r.cluster, database: r.database, schema: r.schema, epoch: Number(r.epoch) }
      : { tenantId, tier: 'shared', cluster: this.#home, database: null, schema: null, epoch: 0 };
  }

  /**
   * Switches the tenant's route to `target`, whose data must already be in place: (1) the
   * previous location is frozen (statements there wait and retry), (2) the target database
   * accepts the new route epoch, (3) the catalog switches (routers hear it), (4) the previous
   * location refuses the tenant from then on (stale routers refresh and retry). Returns the new epoch.
   */
  async assign(tenant: string, target: PlacementTarget): Promise<number> {
    const tenantId = toTenantId(tenant);
    const next = checkTarget(target);
    // moves, imports and onboarding ask before they change anything; asked again here, because a
    // direct assign to the catalog, a shared database or another tenant's place would turn every
    // shared tenant's route stale, or hand one tenant a place others live in
    const shared = await findSharedTarget({ placements: this, catalog: this.#catalog, tenantId, target: next });
    if (shared)
      // another tenant's schema keeps the code assign always gave it (TENANT_SCHEMA_TAKEN)
      throw new TenantryError(
        shared.reason === 'tenant_schema' ? 'TENANT_SCHEMA_TAKEN' : 'PLACEMENT_TARGET_TAKEN',
        `${shared.message}: a tenant is placed in a place of its own`,
        {
          status: 409,
          details: { reason: shared.reason, cluster: next.cluster, schema: next.schema, database: next.database },
        },
      );
    // one assign of a tenant at a time (across processes): epochs then grow in the order the
    // switches happen, and the catalog and the databases never disagree
    return this.#withTenantLock(tenantId, (catalog) => this.#assign(tenantId, next, catalog));
  }

  // fn gets the connection holding the lock, for its catalog statements: with a small pool,
  // concurrent assigns each holding one connection could otherwise wait for one another forever
  async #withTenantLock<T>(tenantId: string, fn: (catalog: Queryable) => Promise<T>): Promise<T> {
    const key = `tenantry.placement:${tenantId}`;
    const catalog = this.#catalog as Queryable & { connect?: () => Promise<pg.PoolClient> };
    const holder = typeof catalog.connect === 'function' ? await catalog.connect() : undefined;
    const on: Queryable = holder ?? this.#catalog;
    await on.query('select pg_advisory_lock(hashtext($1))', [key]);
    try {
      return await fn(on);
    } finally {
      await on.query('select pg_advisory_unlock(hashtext($1))', [key]).catch(() => undefined);
      holder?.release();
    }
  }

  async #assign(tenantId: string, next: Required<PlacementTarget>, catalog: Queryable): Promise<number> {
    const previous = await this.get(tenantId, catalog);
    const from = locationOf(previous);
    const to = locationOf(next);
    const { rows } = await catalog.query<{ epoch: string }>('select tenantry.next_route_epoch() as epoch');
    const epoch = Number(rows[0]!.epoch);
    const sameDatabase = from === to;
    // the schema is the tenant's from now on: its tables refuse every other tenant's rows (tiers/003)
    if (next.schema !== null)
      await this.ownerPool(next)
        .query('select tenantry.claim_tenant_schema($1, $2)', [next.schema, tenantId])
        .catch((error: unknown) => {
          throw schemaTakenError(error, next.schema!);
        });
    const before = sameDatabase ? undefined : await this.#localRow(previous, tenantId);
    try {
      if (!sameDatabase) await this.setLocalState(previous, tenantId, 'frozen', previous.epoch);
      // only the home cluster's shared database serves the default route
      if (to !== `${this.#home}/`)
        await this.ownerPool(next).query('update tenantry.local_route set serves_default = false where serves_default');
      // a suspended or deleted tenant is held at its new place before that place serves it
      // (TenantCatalog's transitions take the same lock, so the status cannot change meanwhile)
      const { rows: status } = await catalog.query<{ status: TenantStatus }>(
        'select status from tenantry.tenants where id = $1',
        [tenantId],
      );
      if (status[0] && status[0].status !== 'active')
        await writeTenantHold(this.ownerPool(next), tenantId, status[0].status);
      await this.setLocalState(next, tenantId, 'active', epoch);
    } catch (error) {
      // before the switch: the previous place serves the tenant again as it did
      if (!sameDatabase) await this.#restoreLocalRow(previous, tenantId, before).catch(() => undefined);
      throw error;
    }
    // the route, and its display copy in the tenant's catalog row, in one statement
    await catalog.query(
      `with placed as (
         insert into tenantry.placements (tenant_id, tier, cluster, database, schema, epoch) values ($1, $2, $3, $4, $5, $6)
         on conflict (tenant_id) do update set tier = excluded.tier, cluster = excluded.cluster, database = excluded.database,
           schema = excluded.schema, epoch = excluded.epoch
         returning tenant_id, tier, cluster, database, schema, epoch)
       update tenantry.tenants t
          set placement = jsonb_strip_nulls(jsonb_build_object('tier', p.tier, 'cluster', p.cluster, 'database', p.database, 'schema', p.schema, 'epoch', p.epoch)),
              updated_at = now()
         from placed p where t.id = p.tenant_id`,
      [tenantId, next.tier, next.cluster, next.database, next.schema, epoch],
    );
    if (!sameDatabase) await this.setLocalState(previous, tenantId, 'moved', epoch);
    return epoch;
  }

  async #localRow(
    where: PlacementTarget,
    tenantId: string,
  ): Promise<{ state: LocalState; epoch: number; schema: string | null } | undefined> {
    const { rows } = await this.ownerPool(where).query<{ state: LocalState; epoch: string; schema: string | null }>(
      'select state, epoch, schema from tenantry.local_tenants where tenant_key = $1',
      [tenantId],
    );
    return rows[0] ? { state: rows[0].state, epoch: Number(rows[0].epoch), schema: rows[0].schema } : undefined;
  }

  async #restoreLocalRow(
    where: PlacementTarget,
    tenantId: string,
    row: { state: LocalState; epoch: number; schema: string | null } | undefined,
  ): Promise<void> {
    if (!row) await this.ownerPool(where).query('delete from tenantry.local_tenants where tenant_key = $1', [tenantId]);
    else await this.setLocalState({ ...where, schema: row.schema }, tenantId, row.state, row.epoch);
  }

  /** Writes the tenant's route state in the database of `where` (owner role there). */
  async setLocalState(where: PlacementTarget, tenantId: string, state: LocalState, epoch: number): Promise<void> {
    const pool = this.ownerPool(where);
    await pool.query(
      `insert into tenantry.local_tenants (tenant_key, state, epoch, schema) values ($1, $2, $3, $4)
       on conflict (tenant_key) do update set state = excluded.state, epoch = excluded.epoch, schema = excluded.schema, updated_at = excluded.updated_at`,
      [toTenantId(tenantId), state, epoch, where.schema ?? null],
    );
  }

  async end(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.end()));
  }

  /** The owner pool of a placement's database (cached; closed by end()). */
  ownerPool(where: PlacementTarget): pg.Pool {
    const location = locationOf(where);
    let pool = this.#pools.get(location);
    if (!pool) {
      const base = this.#owners[where.cluster];
      if (base === undefined)
        throw new TenantryError('CLUSTER_UNKNOWN', `No owner connection is configured for cluster ${where.cluster}`, {
          status: 503,
          details: { cluster: where.cluster },
        });
      // tenantry.moving: what these connections write is a move copying or removing rows, not a
      // change by the tenant; application triggers that derive rows (events, counters) skip it
      // with `tenantry.is_moving()` (true only for the owner or a superuser). Set on each new
      // connection before it is handed out (pg-pool awaits onConnect), not as a startup option,
      // which a connection string's own `options` or a pooler could drop.
      pool = new pg.Pool({
        connectionString: where.database ? withDatabase(base, where.database) : base,
        max: 2,
        onConnect: async (client) => {
          await client.query(`select pg_catalog.set_config('${MOVING_SETTING}', 'on', false)`);
        },
      });
      pool.on('error', () => undefined);
      this.#pools.set(location, pool);
    }
    return pool;
  }
}

function checkTarget(target: PlacementTarget): Required<PlacementTarget> {
  const tier = target?.tier;
  if (tier !== 'shared' && tier !== 'schema' && tier !== 'database')
    throw new InvalidArgumentError('tier must be shared, schema or database', 'tier');
  if (!/^[a-z][a-z0-9_-]{0,62}$/.test(target.cluster ?? ''))
    throw new InvalidArgumentError('cluster must be a cluster name', 'cluster');
  const database = target.database ? validIdentifier(target.database, 'database') : null;
  const schema = target.schema ? validIdentifier(target.schema, 'schema') : null;
  if (tier === 'schema' && !schema) throw new InvalidArgumentError('the schema tier needs a schema', 'schema');
  if (tier !== 'schema' && schema) throw new InvalidArgumentError('only the schema tier names a schema', 'schema');
  if (tier === 'database' && !database)
    throw new InvalidArgumentError('the database tier needs a database', 'database');
  return { tier, cluster: target.cluster, database, schema };
}

function locationOf(where: PlacementTarget): string {
  return `${where.cluster}/${where.database ?? ''}`;
}
