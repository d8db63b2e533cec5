import pg from 'pg';
import { runAs } from '../../src/context/tenant-context.js';
import { TenantPool, type TenantPoolConfig } from '../../src/data/tenant-pool.js';
import { TenantDbLimits } from '../../src/data/tenant-db-limits.js';
import { CONTEXT_SETTING } from '../../src/policy/install-sql.js';
import { QueryGuard } from '../../src/guard/query-guard.js';
import { TenantTableMap } from '../../src/guard/tenant-table-map.js';
import { RoutedTenantPool } from '../../src/tiers/routed-tenant-pool.js';
import { TenantRouter } from '../../src/tiers/tenant-router.js';
import { floorQuery } from './floor-query.js';
import { issueThrough, TOKEN_INLINE_TABLE, TokenEncoder } from './token-context.js';

/** One way of running the point select: returns the number of rows it saw (1 when right). */
export type PointQuery = (tenant: string, id: number) => Promise<number>;

/** A variant with its pool open. */
export interface OpenVariant {
  readonly key: string;
  readonly run: PointQuery;
  /** Called once with every tenant before the warm-up (the routed variants fill their route cache). */
  prepare?(tenants: readonly string[]): Promise<void>;
  end(): Promise<void>;
}

/** What a variant needs to connect. */
export interface VariantTargets {
  /** Database installed in signed mode, as the owner role (BYPASSRLS, owns items). */
  signedOwnerUrl: string;
  /** Database installed in signed mode, as the app role. */
  signedAppUrl: string;
  /** Database installed in unsigned mode, as the app role. */
  unsignedAppUrl: string;
  /** Database with the token design (bench/support/token-context.ts), as the app role. */
  tokenAppUrl?: string;
  contextSecret: string;
  /** Extra pool options for every variant (the client-cost pass gives a fake server's `stream`). */
  poolExtras?: pg.PoolConfig;
  /** The client-cost pass: the router reads no catalog (every tenant on the default route). */
  fakeRoutes?: boolean;
}

export interface VariantInfo {
  key: string;
  label: string;
  /** `prepared`: the app's statements are named (prepared once per connection, as Prisma does); else unnamed (raw pg, Kysely, Drizzle). */
  open(targets: VariantTargets, poolMax: number, prepared: boolean): OpenVariant;
}

/** The app's query when RLS does the filtering. */
export const RLS_SQL = 'select id, payload from items where id = $1';
/** The app's query when the app does the filtering. */
export const APP_FILTER_SQL = 'select id, payload from items where tenant_id = $1 and id = $2';

/** The app's statement: unnamed (parsed and planned every time) or named (prepared once per connection). */
function statement(text: string, values: unknown[], prepared: boolean): pg.QueryConfig {
  if (!prepared) return { text, values };
  let name = statementNames.get(text);
  if (!name) statementNames.set(text, (name = `bench_${statementNames.size}`));
  return { name, text, values };
}
const statementNames = new Map<string, string>();

/**
 * Ends a pool. pg-pool's end() resolves before every socket has closed, so the DROP DATABASE …
 * WITH (FORCE) of the clean-up can terminate a backend still closing (57P01): without a listener,
 * that error event would crash the run after its results were printed.
 */
function endPool(pool: pg.Pool): Promise<void> {
  pool.on('error', () => undefined);
  return pool.end();
}

function poolOptions(connectionString: string, max: number, extras?: pg.PoolConfig): pg.PoolConfig {
  // idleTimeoutMillis 0: connections stay open while the other variants take their turn
  return { connectionString, max, idleTimeoutMillis: 0, ...extras };
}

