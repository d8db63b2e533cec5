import { toTenantId } from '../context/tenant-id.js';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { sqlStateOf } from '../errors/sqlstate.js';
import type { Queryable } from '../catalog/tenant-catalog.js';
import { LRUCache } from 'lru-cache';
import { PostgresLiveTransport } from '../live/postgres-live-transport.js';
import { quoteIdent } from '../policy/identifiers.js';
import { ROUTES_CHANNEL } from './placement-sql.js';

/** Isolation tiers: rows in shared tables, an own schema, an own database. */
export type Tier = 'shared' | 'schema' | 'database';

/** Where a tenant lives: the answer to the data plane's one question. */
export interface Route {
  tenantId: string;
  tier: Tier;
  /** A cluster registered in `tenantry.clusters` (a PostgreSQL server). */
  cluster: string;
  /** The tenant's own database (database tier), or null for the cluster's shared database. */
  database: string | null;
  /** The tenant's own schema (schema tier), or null. */
  schema: string | null;
  /** Increases with every change of the placement; 0 for the default route (shared, home cluster). */
  epoch: number;
  /** `<cluster>/<database>`: which pool serves it. */
  location: string;
  /**
   * Transaction-local search path for the schema tier (the tenant's schema alone, unless
   * `extensionSchemas` were given), else null.
   */
  searchPath: string | null;
}

/** Options of {@link TenantRouter}. */
export interface TenantRouterOptions {
  /**
   * The home database (the catalog), as the ROUTER role (`tenantry_router`, install's
   * `routerRole`): routes are read through definer functions only it (and the owner) may
   * execute. Not the app role: it cannot read routes (42501), so that SQL injected under one
   * tenant cannot list where every tenant lives.
   */
  pool: Queryable;
  /** Connection string (router role, home database) for the LISTEN connection that hears route changes; omit to rely on the database's stale-route check alone. */
  listenConnectionString?: string;
  /** The cluster of tenants without a placement (default `home`). */
  homeCluster?: string;
  /**
   * Schemas put after the tenant's own on a schema-tier search path, for the functions and types
   * of extensions installed there (default none: the tenant's schema alone, `pg_catalog` being
   * searched first anyway). Never a schema holding tenant tables (such as `public` with the shared
   * tables): a table missing from the tenant's schema would be found there instead of failing
   * (42P01). Prefer naming extension objects qualified (`public.crypt(…)`).
   */
  extensionSchemas?: string[];
  /** Routes kept in memory (default 100,000). */
  cacheSize?: number;
  /**
   * With a listen connection: how often the router also reads what changed since the last change
   * it applied, the last 1,000 epochs before it again (default 30,000 ms), so a change whose
   * notification never arrived (a connection that died without a word, until TCP keepalive
   * notices), or that committed after a later one, is applied within this interval anyway.
   */
  catchUpIntervalMs?: number;
  onError?: (error: unknown) => void;
}

/** Epochs the periodic catch-up reads again (changes that committed out of epoch order and whose notification was lost). */
const LOOKBACK = 1_000;

interface RouteRow {
  tenant_id: string;
  tier: Tier;
  cluster: string;
  database: string | null;
  schema: string | null;
  epoch: string;
}

/**
 * Answers "where does tenant T live" for the data plane: cluster, database, schema, and the
 * route's epoch. Routes are cached; every change of a placement NOTIFYs its epoch on
 * `tenantry_routes` and each router re-reads what changed since the epoch it knows, so a move is
 * seen by every server instance at once. A cache that is stale anyway (a lost notification)
 * cannot send a statement to the wrong place: the database refuses a stale route epoch (TR003)
 * and the RoutedTenantPool refreshes and retries.
 *
 * @example
 * const router = new TenantRouter({ pool: homeRouterPool, listenConnectionString: homeRouterUrl });
 * await router.start();
 * const route = await router.resolve(tenantId); // { tier: 'schema', cluster: 'home', schema: 't_acme', … }
 */
