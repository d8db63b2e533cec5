import type pg from 'pg';
import type { ContextMode } from '../policy/install-sql.js';
import type { QueryGuard } from '../guard/query-guard.js';
import type { ClientRouting } from './tenant-client.js';
import type { PoolerDetection } from './pooler-self-test.js';
import type { TenantPoolObserver } from './pool-observer.js';
import type { TenantActivity } from './tenant-activity.js';
import type { TenantDbLimits } from './tenant-db-limits.js';

// TenantPool's options and what it reports (tenant-pool.ts re-exports them)

/** Default of `connectionTimeoutMillis` in a TenantPool (pg's default is to wait for ever). */
export const DEFAULT_CHECKOUT_TIMEOUT_MS = 5000;

/** The part of a logger (pino, console-like) a TenantPool uses: it logs what its pooler self-test found, and why remembered proofs are off. */
export interface TenantPoolLogger {
  info(details: object, message?: string): void;
  warn(details: object, message?: string): void;
}

/** Options of the pooler self-test (see `TenantPoolConfig.poolerSelfTest`). */
export interface PoolerSelfTestOptions {
  /** Bound of the self-test in ms (default 3000): past it the pool reports `unknown` and uses the unnamed prefix. */
  timeoutMs?: number;
  /** Ask pgbouncer's admin console for its version when a pooler is seen (default true; see `detectPooler`). */
  adminConsole?: boolean;
}

/** What a pool's pooler self-test found, and the context prefix form the pool chose from it. */
export interface PoolerInfo extends PoolerDetection {
  /** `named`: parsed once per connection (`prepareContextStatement`, where safe); `unnamed`: parsed with every statement. */
  prefix: 'named' | 'unnamed';
  /** The app's parameterised statements: `named` per connection (`prepareStatements`, where safe) or `unnamed`. */
  statements: 'named' | 'unnamed';
  /** The location (`<cluster>/<database>`) of a RoutedTenantPool's database pool. */
  location?: string;
}