function tenantPoolVariant(
  key: string,
  label: string,
  mode: 'signed' | 'unsigned',
  /** prepareContextStatement; undefined: the library's default ('auto': named once the self-test finds it safe). */
  namedPrefix?: boolean,
  extra: () => Partial<TenantPoolConfig> = () => ({}),
): VariantInfo {
  return {
    key,
    label,
    open(t, max, prepared) {
      const url = mode === 'signed' ? t.signedAppUrl : t.unsignedAppUrl;
      const pool = new TenantPool({
        ...poolOptions(url, max, t.poolExtras),
        contextMode: mode,
        contextSecret: t.contextSecret,
        ...(namedPrefix === undefined ? {} : { prepareContextStatement: namedPrefix }),
        ...extra(),
      });
      return {
        key,
        run: (tenant, id) =>
          runAs(tenant, () => pool.query(statement(RLS_SQL, [id], prepared))).then(
            (r: pg.QueryResult) => r.rowCount ?? 0,
          ),
        end: () => endPool(pool),
      };
    },
  };
}

/**
 * TenantPool sending the guard-clean statement (`tenant_id = $1 and id = $2`, RLS on too), with
 * or without a query guard in `enforce` mode configured as an application would (defaults: call
 * sites on). The pair isolates the guard's cost: same statement, same server work. Await
 * `QueryGuard.ready()` before opening a `+guard` variant.
 */
function guardedVariant(key: string, mode: 'signed' | 'unsigned', guarded: boolean): VariantInfo {
  return {
    key,
    label: `TenantPool ${mode}, RLS, WHERE tenant_id = $1 AND id = $2${guarded ? ', QueryGuard enforce' : ''}`,
    open(t, max, prepared) {
      const guard = guarded
        ? new QueryGuard({ mode: 'enforce', tables: TenantTableMap.from(['public.items']) })
        : undefined;
      const pool = new TenantPool({
        ...poolOptions(mode === 'signed' ? t.signedAppUrl : t.unsignedAppUrl, max, t.poolExtras),
        contextMode: mode,
        contextSecret: t.contextSecret,
        guard,
      });
      return {
        key,
        run: (tenant, id) =>
          runAs(tenant, () => pool.query(statement(APP_FILTER_SQL, [tenant, id], prepared))).then(
            (r: pg.QueryResult) => r.rowCount ?? 0,
          ),
        async end() {
          await endPool(pool);
          // the guard must have checked every statement and refused none, or the pair compares nothing
          const stats = guard?.stats();
          if (stats && (stats.checked === 0 || stats.refused > 0 || stats.unscoped > 0))
            throw new Error(`${key}: guard ${JSON.stringify(stats)}`);
        },
      };
    },
  };
}

/**
 * As tenantPoolVariant, through a RoutedTenantPool and its router (every tenant on the default
 * route): the routing layer's client cost (route cache, slot semaphore, pool map) side by side
 * with the plain pool. Each tenant's first statement reads its route from the catalog.
 */
function routedVariant(key: string, mode: 'signed' | 'unsigned', routeCheck?: 'prefix'): VariantInfo {
  return {
    key,
    label: `RoutedTenantPool ${mode}, RLS, WHERE id = $1 (route cached, default tier${routeCheck ? ", routeCheck 'prefix': enter_route in every prefix" : ''})`,
    open(t, max, prepared) {
      const url = mode === 'signed' ? t.signedAppUrl : t.unsignedAppUrl;
      // routes are read as the router role (the app role may not): benchRoles' router, same password
      const routerUrl = new URL(url);
      if (routerUrl.username === 'tenantry_bench_app') routerUrl.username = 'tenantry_bench_router';
      const home = t.fakeRoutes ? undefined : new pg.Pool({ connectionString: routerUrl.toString(), max: 1 });
      // as deployed: the router hears route changes (LISTEN), so the prefix leaves the route check
      // to the policy (RoutedTenantPool's routeCheck 'auto'). The fake server has no routes to
      // hear: there 'auto' would check the route in every prefix (b-routed+prefix's path, not the
      // deployed one), so the client-cost pass asks for 'policy', what 'auto' does while hearing
      const router = new TenantRouter({
        pool: home ?? { query: async () => ({ rows: [] }) as unknown as pg.QueryResult },
        ...(home ? { listenConnectionString: routerUrl.toString() } : {}),
      });
      const pool = new RoutedTenantPool({
        ...t.poolExtras,
        router,
        clusters: { home: url },
        contextMode: mode,
        contextSecret: t.contextSecret,
        maxConnections: max,
        poolSize: max,
        idleTimeoutMillis: 0,
        ...(routeCheck ? { routeCheck } : t.fakeRoutes ? { routeCheck: 'policy' as const } : {}),
      });
      return {
        key,
        run: (tenant, id) =>
          runAs(tenant, () => pool.query(statement(RLS_SQL, [id], prepared))).then(
            (r: pg.QueryResult) => r.rowCount ?? 0,
          ),
        // every route read before the warm-up: the pair compares the cached path, not catalog reads
        async prepare(tenants) {
          if (home) await router.start();
          for (let i = 0; i < tenants.length; i += 100)
            await Promise.all(tenants.slice(i, i + 100).map((tenant) => router.resolve(tenant)));
        },
        async end() {
          await pool.end();
          await router.close();
          if (home) await endPool(home);
        },
      };
    },
  };
}