export class TenantRouter {
  readonly #pool: Queryable;
  readonly #home: string;
  /** `, "ext", …` after the tenant's schema: empty by default. */
  readonly #after: string;
  readonly #cache: LRUCache<string, Route>;
  /** Looks by `peek` so far: every 8th marks the route as recently used. */
  #looks = 0;
  readonly #transport: PostgresLiveTransport | undefined;
  readonly #onError: (error: unknown) => void;
  /** The highest route epoch this router has applied from the change feed. */
  #seen = 0;
  /**
   * Where the next catch-up starts reading when that is below `#seen` (or undefined): a route's
   * epoch is taken before its change commits, so changes can commit out of epoch order, and one
   * that commits after a later epoch was read would be skipped by reading above `#seen` only. Its
   * notification (sent at commit, with the epoch) brings it back; the periodic catch-up reads the
   * last LOOKBACK epochs again for a notification lost.
   */
  #from: number | undefined;
  #refreshing: Promise<void> | undefined;
  #again = false;
  /**
   * The listening connection (backend pid) every change up to now was read on: set when a catch-up
   * that began on it ends with nothing more heard, cleared when one fails (see `hearing`).
   */
  #caughtUpOn: number | undefined;
  readonly #catchUpIntervalMs: number;
  #catchUpTimer: NodeJS.Timeout | undefined;