/** Options of {@link TenantPool}: every pg.Pool option, plus how the context is encoded. */
export interface TenantPoolConfig extends pg.PoolConfig {
  /**
   * pg's option, bounded by default here: how long `query` / `connect` wait for a free connection
   * (or for a new one to open) before failing with POOL_TIMEOUT (503). Default 5000 ms; 0 waits
   * for ever (not advised).
   */
  connectionTimeoutMillis?: number;
  /**
   * statement_timeout (ms) applied to every statement, transaction-locally, in the same prefix
   * (and round trip) as the tenant context: pooler-safe (no startup parameter). A statement past
   * it fails with STATEMENT_TIMEOUT (504). Default: none (the role's default applies).
   */
  statementTimeoutMs?: number;
  /** Must match the mode the database was installed with. Default `signed`. */
  contextMode?: ContextMode;
  /** Secret shared with `tenantry install` in signed mode (≥ 32 characters). Never sent to the database. */
  contextSecret?: string;
  /**
   * Lifetime of a signed context value, in seconds (default 300, at least 5). Bounds the use of a
   * leaked value. A value is signed again after a fifth of it (at most 60 s), so the database's
   * clock may be ahead of the app's by up to four fifths of it.
   */
  contextTtlSeconds?: number;
  /**
   * Signed mode: register a tenant's signed value with the database at its 3rd use within a
   * minute (in the background, in statements of their own, up to 64 values each, a queued value
   * waiting up to 100 ms for others), so later statements with it are
   * checked by one index probe instead of the HMAC and the tenant's gate (core migration 009,
   * docs/security.md "Remembered proofs"). Nothing waits for a registration and none can fail a
   * statement. Default `true`; always off in Citus mode and unsigned mode.
   */
  rememberProofs?: boolean;
  /**
   * Parse the context statement once per connection (a named prepared statement) instead of
   * with every statement: less server CPU per statement (about 25 µs on PostgreSQL 15 in
   * docs/benchmarks.md). Behind pgbouncer in transaction mode (≥ 1.21 with
   * `max_prepared_statements`) `true` names it too, but another client's SQL can then replace it
   * (docs/security.md): do not ask for it there.
   * - `'auto'`: the unnamed form until the self-test finds that each client has a server session
   *   of its own (a direct connection or session pooling), the named form from then on; nothing
   *   waits for the self-test. Without the self-test (`poolerSelfTest: false`), always unnamed.
   *   The default (with the pooler self-test on, as it is by default) is `'auto'` on a direct
   *   connection only: under session pooling a pooler may lend a session without a reset.
   * - `false` (the default with `poolerSelfTest: false` or `citus: true`): always unnamed.
   * - `true`: the first checkout waits for the self-test (bounded) and the named form is used
   *   only where it found it safe; elsewhere the prefix stays unnamed and `logger` is warned.
   *   Without the self-test, always named.
   */
  prepareContextStatement?: boolean | 'auto';
  /**
   * Name the app's own unnamed statements that have parameters (`pool.query(text, values)`, what
   * Kysely, Drizzle and raw pg send), so each is parsed and planned once per connection instead
   * of with every statement: less server CPU per statement (docs/benchmarks.md). Default: on a
   * direct connection (no pooler, as the self-test finds) when the pooler self-test runs (the
   * default) and not in Citus mode; `false` otherwise. With `true`, statements stay unnamed until
   * the pooler self-test finds named statements safe, and nothing waits for it; with
   * `poolerSelfTest: false` and `true` given, always named. `false`: always unnamed (e.g. for
   * statements whose plans must stay custom, see below). Only where each client has a server
   * session of its own (direct, session pooling: not behind transaction pooling, see
   * docs/security.md). Per connection, the first 256 distinct texts of up to 16 KiB each (128 KiB
   * in all) are named (`tenantry_s<n>`); others stay unnamed. After DDL that changes a
   * statement's result columns (0A000), the text is parsed anew under a fresh name, and a
   * statement outside a transaction block is run again at once (its failure rolled back all it
   * did); inside one the app sees the error once. Plans may become generic after five runs
   * (PostgreSQL's plan_cache_mode).
   */
  prepareStatements?: boolean;
  /**
   * The pooler self-test (docs/usage.md, "Behind a pooler"): at the pool's first checkout, in the
   * background, it finds out whether a pooler sits in front of PostgreSQL, how it pools, and
   * whether named prepared statements are safe there; it chooses the prefix form from that,
   * tells `logger`, and answers `poolerInfo()`. Bounded, and never fails the pool: a self-test
   * that fails reports `unknown` (and the unnamed prefix, safe everywhere). Default on; `false`
   * skips it at start (`prepareContextStatement` is then used as given).
   */
  poolerSelfTest?: boolean | PoolerSelfTestOptions;
  /** Where the pool says what its pooler self-test found (`info`, and `warn` for a prefix form it could not use). Default: nowhere. */
  logger?: TenantPoolLogger;
  /**
   * A query guard (`tenantry/guard`) that checks each statement's text before it is sent:
   * `report` records unscoped statements, `enforce` refuses them with TENANT_SCOPE_MISSING.
   * Await `QueryGuard.ready()` before the first query.
   */
  guard?: QueryGuard;
  /**
   * Result check: a row whose tenant column (read from a table) is not the current tenant fails
   * the query with CROSS_TENANT_ROW, so a policy bug, a view or function that bypasses RLS, or a
   * tier without RLS is caught in the app. Default: on, for columns named `tenant_id`; pass
   * `{ columns: [...] }` for other names, or `false` to turn it off.
   */
  checkResults?: boolean | { columns: string[] };
  /**
   * Set by RoutedTenantPool for the pool of one database: the connection's location and the
   * router's cached routes, so each statement carries its route epoch (and schema). Not for
   * direct use.
   */
  routing?: ClientRouting;
  /**
   * Told each statement's tenant and duration once it completes (usage metering's database
   * time: `tenantry/metering`'s `meterDatabaseTime`). Default: none, at no cost.
   */
  observer?: TenantPoolObserver;
  /**
   * Per-tenant statement_timeout, lock_timeout and work_mem by plan (see TenantDbLimits), set
   * transaction-locally in the same prefix (and round trip) as the context; their weights serve
   * `fairCheckout`. Default: none (the role's defaults, and `statementTimeoutMs`).
   */
  dbLimits?: TenantDbLimits;
  /**
   * Weighted fair sharing of this pool's connections between tenants (see docs/noisy-neighbours.md):
   * a free connection goes to the waiting tenant holding the fewest for its weight (`dbLimits`
   * weights, 1 without), and one tenant holds at most `maxPerTenant` (default: `max` less a
   * quarter, at least 1; lower for a plan's `maxConnections`) so a tenant stuck on locks or slow queries leaves the rest to the others.
   * Default off.
   */
  fairCheckout?: boolean | { maxPerTenant?: number };
  /**
   * Counts each tenant's DB time, statements, rows, errors, checkouts, waits and connections held
   * (`pool.activity`, `tenantry tenants top`): pass a TenantActivity to share one between pools,
   * or `true` for one of this pool's own. Default off.
   */
  activity?: boolean | TenantActivity;
  /**
   * Tag each tenant's statements in `pg_stat_activity.application_name` (transaction-locally, in
   * the prefix): `tenantry:<hash of the tenant id>` (see `activityTag`), never the context value,
   * so `tenantry tenants top` shows what each tenant runs and waits on right now. Set by a
   * tenant's statement outside a transaction block (a BEGIN tags its whole block); statements
   * without a tenant keep the connection's own name. Default off.
   *
   * `'watched'`: only while someone watches (`tenantry tenants top`, the console's top page, or
   * `watchTenantActivity`), as `activity.watched` says: it needs `activity`, kept up to date by
   * `publishTenantActivity`. What the tag costs per statement is then paid only while watched
   * (docs/monitoring.md); the live columns fill in within the publisher's `watchPollMs`.
   */
  activityTag?: boolean | 'watched';
  /**
   * Citus mode (docs/citus.md): Citus carries only `SET LOCAL` inside a transaction block to its
   * workers, so each statement outside a transaction goes as BEGIN, SET LOCAL of the context,
   * the statement and COMMIT, pipelined before one Sync (one round trip); inside the
   * application's transaction, as SET LOCAL and the statement. Use it on a Citus coordinator
   * installed with `tenantry install --citus`. Cursors and streams then need a transaction.
   */
  citus?: boolean;
}
