import pg from 'pg';
import { currentScope, currentSignal, tryCurrentTenant } from '../context/tenant-context.js';
import { ConfigurationError, TenantryError } from '../errors/tenantry-error.js';
import { sqlStateOf } from '../errors/sqlstate.js';
import { abortError, PoolTimeoutError } from '../errors/wait-errors.js';
import { ContextRegistrar, registerThrough } from './context-registrar.js';
import { ContextSigner, unsignedContext, type ContextEncoder } from './context-signer.js';
import { guardVerdict, TaggedQuery, TenantClient, type TenantClientConfig } from './tenant-client.js';
import type { QueryGuard } from '../guard/query-guard.js';
import { activeTelemetry } from '../telemetry/telemetry-hooks.js';
import type { PrefixForm } from './context-prefix.js';
import { describePooler, detectPooler } from './pooler-self-test.js';
import { FairCheckout } from './fair-checkout.js';
import { TenantActivity } from './tenant-activity.js';
import type { TenantDbLimits } from './tenant-db-limits.js';
import {
  isStatementError,
  noop,
  pulseIdle,
  releaseReason,
  type IdlePool,
  type PendingCheckout,
} from './pool-hand-over.js';
import {
  DEFAULT_CHECKOUT_TIMEOUT_MS,
  type PoolerInfo,
  type PoolerSelfTestOptions,
  type TenantPoolConfig,
  type TenantPoolLogger,
} from './tenant-pool-config.js';

// its options and what it reports, where they were before the split
export * from './tenant-pool-config.js';

/** How long a released client may take to deliver the ReadyForQuery still due before it is destroyed. */
const DRAIN_TIMEOUT_MS = 1000;

/**
 * A pg.Pool whose every statement runs as the current tenant (see `runAs`): the tenant is
 * set transaction-locally in the same round trip as the statement, so raw pg, Kysely,
 * Drizzle and anything built on pg.Pool use it unchanged. Connect it as the application
 * role (NOSUPERUSER, NOBYPASSRLS): PostgreSQL's policies do the isolating.
 *
 * @example
 * const pool = new TenantPool({ connectionString, contextSecret });
 * await runAs(tenantId, () => pool.query('select * from recordings'));
 */
export class TenantPool extends pg.Pool {
  /** The query guard, run by query() in the caller's stack before the connection hand-over. */
  readonly tenantryGuard: QueryGuard | undefined;
  /** The prefix form every client of this pool writes (named only once the self-test found it safe). */
  readonly #prefixForm: PrefixForm;
  readonly #statementForm: PrefixForm;
  readonly #statementsRequested: boolean;
  /** Which of the two forms the defaults chose (not the caller): named only on a direct connection. */
  readonly #directOnly: { prefix: boolean; statements: boolean };
  /** `prepareContextStatement` as given (undefined: false). */
  readonly #prepareRequested: boolean | 'auto';
  /** The self-test's options, or undefined when it does not run at start. */
  readonly #selfTest: PoolerSelfTestOptions | undefined;
  readonly #clientConfig: pg.ClientConfig;
  readonly #logger: TenantPoolLogger | undefined;
  /** Remembered proofs' registrations (signed mode, see rememberProofs): ended with the pool. */
  readonly #registrar: ContextRegistrar | undefined;
  readonly #location: string | undefined;
  readonly #stopSelfTest = new AbortController();
  #poolerInfo: Promise<PoolerInfo> | undefined;
  /** True once the self-test answered (or when the first checkout need not wait for it). */
  #selfTestSettled: boolean;
  readonly #fair: FairCheckout | undefined;
  readonly #dbLimits: TenantDbLimits | undefined;
  /** Each tenant's use of the database through this pool, when `activity` is on. */
  readonly activity: TenantActivity | undefined;