/**
 * Issue 15's token design (bench/support/token-context.ts): the same TenantPool path as b (its
 * prefix, AsyncLocalStorage, result check), the context value a per-(tenant, window) token
 * instead of a signed value. No library change: the pool's encoder is swapped for the token
 * encoder through pg-pool's options (what each new client is built with). The first statement
 * of a tenant in a window (per process) first registers the token through `tenantry_token.issue`
 * on a small pool of the app role (one round trip, once per tenant and 5-minute window).
 */
function tokenVariant(key: string, named: boolean, inline = false): VariantInfo {
  // the inline form reads a copy of items whose policy writes the check out (see token-context.ts)
  const sql = inline ? RLS_SQL.replace('from items', `from ${TOKEN_INLINE_TABLE}`) : RLS_SQL;
  return {
    key,
    label: `TenantPool, RLS by token lookup (no definer call; ${inline ? 'written out in the policy' : 'a PL/pgSQL function'}), WHERE id = $1${named ? ', prefix prepared' : ''}`,
    open(t, max, prepared) {
      const url = t.tokenAppUrl ?? t.signedAppUrl;
      const pool = new TenantPool({
        ...poolOptions(url, max, t.poolExtras),
        contextMode: 'signed',
        contextSecret: t.contextSecret,
        prepareContextStatement: named,
      });
      const encoder = new TokenEncoder(t.contextSecret);
      (pool as unknown as { options: Record<string, unknown> }).options.tenantryEncoder = encoder;
      // the client-cost pass (fake server): nothing to register
      const issuer = t.fakeRoutes ? undefined : new pg.Pool({ connectionString: url, max: 2, idleTimeoutMillis: 0 });
      const issue = issuer ? issueThrough(issuer) : () => Promise.resolve();
      const query = (tenant: string, id: number) =>
        runAs(tenant, () => pool.query(statement(sql, [id], prepared))).then((r: pg.QueryResult) => r.rowCount ?? 0);
      return {
        key,
        run(tenant, id) {
          const issuing = encoder.ensureIssued(tenant, 0, issue);
          return issuing ? issuing.then(() => query(tenant, id)) : query(tenant, id);
        },
        // every tenant's token of this window registered before the warm-up (a window that ends
        // during the run registers the next lazily, as an application would)
        async prepare(tenants) {
          for (let i = 0; i < tenants.length; i += 100)
            await Promise.all(tenants.slice(i, i + 100).map((tenant) => encoder.ensureIssued(tenant, 0, issue)));
        },
        async end() {
          await endPool(pool);
          if (issuer) await endPool(issuer);
        },
      };
    },
  };
}