  constructor(options: TenantRouterOptions) {
    this.#pool = options.pool;
    this.#home = options.homeCluster ?? 'home';
    this.#after = (options.extensionSchemas ?? []).map((s) => `, ${quoteIdent(s, 'schema')}`).join('');
    this.#cache = new LRUCache({ max: Math.max(1, options.cacheSize ?? 100_000) });
    this.#onError = options.onError ?? (() => undefined);
    this.#catchUpIntervalMs = options.catchUpIntervalMs ?? 30_000;
    if (!(this.#catchUpIntervalMs > 0)) throw new ConfigurationError('catchUpIntervalMs must be positive');
    this.#transport = options.listenConnectionString
      ? new PostgresLiveTransport({ connectionString: options.listenConnectionString, channel: ROUTES_CHANNEL })
      : undefined;
  }

  /** Starts hearing route changes (when a listen connection was configured). */
  async start(): Promise<void> {
    await this.#catchUp(); // the feed's position first, so that later changes are not missed
    if (!this.#transport) return;
    await this.#transport.start({
      signal: (payload) => {
        const epoch = Number(payload);
        if (Number.isSafeInteger(epoch) && epoch > 0) this.#readFrom(epoch - 1);
        void this.#refresh();
      },
      resync: () => void this.#refresh(),
      error: (error) => this.#onError(error),
    });
    // what changed between the first catch-up and the LISTEN
    await this.#refresh();
    clearInterval(this.#catchUpTimer);
    this.#catchUpTimer = setInterval(() => {
      this.#readFrom(this.#seen - LOOKBACK);
      void this.#refresh();
    }, this.#catchUpIntervalMs);
    this.#catchUpTimer.unref();
  }

  /**
   * True while this router hears every route change and has applied every one it heard: its
   * listening connection is up, it caught up on that connection, and no change it was told of is
   * still being read. False without a listen connection (a cache that may be stale for long).
   * RoutedTenantPool's prefix leaves the route check to the policy only while this holds.
   */
  get hearing(): boolean {
    const pid = this.#transport?.backendPid;
    return pid !== undefined && pid === this.#caughtUpOn && this.#refreshing === undefined;
  }

  async close(): Promise<void> {
    clearInterval(this.#catchUpTimer);
    this.#catchUpTimer = undefined;
    await this.#transport?.close();
  }

  /** The tenant's route, from the cache or the catalog. */
  async resolve(tenant: string): Promise<Route> {
    const tenantId = toTenantId(tenant);
    return this.#cache.get(tenantId) ?? this.#load(tenantId);
  }

  /** The cached route, or undefined (synchronous: used by connections at submit time). */
  peek(tenantId: string): Route | undefined {
    // lru-cache's get moves the route to the recent end of its list (writes to its arrays), its
    // peek does not: only every 8th look moves it. A tenant in use is looked up at its statements'
    // rate, so it stays among the recent; which routes are evicted matters only past cacheSize
    // tenants, and an evicted route is read again from the catalog at its next statement.
    return (++this.#looks & 7) === 0 ? this.#cache.get(tenantId) : this.#cache.peek(tenantId);
  }

  /**
   * As `peek`, without marking the route as recently used: for a second look at a route `peek`
   * has just found (the connection's check at submit time, after RoutedTenantPool's), so a
   * statement moves its route in the cache's recency list once, not twice.
   */
  peekAgain(tenantId: string): Route | undefined {
    return this.#cache.peek(tenantId);
  }

  /** Reads the tenant's route from the catalog again (after the database refused a stale one). */
  async refresh(tenant: string): Promise<Route> {
    return this.#load(toTenantId(tenant));
  }

  /** The cluster of tenants without a placement. */
  get homeCluster(): string {
    return this.#home;
  }

  /** The route of a tenant without a placement row. */
  defaultRoute(tenantId: string): Route {
    return this.#route({
      tenant_id: tenantId,
      tier: 'shared',
      cluster: this.#home,
      database: null,
      schema: null,
      epoch: '0',
    });
  }

  async #load(tenantId: string): Promise<Route> {
    const { rows } = await this.#read(
      'select tenant_id, tier, cluster, database, schema, epoch from tenantry.route_of($1)',
      [tenantId],
    );
    const route = rows[0] ? this.#route(rows[0]) : this.defaultRoute(tenantId);
    this.#store(route);
    return this.#cache.get(tenantId) ?? route;
  }

  async #read(sql: string, values: unknown[]): Promise<{ rows: RouteRow[] }> {
    try {
      return await this.#pool.query<RouteRow>(sql, values);
    } catch (error) {
      if (sqlStateOf(error) === '42501')
        throw new ConfigurationError(
          "The tenant router's pool may not read routes: connect it as the router role (install's routerRole, default tenantry_router), not the app role",
          error,
        );
      throw error;
    }
  }

  #store(route: Route): void {
    const current = this.#cache.get(route.tenantId);
    if (!current || current.epoch <= route.epoch) this.#cache.set(route.tenantId, route);
  }

  #route(row: RouteRow): Route {
    const location = `${row.cluster}/${row.database ?? ''}`;
    // the tenant's schema alone: a table it lacks is an error (42P01), never the shared table of
    // the same name in a data schema further down the path
    const searchPath = row.schema === null ? null : `${quoteIdent(row.schema, 'schema')}${this.#after}`;
    return {
      tenantId: row.tenant_id,
      tier: row.tier,
      cluster: row.cluster,
      database: row.database,
      schema: row.schema,
      epoch: Number(row.epoch),
      location,
      searchPath,
    };
  }

  // One refresh at a time; a notification during one schedules another.
  #refresh(): Promise<void> {
    if (this.#refreshing) {
      this.#again = true;
      return this.#refreshing;
    }
    this.#refreshing = (async () => {
      do {
        this.#again = false;
        // changes committed after the LISTEN on this connection are heard; those before, read now
        const on = this.#transport?.backendPid;
        try {
          await this.#catchUp();
          this.#caughtUpOn = on;
        } catch (error) {
          this.#caughtUpOn = undefined;
          this.#onError(error);
        }
      } while (this.#again);
    })().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  /** The next catch-up reads from `epoch` (exclusive) when that is below where it would start. */
  #readFrom(epoch: number): void {
    const from = Math.max(0, epoch);
    if (from < this.#seen) this.#from = Math.min(this.#from ?? from, from);
  }

  async #catchUp(): Promise<void> {
    let from = this.#from ?? this.#seen;
    this.#from = undefined;
    for (;;) {
      let rows: RouteRow[];
      try {
        ({ rows } = await this.#read(
          'select tenant_id, tier, cluster, database, schema, epoch from tenantry.routes_since($1)',
          [from],
        ));
      } catch (error) {
        if (from < this.#seen) this.#readFrom(from); // read it again next time
        throw error;
      }
      for (const row of rows) {
        const route = this.#route(row);
        // only routes in use are kept fresh; others are read when first needed
        if (this.#cache.get(route.tenantId)) this.#store(route);
        this.#seen = Math.max(this.#seen, route.epoch);
        from = Math.max(from, route.epoch);
      }
      if (rows.length < 10_000) return;
    }
  }
}
