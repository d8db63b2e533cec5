import type pg from 'pg';
import { currentScope, currentSignal, tryCurrentTenant } from '../context/tenant-context.js';
import { ConfigurationError, TenantryError } from '../errors/tenantry-error.js';
import { sqlStateOf } from '../errors/sqlstate.js';
import { abortError, PoolTimeoutError } from '../errors/wait-errors.js';
import {
  DEFAULT_CHECKOUT_TIMEOUT_MS,
  TenantPool,
  type PoolerInfo,
  type TenantPoolConfig,
} from '../data/tenant-pool.js';
import { validIdentifier } from '../policy/identifiers.js';
import { Semaphore } from './semaphore.js';
import { CheckoutSlots, type Slot } from './checkout-slots.js';
import { TenantActivity } from '../data/tenant-activity.js';
import type { Route, TenantRouter } from './tenant-router.js';

/** SQLSTATEs of the database's route check (see placement-sql.ts). */
const STALE_ROUTE = 'TR003';
const FROZEN = 'TR004';
/** undefined_table, invalid_schema_name: a schema tier's search path that names nothing (see query). */
const UNDEFINED_TABLE = '42P01';
const INVALID_SCHEMA = '3F000';

/** Options of {@link RoutedTenantPool}. */
export interface RoutedTenantPoolConfig extends Omit<TenantPoolConfig, 'connectionString' | 'routing' | 'max'> {
  router: TenantRouter;
  /** Each cluster's shared database, as the app role: `{ home: 'postgres://app@db1/app', eu: … }`. A tenant database on a cluster is reached by swapping the database name. */
  clusters: Record<string, string>;
  /** Connections checked out at once across every database (default 20): thousands of tenants never mean thousands of connections. */
  maxConnections?: number;
  /**
   * Connections per database (default 5): also the most one location can hold of `maxConnections`,
   * so a slow or stuck database leaves `maxConnections - poolSize` to the others. Keep it below
   * `maxConnections`.
   */
  poolSize?: number;
  /**
   * Connections one tenant can hold in its database at once (default `poolSize - 1`, at least 1):
   * a tenant whose statements are stuck (a lock, a slow query) leaves the rest of its database's
   * connections to the tenants in the other schemas or shared tables there.
   */
  maxConnectionsPerTenant?: number;
  /**
   * How long a statement (or `connect`) waits, in total, for its tenant's, its database's and the
   * overall connection slots, and for a connection to open: past it, POOL_TIMEOUT (503). Default
   * 5000 ms.
   */
  checkoutTimeoutMs?: number;
  /** Database pools kept open; beyond it the least recently used idle one is closed (default 20). */
  maxPools?: number;
  /** How long a statement waits, in total, for a tenant frozen by a move (default 2000 ms). */
  freezeWaitMs?: number;
  /**
   * Where a statement's route is checked (signed mode; unsigned mode always checks in the prefix):
   * - `'prefix'`: by the prefix itself (`tenantry.enter_route`), before the statement runs, so a
   *   statement on a stale route is refused even when it reads and writes no row of a tenant table
   *   (an `update … where id = $1` whose row is not at the old place). A definer call per statement.
   * - `'policy'`: by the tenant tables' policy alone (the signed check, which verifies the route
   *   epoch and the hold), as the plain TenantPool: every statement that reads or writes a tenant
   *   row at a place it no longer lives is refused (TR003) before that row is returned or changed;
   *   one that finds no row there runs there. The prefix is the plain one (plus the schema tier's
   *   search path): the routed pool at the plain pool's server cost.
   * - `'auto'` (default): `'policy'` while the router hears every route change (a listen
   *   connection, caught up: `TenantRouter.hearing`), `'prefix'` otherwise, decided per statement.
   */
  routeCheck?: 'auto' | 'prefix' | 'policy';
}

interface Entry {
  pool: TenantPool;
  active: number;
}

/** A checked-out slot in a database's pool: release it exactly once. */
interface Lease {
  entry: Entry;
  release(): void;
}

/**
 * The lease of a checkout that took its three slots at once (no wait): one object per statement,
 * its release a method (no closures). Gives the slots back in reverse order; they stay with their
 * database's slots (CheckoutSlots sweeps idle ones).
 */
class FastLease implements Lease {
  #released = false;
  constructor(
    readonly entry: Entry,
    private readonly overall: Semaphore,
    private readonly location: Semaphore,
    private readonly own: Semaphore,
  ) {}

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.entry.active--;
    this.overall.release();
    this.location.release();
    this.own.release();
  }
}