  constructor(config: TenantPoolConfig = {}) {
    const {
      contextMode = 'signed',
      contextSecret,
      contextTtlSeconds,
      rememberProofs = true,
      prepareContextStatement: prepareContextOption,
      prepareStatements: prepareStatementsOption,
      guard,
      checkResults = true,
      routing,
      statementTimeoutMs,
      poolerSelfTest = true,
      logger,
      observer,
      dbLimits,
      fairCheckout,
      activity,
      activityTag,
      citus = false,
      ...poolConfig
    } = config;
    const max = poolConfig.max ?? 10;
    if (activityTag !== undefined && activityTag !== true && activityTag !== false && activityTag !== 'watched')
      throw new ConfigurationError(`activityTag must be true, false or 'watched', got ${String(activityTag)}`);
    if (activityTag === 'watched' && (activity === undefined || activity === false))
      throw new ConfigurationError(
        "activityTag: 'watched' needs activity (a TenantActivity that publishTenantActivity keeps up to date)",
      );
    if (citus && (dbLimits !== undefined || activityTag === true || activityTag === 'watched'))
      throw new ConfigurationError(
        'Citus mode does not carry dbLimits or activityTag yet: leave them out with citus: true',
      );
    let fair: FairCheckout | undefined;
    if (fairCheckout) {
      const cap = fairCheckout === true ? undefined : fairCheckout.maxPerTenant;
      if (cap !== undefined && !(Number.isInteger(cap) && cap >= 1 && cap <= max))
        throw new ConfigurationError(`fairCheckout.maxPerTenant must be a whole number from 1 to max (${max})`);
      fair = new FairCheckout(max, cap ?? Math.max(1, max - Math.ceil(max / 4)));
    }
    if (dbLimits !== undefined && typeof (dbLimits as { limitsOf?: unknown }).limitsOf !== 'function')
      throw new ConfigurationError('dbLimits must be a TenantDbLimits');
    if (!fair && dbLimits?.hasDbTimeBudget === true)
      throw new ConfigurationError(
        'dbLimits with dbTimeMsPerSecond needs fairCheckout: true (the budget is kept there)',
      );
    const counters = activity === true ? new TenantActivity() : activity === false ? undefined : activity;
    const selfTest = poolerSelfTest === false ? undefined : poolerSelfTest === true ? {} : poolerSelfTest;
    // Named statements by default, where the self-test finds a direct connection (#runSelfTest):
    // the unnamed prefix and statement are parsed and planned with every statement, most of what
    // signed RLS costs over raw pg (docs/benchmarks.md, issue 15). Not by default without the
    // self-test (nothing would tell a transaction pooler), nor in Citus mode (not measured there).
    const namedByDefault = selfTest !== undefined && !citus;
    const prepareContextStatement = prepareContextOption ?? (namedByDefault ? 'auto' : false);
    const prepareStatements = prepareStatementsOption ?? namedByDefault;
    // what the defaults chose is used on a direct connection only (see #runSelfTest)
    const directOnly = {
      prefix: prepareContextOption === undefined,
      statements: prepareStatementsOption === undefined,
    };
    // until the self-test says the named form is safe, the unnamed one (safe behind any pooler)
    if (
      prepareContextStatement !== undefined &&
      typeof prepareContextStatement !== 'boolean' &&
      prepareContextStatement !== 'auto'
    )
      throw new ConfigurationError("prepareContextStatement must be true, false or 'auto'");
    const prefixForm: PrefixForm = { named: prepareContextStatement === true && selfTest === undefined };
    if (typeof prepareStatements !== 'boolean') throw new ConfigurationError('prepareStatements must be true or false');
    const statementForm: PrefixForm = { named: prepareStatements && selfTest === undefined };
    const resultColumns = new Set(
      checkResults === false ? [] : checkResults === true ? ['tenant_id'] : checkResults.columns,
    );
    // the registrations run on this pool, which exists only after super(): attached then
    const registrar =
      contextMode === 'signed' && !citus && rememberProofs !== false ? new ContextRegistrar() : undefined;
    let encoder: ContextEncoder;
    if (contextMode === 'unsigned') encoder = unsignedContext;
    else if (contextMode === 'signed') {
      if (!contextSecret)
        throw new ConfigurationError('Signed context mode needs contextSecret (or set contextMode: "unsigned")');
      encoder = new ContextSigner(contextSecret, { ttlSeconds: contextTtlSeconds });
    } else throw new ConfigurationError(`Unknown contextMode ${String(contextMode)}`);
    super({
      ...poolConfig,
      connectionTimeoutMillis: poolConfig.connectionTimeoutMillis ?? DEFAULT_CHECKOUT_TIMEOUT_MS,
      Client: TenantClient,
      tenantryStatementTimeoutMs: statementTimeoutMs,
      tenantryEncoder: encoder,
      tenantryRegistrar: registrar,
      tenantryPrepareContext: prefixForm,
      tenantryPrepareStatements: statementForm,
      tenantryGuard: guard,
      tenantryResultColumns: resultColumns,
      tenantryRouting: routing,
      tenantryObserver: observer,
      tenantryDbLimits: dbLimits,
      tenantryActivity: counters,
      tenantryActivityTag: activityTag === 'watched' ? 'watched' : activityTag === true,
      tenantryCitus: citus,
    } as unknown as pg.PoolConfig & TenantClientConfig);
    this.#fair = fair;
    this.#dbLimits = dbLimits;
    this.activity = counters;
    this.tenantryGuard = guard;
    this.#prefixForm = prefixForm;
    this.#statementForm = statementForm;
    this.#statementsRequested = prepareStatements;
    this.#directOnly = directOnly;
    this.#prepareRequested = prepareContextStatement ?? false;
    this.#selfTest = selfTest;
    this.#clientConfig = poolConfig;
    this.#logger = logger;
    // pg-pool emits 'error' for a connection that fails while idle in the pool (the server ended
    // it: a restart, a failover, pg_terminate_backend): with no listener Node would end the
    // process (the sixth try-out). The pool has already dropped that connection and opens
    // another when needed; the app's own listeners are called as well. Told to the logger by its
    // SQLSTATE only (pg's message can hold a host name)
    this.on('error', (error: Error) => {
      try {
        this.#logger?.warn(
          { sqlstate: sqlStateOf(error) },
          'tenantry: an idle connection of this pool ended (the pool opens another when needed)',
        );
      } catch {
        // a logger that throws must not end the process either
      }
    });
    this.#registrar = registrar;
    registrar?.attach(
      registerThrough(this),
      (error) => this.#registrationsStopped(error),
      () =>
        this.#logger?.warn(
          {},
          'tenantry: remembered proofs: a session of this pool would not register (a registration needs READ COMMITTED and a writable primary: see default_transaction_isolation and default_transaction_read_only of its role and database); its statements are checked in full',
        ),
    );
    this.#location = routing?.location;
    // only the named form depends on the answer: without it, the first checkout does not wait
    // 'auto' switches when the answer comes, without making anyone wait for it
    this.#selfTestSettled = !(this.#prepareRequested === true && selfTest !== undefined);
  }

  /**
   * What the pooler self-test found (a pooler? which pooling mode? are named prepared statements
   * safe?) and the prefix form this pool uses. Runs the self-test if it has not run yet (also
   * when `poolerSelfTest: false`, without changing the prefix form then); never rejects, and
   * answers within the self-test's bound.
   *
   * @example
   * const info = await pool.poolerInfo(); // { pooler: 'pgbouncer', mode: 'transaction', namedStatements: 'unsafe', prefix: 'unnamed', … }
   */
  poolerInfo(): Promise<PoolerInfo> {
    this.#poolerInfo ??= this.#runSelfTest();
    return this.#poolerInfo;
  }

  async #runSelfTest(): Promise<PoolerInfo> {
    const options = this.#selfTest ?? {};
    const found = await detectPooler(this.#clientConfig, { ...options, signal: this.#stopSelfTest.signal });
    if (this.#selfTest !== undefined) {
      // named statements of the pool's own choosing ('auto', prepareStatements) only where each
      // client has a server session of its own: behind transaction pooling a session that ran
      // PREPARE cannot be closed by closing the client (docs/security.md). By default, only on a
      // direct connection: a session pooler may lend a server session to the next client without
      // a reset (pgbouncer's server_reset_query empty), with the named statements another
      // client's SQL left in it. Asked for, under session pooling too: a name taken in the
      // session before this client parsed it fails its Parse with 42P05, and the session
      // quarantine then refuses the session (it never runs a statement it did not prepare).
      const direct = found.namedStatements === 'safe' && found.mode === 'none';
      const ownSession = found.namedStatements === 'safe' && (found.mode === 'none' || found.mode === 'session');
      this.#prefixForm.named =
        this.#prepareRequested === true
          ? found.namedStatements === 'safe'
          : this.#prepareRequested === 'auto' && (this.#directOnly.prefix ? direct : ownSession);
      this.#statementForm.named = this.#statementsRequested && (this.#directOnly.statements ? direct : ownSession);
    }
    this.#selfTestSettled = true;
    const info: PoolerInfo = {
      ...found,
      prefix: this.#prefixForm.named ? 'named' : 'unnamed',
      statements: this.#statementForm.named ? 'named' : 'unnamed',
      ...(this.#location === undefined ? {} : { location: this.#location }),
    };
    const where = this.#location === undefined ? '' : ` (${this.#location})`;
    try {
      this.#logger?.info(
        { pooler: info },
        `tenantry pooler self-test${where}: ${describePooler(info)}; context prefix ${info.prefix}`,
      );
      if (this.#prepareRequested === true && info.prefix === 'unnamed')
        this.#logger?.warn(
          { pooler: info },
          `tenantry: prepareContextStatement is not used${where}: named prepared statements are ${info.namedStatements} here, so the context prefix is parsed with every statement`,
        );
    } catch {
      // a logger that throws must not fail the pool
    }
    return info;
  }

  /** The registrar stopped on a missing function (42883) or privilege (42501): said once, to the logger (ContextRegistrar guards a throwing one). */
  #registrationsStopped(error: unknown): void {
    const state = sqlStateOf(error);
    this.#logger?.warn(
      { sqlstate: state },
      state === '42883'
        ? 'tenantry: remembered proofs are off for this pool: the database has no tenantry.register_contexts (run tenantry install to apply core migration 009)'
        : "tenantry: remembered proofs are off for this pool: its role may not execute tenantry.register_contexts (it is granted to the install's app role)",
    );
  }

  /** Starts the self-test at the first checkout; the promise to wait for when the named form waits on it. */
  #selfTestGate(): Promise<unknown> | undefined {
    if (this.#selfTest === undefined) return undefined;
    const info = this.poolerInfo();
    return this.#selfTestSettled ? undefined : info;
  }

  /** Ends the pool, and its self-test if one is running (its connections closed). */
  override end(): Promise<void>;
  override end(callback: () => void): void;
  override end(callback?: () => void): Promise<void> | void {
    this.#stopSelfTest.abort();
    this.#registrar?.close();
    const selfTest = this.#poolerInfo ?? Promise.resolve();
    const ended = (pg.Pool.prototype.end as () => Promise<void>).call(this);
    const both = Promise.all([ended, selfTest]).then(() => undefined);
    if (!callback) return both;
    void both.then(
      () => callback(),
      () => callback(),
    );
  }

  /**
   * Refuses to run as a role that skips RLS (superuser, BYPASSRLS): such a role would see
   * every tenant's rows silently. Call once at start-up.
   */
  async assertSafeRole(): Promise<void> {
    const { rows } = await super.query(
      'select current_user as role, rolsuper, rolbypassrls from pg_roles where rolname = current_user',
    );
    const row = rows[0] as { role: string; rolsuper: boolean; rolbypassrls: boolean } | undefined;
    if (!row || row.rolsuper || row.rolbypassrls) {
      throw new ConfigurationError(
        `The pool's role ${row?.role ?? '?'} bypasses row level security: connect as the application role`,
      );
    }
  }

  /**
   * A client where the current tenant's statements run; release it as with pg.Pool. Fails with
   * POOL_TIMEOUT (503) when none is free within `connectionTimeoutMillis`, and with the work's
   * abort error when its signal (see runWithSignal) has already aborted.
   */
  override connect(): Promise<pg.PoolClient>;
  override connect(
    callback: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void,
  ): void;
  override connect(
    callback?: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void,
  ): Promise<pg.PoolClient> | void {
    if (callback && this.#handOverIdle(callback)) return;
    const started = performance.now();
    const timeout = (this.options as { connectionTimeoutMillis?: number }).connectionTimeoutMillis ?? 0;
    // pg-pool's checkout timeouts carry no code: a failure without a SQLSTATE that ends the full
    // wait is that timeout (a refused login, a dead server carry their own error sooner)
    const classify = (err: Error): Error =>
      timeout > 0 &&
      !(err instanceof TenantryError) &&
      sqlStateOf(err) === undefined &&
      performance.now() - started >= timeout - 1
        ? new PoolTimeoutError(timeout, err)
        : err;
    const gate = this.#selfTestGate();
    if (gate) {
      // with prepareContextStatement, the first checkouts wait (bounded) for the prefix form
      if (callback) {
        void gate.then(() => this.connect(callback));
        return;
      }
      return gate.then(() => this.connect());
    }
    if (this.#fair || this.activity) {
      // the tenant of a checkout is the caller's (pg-pool's query calls connect synchronously)
      const tenant = tryCurrentTenant() ?? '';
      if (callback) {
        this.#accountedConnect(tenant, classify, callback);
        return;
      }
      return new Promise<pg.PoolClient>((resolve, reject) =>
        this.#accountedConnect(tenant, classify, (err, client) => (err ? reject(err) : resolve(client!))),
      );
    }
    if (callback) {
      // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- mirrors node-postgres' own signatures, which use any
      return (pg.Pool.prototype.connect as Function).call(
        this,
        (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) =>
          callback(err ? classify(err) : err, client, done),
      );
    }
    const signal = currentSignal();
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return (pg.Pool.prototype.connect as () => Promise<pg.PoolClient>).call(this).catch((err: Error) => {
      throw classify(err);
    });
  }

  /**
   * A checkout through the fair queue (when on) and the activity counters (when on), in callback
   * style: with a connection idle and the tenant under its share, it is pg-pool's own checkout
   * plus a map lookup and a few counters — no promise, no extra tick (bench:isolation's client
   * cost of b+fair, b+monitor). Only a checkout that must wait for its turn takes a promise.
   * The slot and the counters are given back in `_release`, found by the key left on the client.
   */
  #accountedConnect(
    tenant: string,
    classify: (err: Error) => Error,
    done: (err: Error | undefined, client: pg.PoolClient | undefined, release: (release?: unknown) => void) => void,
  ): void {
    // the clock is read for the activity counters' wait time (and the fair queue's deadlines),
    // but not where pg-pool is about to hand over an idle connection: there is no wait to time
    // (two of the four reads of performance.now() a statement cost, ~50 ns each: bench/accounting-cost.ts)
    const started = this.activity && (this.#fair || !this.#idleAtOnce()) ? performance.now() : 0;
    const signal = currentSignal();
    if (signal?.aborted) {
      const error = abortError(signal);
      process.nextTick(() => done(error, undefined, noop));
      return;
    }
    if (this.#fair) this.#fairConnect(tenant, started, signal, classify, done);
    else this.#checkout(tenant, started, false, classify, done);
  }

  /**
   * The checkout of pool.query (and of a callback `connect`) when an idle connection is there for
   * it: queued as pg-pool's connect queues it, handed over on the next tick by pg-pool's own
   * pulse, but without the checkout timer pg-pool arms and clears for every checkout (a timer and
   * a closure per statement, bench:isolation's client cost) when nothing can make it wait. Should
   * the idle connection be gone by then (closed on an error), the timer is armed at that point.
   * False (nothing done) when the checkout may have to wait, or is accounted, or waits on the
   * self-test: the general path handles it.
   */
  #handOverIdle(
    callback: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void,
  ): boolean {
    const pool = this as unknown as IdlePool;
    if (this.#fair || this.activity || pool.ending || !this.#idleAtOnce() || this.#selfTestGate()) return false;
    const item: PendingCheckout = { callback, timedOut: false };
    pool._pendingQueue.push(item);
    process.nextTick(pulseIdle, pool, item);
    return true;
  }

  /** True when pg-pool has an idle connection for this checkout and every one queued before it (handed over on the next tick). */
  #idleAtOnce(): boolean {
    const pool = this as unknown as { _idle: unknown[]; _pendingQueue: unknown[] };
    return pool._idle.length > pool._pendingQueue.length;
  }

  /** The fair queue's part of a checkout: the tenant's DB time budget (if any), then its slot. */
  #fairConnect(
    tenant: string,
    started: number,
    signal: AbortSignal | undefined,
    classify: (err: Error) => Error,
    done: (err: Error | undefined, client: pg.PoolClient | undefined, release: (release?: unknown) => void) => void,
  ): void {
    const fair = this.#fair!;
    const activity = this.activity;
    const limits = this.#dbLimits?.limitsOf(tenant === '' ? undefined : tenant);
    const weight = limits?.weight ?? 1;
    const cap = limits?.maxConnections ?? Infinity;
    const rate = limits?.dbTimeMsPerSecond;
    const timeout = (this.options as { connectionTimeoutMillis?: number }).connectionTimeoutMillis ?? 0;
    if (rate !== undefined) {
      if (started === 0) started = performance.now();
      // over its budget of connection time: an admission delay, within the checkout's bound
      const now = performance.now();
      const delay = fair.budgetDelay(tenant, rate, limits!.dbTimeBurstMs!, now);
      if (delay > 0) {
        this.#budgetWait(tenant, started, delay, timeout, signal, classify, done);
        return;
      }
    }
    if (fair.tryAcquire(tenant, weight, cap)) {
      this.#checkout(tenant, started, rate !== undefined, classify, done);
      return;
    }
    fair
      .acquire(
        tenant,
        weight,
        timeout > 0 ? Date.now() + timeout - (started === 0 ? 0 : performance.now() - started) : Infinity,
        () => new PoolTimeoutError(timeout),
        signal,
        cap,
      )
      .then(
        () => this.#checkout(tenant, started, rate !== undefined, classify, done),
        (error: Error) => {
          activity?.waitFailed(tenant, performance.now() - started);
          done(error, undefined, noop);
        },
      );
  }

  /** Waits `delay` ms (a tenant over its DB time budget), then checks out; bounded by the checkout timeout and the work's signal. */
  #budgetWait(
    tenant: string,
    started: number,
    delay: number,
    timeout: number,
    signal: AbortSignal | undefined,
    classify: (err: Error) => Error,
    done: (err: Error | undefined, client: pg.PoolClient | undefined, release: (release?: unknown) => void) => void,
  ): void {
    const activity = this.activity;
    const waitedSoFar = performance.now() - started;
    if (timeout > 0 && waitedSoFar + delay >= timeout) {
      // it would still be over its budget when the checkout's bound ends: refuse now, not later
      activity?.waitFailed(tenant, waitedSoFar);
      process.nextTick(() => done(new PoolTimeoutError(timeout), undefined, noop));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      activity?.waitFailed(tenant, performance.now() - started);
      done(abortError(signal!), undefined, noop);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      this.#fairConnect(tenant, started, signal, classify, done);
    }, Math.ceil(delay));
    signal?.addEventListener('abort', onAbort, { once: true });
  }

  /** pg-pool's checkout for `tenant`, whose fair slot (if any) is already held. */
  #checkout(
    tenant: string,
    started: number,
    budgeted: boolean,
    classify: (err: Error) => Error,
    done: (err: Error | undefined, client: pg.PoolClient | undefined, release: (release?: unknown) => void) => void,
  ): void {
    const activity = this.activity;
    (
      pg.Pool.prototype.connect as (cb: (err: Error | undefined, client: pg.PoolClient | undefined) => void) => void
    ).call(this, (err, client) => {
      if (err || !client) {
        this.#fair?.release(tenant);
        if (activity) activity.waitFailed(tenant, started === 0 ? 0 : performance.now() - started);
        done(classify(err ?? new Error('no client')), undefined, noop);
        return;
      }
      if (activity) {
        // under a millisecond is a free connection handed over, not a wait
        const waited = started === 0 ? 0 : performance.now() - started;
        activity.checkedOut(tenant, waited >= 1 ? waited : 0);
      }
      (client as AccountedClient)[CHECKOUT_KEY] = tenant;
      if (budgeted) (client as AccountedClient)[CHECKOUT_AT] = performance.now();
      done(undefined, client, client.release as (release?: unknown) => void);
    });
  }

  // A client handed back inside a transaction would carry that transaction (and its tenant)
  // to the next borrower: destroy it instead, so PostgreSQL rolls the transaction back. One with
  // replies still due (a statement running or queued, or an error delivered before its
  // ReadyForQuery) waits until it is idle, briefly, and is then judged by its transaction status;
  // one with a statement still in flight, or that sent a cancel request, is destroyed.
  _release(
    client: pg.PoolClient & {
      transactionStatus?: string;
      repliesPending?: boolean;
      cancelSent?: boolean;
      quarantined?: boolean;
    },
    idleListener: (err: Error) => void,
    err?: unknown,
  ): unknown {
    // the fair slot and the activity counters of an accounted checkout go back first, once
    const key = (client as AccountedClient)[CHECKOUT_KEY];
    if (key !== undefined) {
      (client as AccountedClient)[CHECKOUT_KEY] = undefined;
      const at = (client as AccountedClient)[CHECKOUT_AT];
      if (at !== undefined) {
        // the connection time of a tenant with a budget is charged to it
        (client as AccountedClient)[CHECKOUT_AT] = undefined;
        const limits = this.#dbLimits?.limitsOf(key === '' ? undefined : key);
        const now = performance.now();
        if (limits?.dbTimeMsPerSecond !== undefined)
          this.#fair?.charge(key, now - at, limits.dbTimeMsPerSecond, limits.dbTimeBurstMs!, now);
      }
      this.#fair?.release(key);
      this.activity?.checkedIn(key);
    }
    // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- mirrors node-postgres' own signatures, which use any
    const release = (pg.Pool.prototype as unknown as { _release: Function })._release;
    // pg-pool's query hands every failed statement's error to release, which closes the connection:
    // a tenant whose statements hit their timeouts would make every tenant pay reconnections
    // (a fork and an authentication each). A statement error from a healthy session is not the
    // connection's fault: the client is kept, once idle, by the same rules as any other.
    if (err !== undefined && isStatementError(err)) err = undefined;
    if (err || !client.repliesPending) return release.call(this, client, idleListener, releaseReason(client, err));
    const inner = client as unknown as { _activeQuery: unknown; _queryQueue: unknown[] };
    if (inner._activeQuery != null || inner._queryQueue.length > 0) {
      return release.call(this, client, idleListener, new Error('client released with statements in flight'));
    }
    // only the ReadyForQuery of a failed statement is due: wait for it (the client stays counted
    // as busy), then judge the transaction status it reports
    let settled = false;
    const finish = (reason?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.removeListener('drain', onDrain);
      client.removeListener('error', onError);
      if (reason) release.call(this, client, idleListener, reason);
      else release.call(this, client, idleListener, releaseReason(client, err));
    };
    const onDrain = () => finish();
    const onError = (e: Error) => finish(e);
    const timer = setTimeout(() => finish(new Error('client did not become idle after release')), DRAIN_TIMEOUT_MS);
    timer.unref();
    client.on('drain', onDrain);
    client.on('error', onError);
    return undefined;
  }
}