/** Every variant the harness knows, by key. */
export const VARIANTS: Record<string, VariantInfo> = {
  a: {
    key: 'a',
    label: 'raw pg.Pool, no RLS (BYPASSRLS owner), WHERE tenant_id = $1 AND id = $2',
    open(t, max, prepared) {
      const pool = new pg.Pool(poolOptions(t.signedOwnerUrl, max, t.poolExtras));
      return {
        key: 'a',
        run: (tenant, id) => pool.query(statement(APP_FILTER_SQL, [tenant, id], prepared)).then((r) => r.rowCount ?? 0),
        end: () => endPool(pool),
      };
    },
  },
  floor: {
    key: 'floor',
    label:
      'as (a) plus one pipelined set_config(…, true) before the query under the same Sync, raw pg (no TenantPool): the least a transaction-local context costs',
    open(t, max, prepared) {
      const pool = new pg.Pool(poolOptions(t.signedOwnerUrl, max, t.poolExtras));
      return {
        key: 'floor',
        run: (tenant, id) =>
          floorQuery(pool, statement(APP_FILTER_SQL, [tenant, id], prepared), tenant, prepared).then(
            (r) => r.rowCount ?? 0,
          ),
        end: () => endPool(pool),
      };
    },
  },
  b: tenantPoolVariant('b', 'TenantPool signed, RLS, WHERE id = $1 (context pipelined, 1 round trip)', 'signed'),
  // the defaults before issue 15's last pass: the prefix and the app's statements parsed and planned with every statement
  'b-unnamed': tenantPoolVariant(
    'b-unnamed',
    'as b, prepareStatements: false and prepareContextStatement: false (every statement unnamed)',
    'signed',
    false,
    () => ({ prepareStatements: false }),
  ),
  // before core 009: every statement runs the whole signed check (no value registered)
  'b-full-check': tenantPoolVariant(
    'b-full-check',
    'as b, rememberProofs: false (the whole signed check with every statement, as before core 009)',
    'signed',
    undefined,
    () => ({ rememberProofs: false }),
  ),
  "b'": tenantPoolVariant(
    "b'",
    'TenantPool unsigned, RLS, WHERE id = $1 (context pipelined, 1 round trip)',
    'unsigned',
  ),
  c: {
    key: 'c',
    label: 'plain pg.Pool as app role, BEGIN; set_config(…, true); query; COMMIT (4 round trips), unsigned db',
    open(t, max, prepared) {
      const pool = new pg.Pool(poolOptions(t.unsignedAppUrl, max, t.poolExtras));
      const setContext = `select set_config('${CONTEXT_SETTING}', $1, true)`;
      return {
        key: 'c',
        async run(tenant, id) {
          const client = await pool.connect();
          try {
            await client.query('BEGIN');
            await client.query(statement(setContext, [tenant], prepared));
            const r = await client.query(statement(RLS_SQL, [id], prepared));
            await client.query('COMMIT');
            client.release();
            return r.rowCount ?? 0;
          } catch (error) {
            client.release(error as Error);
            throw error;
          }
        },
        end: () => endPool(pool),
      };
    },
  },
  // issue 15's token design: side by side with floor, b, b'
  'b-token': tokenVariant('b-token', false),
  'b-token-named': tokenVariant('b-token-named', true),
  'b-token-inline': tokenVariant('b-token-inline', false, true),
  'b-token-inline-named': tokenVariant('b-token-inline-named', true, true),
  // experiments, not in the default set
  'a+prefix': {
    key: 'a+prefix',
    label: "as (a) (owner, no RLS, app filter) through TenantPool (unsigned): the prefix's cost without RLS",
    open(t, max, prepared) {
      const pool = new TenantPool({ ...poolOptions(t.signedOwnerUrl, max, t.poolExtras), contextMode: 'unsigned' });
      return {
        key: 'a+prefix',
        run: (tenant, id) =>
          runAs(tenant, () => pool.query(statement(APP_FILTER_SQL, [tenant, id], prepared))).then(
            (r: pg.QueryResult) => r.rowCount ?? 0,
          ),
        end: () => endPool(pool),
      };
    },
  },
  'b-named': tenantPoolVariant(
    'b-named',
    'as b, prefixes prepared once per connection (prepareContextStatement: true)',
    'signed',
    true,
  ),
  // the app's own parameterised statements named per connection (prepareStatements), alone and
  // with the named prefix: unnamed statements as the app sends them, parsed once per connection
  'b+prep': tenantPoolVariant('b+prep', 'as b, prepareStatements: true', 'signed', undefined, () => ({
    prepareStatements: true,
  })),
  'b+prep+named': tenantPoolVariant(
    'b+prep+named',
    "as b, prepareStatements: true and prepareContextStatement: 'auto'",
    'signed',
    undefined,
    () => ({ prepareStatements: true, prepareContextStatement: 'auto' }),
  ),
  "b'-named": tenantPoolVariant(
    "b'-named",
    "as b', prefixes prepared once per connection (prepareContextStatement: true)",
    'unsigned',
    true,
  ),
  // the query guard's cost: each +guard variant against the same variant without it
  'b-scoped': guardedVariant('b-scoped', 'signed', false),
  'b-scoped+guard': guardedVariant('b-scoped+guard', 'signed', true),
  "b'-scoped": guardedVariant("b'-scoped", 'unsigned', false),
  "b'-scoped+guard": guardedVariant("b'-scoped+guard", 'unsigned', true),
  // the router's cost: each -routed variant against the same variant through a plain TenantPool
  'b-routed': routedVariant('b-routed', 'signed'),
  "b'-routed": routedVariant("b'-routed", 'unsigned'),
  // the same with the route checked in every prefix (enter_route), as before issue 15's routeCheck
  'b-routed+prefix': routedVariant('b-routed+prefix', 'signed', 'prefix'),
  // the cost of monitoring (per-tenant counters, the tag in application_name) and of the noisy-
  // neighbour protection (per-tenant limits in the prefix, fair checkout), each against b
  // monitoring as the reference server runs it: counters always, the tag while someone watches
  // (nobody does here: no publisher polls a watch)
  'b+monitor': tenantPoolVariant(
    'b+monitor',
    "as b, activity counters + activityTag 'watched' (not watched)",
    'signed',
    undefined,
    () => ({ activity: true, activityTag: 'watched' }),
  ),
  // the same while someone watches (tenants top open): the tag on every statement
  'b+monitor-watched': tenantPoolVariant(
    'b+monitor-watched',
    'as b, activity counters + activityTag (watched: every statement tagged)',
    'signed',
    undefined,
    () => ({ activity: true, activityTag: true }),
  ),
  'b+activity': tenantPoolVariant('b+activity', 'as b, activity counters only', 'signed', undefined, () => ({
    activity: true,
  })),
  'b+tag': tenantPoolVariant(
    'b+tag',
    'as b, activityTag only (application_name in the prefix)',
    'signed',
    undefined,
    () => ({
      activityTag: true,
    }),
  ),
  'b+limits': tenantPoolVariant(
    'b+limits',
    'as b, dbLimits only (3 settings in the prefix)',
    'signed',
    undefined,
    () => ({
      dbLimits: new TenantDbLimits({
        plans: { free: { statementTimeoutMs: 5000, lockTimeoutMs: 1000, workMem: '4MB' } },
        defaultPlan: 'free',
      }),
    }),
  ),
  'b+fair': tenantPoolVariant('b+fair', 'as b, fairCheckout only', 'signed', undefined, () => ({ fairCheckout: true })),
  'b+noisy': tenantPoolVariant(
    'b+noisy',
    "as b, activity + activityTag 'watched' (not watched) + dbLimits (3 settings in the prefix) + fairCheckout",
    'signed',
    undefined,
    () => ({
      activity: true,
      activityTag: 'watched',
      fairCheckout: true,
      dbLimits: new TenantDbLimits({
        plans: { free: { statementTimeoutMs: 5000, lockTimeoutMs: 1000, workMem: '4MB' } },
        defaultPlan: 'free',
      }),
    }),
  ),
};