/**
 * A pool that sends each statement to where the current tenant lives: the shared database of
 * its cluster (shared and schema tiers) or its own database (database tier), with the schema
 * tier's search path set transaction-locally in the same round trip as the context. Application
 * code does not change with the tier: `query` and `connect` behave like pg.Pool's (promise
 * form), so raw pg, Kysely and Drizzle use it as they use TenantPool.
 *
 * A statement sent on a stale route (the tenant moved since the router cached it) is refused by
 * the database (TR003) before it runs: `query` refreshes the route and retries; a tenant frozen
 * by a move (TR004) is retried with backoff for up to `freezeWaitMs`. Inside a transaction
 * (`connect`) the error reaches the caller, who retries the transaction (`isRetryableRouteError`).
 *
 * @example
 * const pool = new RoutedTenantPool({ router, clusters: { home: appUrl, eu: euAppUrl }, contextSecret });
 * await runAs(tenantId, () => pool.query('select * from recordings'));
 */
export class RoutedTenantPool {
  readonly #router: TenantRouter;
  readonly #clusters: Record<string, string>;
  readonly #config: Omit<TenantPoolConfig, 'connectionString' | 'routing' | 'max'>;
  readonly #poolSize: number;
  readonly #maxPools: number;
  readonly #freezeWaitMs: number;
  readonly #perTenant: number;
  readonly #checkoutTimeoutMs: number;
  /** Every connection checked out, across every database (`maxConnections`). */
  readonly #slots: Semaphore;
  /** Each database's and each tenant's slots (`poolSize`, `maxConnectionsPerTenant`). */
  readonly #locationSlots: CheckoutSlots;
  /** Open database pools, least recently used first. */
  readonly #pools = new Map<string, Entry>();
  /** The location last moved to the end of `#pools` (already the most recently used: not moved again). */
  #lastUsed: string | undefined;
  readonly #fair: boolean;
  readonly #homeLocation: string;
  /** Whether the prefix checks the route: always, never (policy), or while the router does not hear. */
  readonly #routeCheck: 'auto' | 'prefix' | 'policy';
  #ended = false;

  constructor(config: RoutedTenantPoolConfig) {
    const {
      router,
      clusters,
      maxConnections = 20,
      poolSize = 5,
      maxPools = 20,
      freezeWaitMs = 2000,
      maxConnectionsPerTenant,
      checkoutTimeoutMs = DEFAULT_CHECKOUT_TIMEOUT_MS,
      fairCheckout,
      activity,
      routeCheck = 'auto',
      ...rest
    } = config;
    if (fairCheckout !== undefined && typeof fairCheckout === 'object')
      throw new ConfigurationError(
        "RoutedTenantPool takes fairCheckout: true; the cap per tenant is maxConnectionsPerTenant (and a plan's maxConnections)",
      );
    if ((rest.dbLimits as { hasDbTimeBudget?: boolean } | undefined)?.hasDbTimeBudget === true)
      throw new ConfigurationError(
        'RoutedTenantPool does not keep DB time budgets (a plan with dbTimeMsPerSecond) yet: leave them out of its dbLimits, or use a TenantPool with fairCheckout',
      );
    if (!router) throw new ConfigurationError('RoutedTenantPool needs a router');
    if (!clusters || Object.keys(clusters).length === 0)
      throw new ConfigurationError('RoutedTenantPool needs the connection string of at least one cluster');
    for (const name of Object.keys(clusters)) validIdentifier(name.replaceAll('-', '_'), 'cluster name');
    if (!(maxConnections >= 1 && poolSize >= 1 && maxPools >= 1))
      throw new ConfigurationError('maxConnections, poolSize and maxPools must be at least 1');
    if (maxConnectionsPerTenant !== undefined && !(maxConnectionsPerTenant >= 1))
      throw new ConfigurationError('maxConnectionsPerTenant must be at least 1');
    if (!(checkoutTimeoutMs > 0)) throw new ConfigurationError('checkoutTimeoutMs must be positive: every wait ends');
    if (routeCheck !== 'auto' && routeCheck !== 'prefix' && routeCheck !== 'policy')
      throw new ConfigurationError("routeCheck must be 'auto', 'prefix' or 'policy'");
    this.#router = router;
    this.#clusters = clusters;
    // one table of activity for every database's pool; fair sharing is done here, per database
    this.#config = { ...rest, ...(activity ? { activity: activity === true ? new TenantActivity() : activity } : {}) };
    this.#fair = fairCheckout === true;
    this.#poolSize = Math.min(poolSize, maxConnections);
    this.#maxPools = maxPools;
    this.#freezeWaitMs = freezeWaitMs;
    this.#perTenant = Math.min(maxConnectionsPerTenant ?? Math.max(1, this.#poolSize - 1), this.#poolSize);
    this.#locationSlots = new CheckoutSlots(this.#poolSize, this.#perTenant, this.#fair);
    this.#checkoutTimeoutMs = checkoutTimeoutMs;
    this.#slots = new Semaphore(maxConnections);
    this.#homeLocation = `${router.homeCluster}/`;
    // unsigned values carry no proof: the policy's check is only as good as the prefix's there
    this.#routeCheck = (rest.contextMode ?? 'signed') === 'unsigned' ? 'prefix' : routeCheck;
  }