/** Where an accounted checkout leaves its tenant key on the client, for `_release` to give back. */
const CHECKOUT_KEY = Symbol('tenantry.checkoutKey');
/** When a tenant with a DB time budget got the connection (performance.now()), to charge it at release. */
const CHECKOUT_AT = Symbol('tenantry.checkoutAt');
type AccountedClient = pg.PoolClient & { [CHECKOUT_KEY]?: string; [CHECKOUT_AT]?: number };

// pg-pool runs the query in the callback of a connection hand-over, which may execute in
// another request's async context: capture the tenant now and carry it on the query. The guard
// runs now too, in the caller's stack (its call sites), and its verdict travels with the query.
// Assigned on the prototype (not declared in the class) so pg.Pool's typed overloads stay.
const poolQuery = pg.Pool.prototype.query as (this: pg.Pool, ...args: unknown[]) => unknown;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- mirrors node-postgres' own signatures, which use any
TenantPool.prototype.query = function query(this: TenantPool, config: any, values?: unknown, callback?: unknown) {
  const scope = currentScope();
  const tenantId = scope?.tenantId;
  const signal = scope?.signal;
  const guard = this.tenantryGuard;
  // the statement's parent span is the caller's: captured here, before the hand-over
  const telemetry = activeTelemetry()?.capture();
  // the caller's config is carried as it is, inside a TaggedQuery of its own: never changed
  // (it may be reused for another tenant's query), and pg's Query copies it anyway
  const tagged =
    typeof config === 'string' || (config && typeof config === 'object')
      ? new TaggedQuery(
          config,
          tenantId,
          signal,
          guard ? guardVerdict(guard, typeof config === 'string' ? config : config.text) : undefined,
          telemetry,
        )
      : config;
  // aborted work never waits for a connection (the client refuses it at submit time as well)
  if (signal?.aborted && typeof callback !== 'function' && typeof values !== 'function')
    return Promise.reject(abortError(signal));
  return poolQuery.call(this, tagged, values, callback);
} as pg.Pool['query'];