  /** Whether a statement's prefix checks its route now (read by each connection per statement). */
  get #checkInPrefix(): boolean {
    const mode = this.#routeCheck;
    return mode === 'prefix' || (mode === 'auto' && !this.#router.hearing);
  }

  /** Open database pools (for tests and metrics). */
  get openPools(): number {
    return this.#pools.size;
  }

  /** Connections checked out right now, across every database. */
  get activeConnections(): number {
    return this.#slots.inUse;
  }

  /** The per-tenant activity of every database's pool (`activity` option), or undefined. */
  get activity(): TenantActivity | undefined {
    return this.#config.activity as TenantActivity | undefined;
  }

  /** Runs one statement where the current tenant lives (or on the home cluster's shared database without a tenant). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- mirrors node-postgres' own signatures, which use any
  query<R extends pg.QueryResultRow = any>(
    text: string | pg.QueryConfig,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    // The usual statement: a cached route and three free slots, taken synchronously, then the
    // database pool's own promise, the lease given back as it settles: no async frame, no clock
    // read. Anything else, and any failure, goes through #retrying (the same steps as before the
    // fast path; the freeze wait's bound then counts from the first refusal's return).
    const scope = currentScope(); // the tenant and the signal in one look-up
    const tenantId = scope?.tenantId;
    const route = tenantId === undefined ? undefined : this.#router.peek(tenantId);
    if (tenantId !== undefined && route === undefined) return this.#retrying(text, values, tenantId);
    let lease: Lease | undefined;
    try {
      lease = this.#tryCheckout(route, tenantId, scope?.signal);
    } catch (error) {
      return Promise.reject(error as Error); // as the async steps reject it: not a failure to retry
    }
    if (lease === undefined) return this.#retrying(text, values, tenantId);
    let sent: Promise<pg.QueryResult<R>>;
    try {
      sent = lease.entry.pool.query<R>(text as string, values);
    } catch (error) {
      lease.release();
      return this.#retrying(text, values, tenantId, { route, failure: error });
    }
    const held = lease;
    // then(), not the pool's callback form: a retry must run in the caller's async context (its
    // tenant, its signal), which a promise reaction keeps and pg's callback (run in whatever
    // context the socket's data arrived in) does not
    return sent.then(
      (result) => {
        held.release();
        return result;
      },
      (error: unknown) => {
        held.release();
        return this.#retrying<R>(text, values, tenantId, { route, failure: error });
      },
    );
  }

  /**
   * `query`'s steps when the fast path cannot take the statement, or after its attempt failed
   * (`first`: the route it used and what it failed with): a route resolved or refreshed, slots
   * waited for, and the failures of a move retried (see the class's comment).
   */
  async #retrying<R extends pg.QueryResultRow>(
    text: string | pg.QueryConfig,
    values: unknown[] | undefined,
    tenantId: string | undefined,
    first?: { route: Route | undefined; failure: unknown },
  ): Promise<pg.QueryResult<R>> {
    const deadline = Date.now() + this.#freezeWaitMs;
    let delay = 25;
    let stale = 0;
    let fresh = false;
    let attempt = first;
    for (;;) {
      let route: Route | undefined;
      let failure: unknown;
      if (attempt !== undefined) {
        ({ route, failure } = attempt);
        attempt = undefined;
      } else {
        route =
          tenantId === undefined
            ? undefined
            : fresh
              ? await this.#router.refresh(tenantId)
              : (this.#router.peek(tenantId) ?? (await this.#router.resolve(tenantId)));
        const lease = this.#tryCheckout(route, tenantId, currentSignal()) ?? (await this.#checkout(route, tenantId));
        try {
          return await lease.entry.pool.query<R>(text as string, values);
        } catch (error) {
          failure = error;
        } finally {
          lease.release();
        }
      }
      // a refused statement did nothing (its implicit transaction rolled back): retrying cannot duplicate it
      const state = sqlStateOf(failure) ?? (failure as { code?: unknown } | null)?.code;
      if (
        (state === STALE_ROUTE || state === 'TENANT_ROUTE_MISMATCH' || state === 'TENANT_ROUTE_UNKNOWN') &&
        stale < 3
      ) {
        stale++;
        fresh = true;
        continue;
      }
      // a schema-tier route whose schema or table is not there (any more): with the route check
      // left to the policy nothing refused it first, so the tenant may have moved and its old
      // schema been dropped. Retried only when the route really changed (the statement did nothing)
      if (
        (state === UNDEFINED_TABLE || state === INVALID_SCHEMA) &&
        route?.searchPath != null &&
        tenantId !== undefined &&
        stale < 3
      ) {
        const now = await this.#router.refresh(tenantId).catch(() => undefined);
        if (now !== undefined && (now.epoch !== route.epoch || now.location !== route.location)) {
          stale++;
          continue;
        }
      }
      if (state === FROZEN && Date.now() + delay <= deadline) {
        // the slot is released while waiting: a frozen tenant does not hold up the others
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 400);
        fresh = true;
        continue;
      }
      throw routeError(failure);
    }
  }

  /** A client connected where the current tenant lives; release it as with pg.Pool. Counts against `maxConnections` until released. */
  async connect(): Promise<pg.PoolClient> {
    const tenantId = tryCurrentTenant();
    const route = tenantId === undefined ? undefined : await this.#router.resolve(tenantId);
    const lease = this.#tryCheckout(route, tenantId, currentSignal()) ?? (await this.#checkout(route, tenantId));
    let client: pg.PoolClient;
    try {
      client = await lease.entry.pool.connect();
    } catch (error) {
      lease.release();
      throw error;
    }
    // a refusal of a stale route refreshes the route before it reaches the caller, so the
    // caller's retry of its transaction goes to the new place
    const router = this.#router;
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    client.query = ((...args: unknown[]) => {
      const result = query(...args);
      if (!(result instanceof Promise)) return result;
      return result.catch(async (error: unknown) => {
        const tenant = tryCurrentTenant();
        if (tenant !== undefined && sqlStateOf(error) === STALE_ROUTE)
          await router.refresh(tenant).catch(() => undefined);
        throw error;
      });
    }) as typeof client.query;
    const release = client.release.bind(client);
    let released = false;
    client.release = (err?: Error | boolean) => {
      if (!released) {
        released = true;
        lease.release();
      }
      return release(err);
    };
    return client;
  }

  /**
   * What the pooler self-test of each open database pool found, by location (`<cluster>/<database>`):
   * each location's pool tests its own path to PostgreSQL at its first checkout (see
   * `TenantPool.poolerInfo`). Never rejects.
   */
  async poolerInfo(): Promise<Record<string, PoolerInfo>> {
    const open = [...this.#pools.entries()];
    const infos = await Promise.all(open.map(([, e]) => e.pool.poolerInfo()));
    return Object.fromEntries(open.map(([location], i) => [location, infos[i]!]));
  }

  async end(): Promise<void> {
    this.#ended = true;
    const pools = [...this.#pools.values()].map((e) => e.pool);
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.end()));
  }

  /**
   * A checkout that needs no wait (the usual one): the tenant's, the database's and an overall
   * slot all free now, taken synchronously in the order of `#checkout`; undefined when one of them
   * is not (what was taken is given back, and `#checkout` queues in order), with fair checkout, or
   * when the work is aborted (`#checkout` says so). `signal`: the work's (currentSignal()).
   */
  #tryCheckout(
    route: Route | undefined,
    tenantId: string | undefined,
    signal: AbortSignal | undefined,
  ): Lease | undefined {
    if (this.#fair || signal?.aborted) return undefined;
    const location = route?.location ?? this.#homeLocation;
    const slots = this.#locationSlots.of(location);
    const own = slots.tenant(tenantId ?? '');
    if (!own.tryAcquire()) return undefined; // busy: it stays, with its holders
    if (slots.location.tryAcquire()) {
      if (this.#slots.tryAcquire()) {
        let entry: Entry;
        try {
          entry = this.#entry(location);
        } catch (error) {
          this.#slots.release();
          slots.location.release();
          own.release();
          throw error;
        }
        return new FastLease(entry, this.#slots, slots.location, own);
      }
      slots.location.release();
    }
    own.release();
    return undefined;
  }

  /**
   * The slots of one checkout, in this order: the tenant's in its database, the database's, then
   * one of `maxConnections`. Waiters queue at the first bound they meet, so the statements of a
   * stuck tenant or database wait in their own queue and hold at most their share of the total.
   * Every wait ends at one deadline (POOL_TIMEOUT). Then the route's pool, marked busy at once (a
   * pool is never evicted between the two).
   */
  async #checkout(route: Route | undefined, tenantId: string | undefined): Promise<Lease> {
    const signal = currentSignal();
    if (signal?.aborted) throw abortError(signal);
    const location = route?.location ?? this.#homeLocation;
    const deadline = Date.now() + this.#checkoutTimeoutMs;
    const timeout = () => new PoolTimeoutError(this.#checkoutTimeoutMs);
    const key = tenantId ?? '';
    const slots = this.#locationSlots.of(location);
    const fair = slots.fair;
    let order: Slot[];
    if (!fair) order = [slots.tenant(key), slots.location, this.#slots];
    else {
      const limits = this.#config.dbLimits?.limitsOf(tenantId);
      const weight = limits?.weight ?? 1;
      const cap = limits?.maxConnections ?? Infinity;
      order = [
        {
          tryAcquire: () => fair.tryAcquire(key, weight, cap),
          acquire: (deadline, onTimeout, signal) => fair.acquire(key, weight, deadline, onTimeout, signal, cap),
          release: () => fair.release(key),
        },
        this.#slots,
      ];
    }
    const held: Slot[] = [];
    const giveBack = () => {
      while (held.length > 0) held.pop()!.release();
    };
    try {
      for (const semaphore of order) {
        if (!semaphore.tryAcquire()) await semaphore.acquire(deadline, timeout, signal);
        held.push(semaphore);
      }
      if (signal?.aborted) throw abortError(signal);
      const entry = this.#entry(location);
      let released = false;
      return {
        entry,
        release: () => {
          if (released) return;
          released = true;
          entry.active--;
          giveBack();
        },
      };
    } catch (error) {
      giveBack();
      throw error;
    }
  }

  /** The pool of the location's database, marked busy (the caller decrements `active` when done). */
  #entry(location: string): Entry {
    if (this.#ended) throw new TenantryError('UNSUPPORTED', 'The pool has ended', { status: 500 });
    const found = this.#pools.get(location);
    if (found) {
      if (location !== this.#lastUsed) {
        this.#pools.delete(location); // most recently used goes last
        this.#pools.set(location, found);
        this.#lastUsed = location;
      }
      found.active++;
      return found;
    }
    const [cluster, database] = location.split('/') as [string, string];
    const base = this.#clusters[cluster];
    if (base === undefined)
      throw new TenantryError('CLUSTER_UNKNOWN', `No connection is configured for cluster ${cluster}`, {
        status: 503,
        details: { cluster },
      });
    const url = new URL(base);
    if (database !== '') url.pathname = `/${validIdentifier(database, 'database')}`;
    const router = this.#router;
    const checkInPrefix = () => this.#checkInPrefix;
    const pool = new TenantPool({
      ...this.#config,
      connectionString: url.toString(),
      max: this.#poolSize,
      // the slots above keep at most poolSize statements here: this bounds opening a connection
      connectionTimeoutMillis: this.#config.connectionTimeoutMillis ?? this.#checkoutTimeoutMs,
      idleTimeoutMillis: this.#config.idleTimeoutMillis ?? 10_000,
      routing: {
        location,
        peek: (tenantId) => router.peekAgain(tenantId),
        get checkInPrefix() {
          return checkInPrefix();
        },
      },
    });
    pool.on('error', () => undefined); // an idle connection dropped: the pool replaces it
    const entry = { pool, active: 1 }; // busy before eviction runs, so it is never the one evicted
    this.#pools.set(location, entry);
    this.#lastUsed = location;
    this.#evict();
    return entry;
  }

  // Close the least recently used idle pools beyond maxPools (a busy one stays until idle).
  #evict(): void {
    for (const [location, entry] of this.#pools) {
      if (this.#pools.size <= this.#maxPools) return;
      if (entry.active > 0) continue;
      this.#pools.delete(location);
      void entry.pool.end().catch(() => undefined);
    }
  }
}

/** True for the errors of a move: retry the transaction (after a short wait for TENANT_FROZEN). */
export function isRetryableRouteError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === STALE_ROUTE || code === FROZEN || code === 'TENANT_ROUTE_STALE' || code === 'TENANT_FROZEN';
}

function routeError(error: unknown): unknown {
  const state = sqlStateOf(error);
  if (state === STALE_ROUTE)
    return new TenantryError('TENANT_ROUTE_STALE', "The tenant's route kept changing: retry", {
      status: 503,
      cause: error,
    });
  if (state === FROZEN)
    return new TenantryError('TENANT_FROZEN', 'The tenant is being moved: retry shortly', {
      status: 503,
      cause: error,
    });
  return error;
}
