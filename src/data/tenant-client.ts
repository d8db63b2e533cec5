import pg from 'pg';
import { currentSignal, tryCurrentTenant } from '../context/tenant-context.js';
import {
  CrossTenantRowError,
  TenantContextMismatchError,
  TenantDeletedError,
  TenantryError,
  TenantSuspendedError,
} from '../errors/tenantry-error.js';
import { SqlState, sqlStateOf } from '../errors/sqlstate.js';
import { abortError, LockTimeoutError, StatementTimeoutError } from '../errors/wait-errors.js';
import { CitusContextWriter } from './citus-context-writer.js';
import { controlsTransaction, hasMultipleStatements, isLoneTransactionEnd } from './statement-text.js';
import { SessionQuarantine } from './session-quarantine.js';
import { staleNamedStatement, StatementNames } from './statement-names.js';
import type { ContextEncoder } from './context-signer.js';
import type { ContextRegistrar } from './context-registrar.js';
import type { QueryGuard } from '../guard/query-guard.js';
import { activeTelemetry } from '../telemetry/telemetry-hooks.js';
import {
  ContextPrefixWriter,
  type PrefixWriter,
  ContextQuery,
  prefixWithContext,
  type PrefixForm,
  type QueryHandler,
  type RoutedContext,
  type SettingsContext,
  type Submittable,
} from './context-prefix.js';
import type { TenantPoolObserver } from './pool-observer.js';
import { DB_LIMIT_SETTINGS, type TenantDbLimits } from './tenant-db-limits.js';
import type { TenantActivity } from './tenant-activity.js';
import { ActivityTags } from './activity-tag.js';

/**
 * What TenantPool.query captured in the caller's stack, carried to the client that sends the
 * statement after the pool hand-over: the tenant, the work's AbortSignal (see runWithSignal), and
 * the guard's verdict (`null` passed, an Error refused, `undefined` not checked yet). Kept in a
 * WeakMap keyed by the query config rather than in symbol-keyed properties on it: pg copies every
 * config it is given (property descriptors included), and symbol keys put that copy on V8's slow
 * path (~2 µs a statement, measured with bench/isolation.ts's fake server).
 */
export interface QueryTag {
  readonly tenantId: string | undefined;
  readonly signal: AbortSignal | undefined;
  readonly verdict: Error | null | undefined;
  /** What the telemetry sink captured where the statement was issued (its parent span). */
  readonly telemetry?: unknown;
}
const TAGS = new WeakMap<object, QueryTag>();

/** Attaches `tag` to a query config (a fresh object, or a submittable) for the client that runs it. */
export function tagQuery(config: object, tag: QueryTag): void {
  TAGS.set(config, tag);
}

/**
 * How TenantPool.query hands a statement to pg-pool: the caller's config (text, config object or
 * submittable) and its tag in one object, which pg-pool passes on to TenantClient.query as it
 * is. Cheaper than a copy of the config keyed in TAGS (a WeakMap entry per statement), and as
 * unforgeable: only an instance of this class carries a tag, and the application never sees it.
 */
export class TaggedQuery implements QueryTag {
  constructor(
    readonly config: unknown,
    readonly tenantId: string | undefined,
    readonly signal: AbortSignal | undefined,
    readonly verdict: Error | null | undefined,
    readonly telemetry: unknown,
  ) {}
}

/** A pg.Query (or TenantClient's own), which says itself whether it needs the extended protocol. */
interface OwnProtocol {
  requiresPreparation(): boolean;
  text?: unknown;
  queryMode?: string;
}

/**
 * A statement without parameters would go as a simple Query: send it with the extended protocol
 * instead so it shares the prefix's Sync. Only multi-statement text stays simple.
 */
function sendOneStatementExtended(query: OwnProtocol): void {
  if (
    !query.requiresPreparation() &&
    typeof query.text === 'string' &&
    query.text.trim() !== '' &&
    !hasMultipleStatements(query.text)
  )
    query.queryMode = 'extended';
}

/** Runs again once, of the statements prepareStatements named whose name the server no longer knew as parsed. */
const RETRIES = new WeakSet<object>();

/** ROLLBACK (or ABORT) still runs for aborted work: it only ends what the work began. */
const ROLLBACK = /^\s*(?:rollback|abort)\b/i;

/**
 * Runs the guard on a statement's text: `null` when it may go, the refusal (enforce mode) when not.
 * Called where the application issues the statement (pool.query, client.query), so the guard
 * reads the caller's stack for its call sites: no Error is created per statement.
 */
export function guardVerdict(guard: QueryGuard, text: unknown): Error | null {
  if (typeof text !== 'string') return null;
  try {
    guard.check(text);
    return null;
  } catch (error) {
    return error as Error;
  }
}

/** Options a TenantClient reads from its pool's config. */
export interface TenantClientConfig extends pg.ClientConfig {
  tenantryEncoder: ContextEncoder;
  /** Told each signed value a statement carries (remembered proofs, see TenantPoolConfig.rememberProofs). */
  tenantryRegistrar?: ContextRegistrar;
  /** Parse the prefix once per connection as a named statement (see TenantPoolConfig): fixed, or as the pool decides. */
  tenantryPrepareContext?: boolean | PrefixForm;
  /** Name the app's own parameterised statements, parsed once per connection (see TenantPoolConfig.prepareStatements). */
  tenantryPrepareStatements?: PrefixForm;
  /** Checks every statement's text before it is sent (see TenantPoolConfig.guard). */
  tenantryGuard?: QueryGuard;
  /** Tenant columns checked in result rows; empty to check none (see TenantPoolConfig.checkResults). */
  tenantryResultColumns?: ReadonlySet<string>;
  /** Set by a RoutedTenantPool: where this connection is, and where each tenant lives. */
  tenantryRouting?: ClientRouting;
  /** statement_timeout (ms) sent transaction-locally in every statement's prefix (see TenantPoolConfig). */
  tenantryStatementTimeoutMs?: number;
  /** Told each statement's tenant and duration (see TenantPoolConfig.observer). */
  tenantryObserver?: TenantPoolObserver;
  /** Per-tenant statement_timeout, lock_timeout, work_mem sent in every statement's prefix (see TenantPoolConfig.dbLimits). */
  tenantryDbLimits?: TenantDbLimits;
  /** Where each statement's time, rows and failure are counted for its tenant (see TenantPoolConfig.activity). */
  tenantryActivity?: TenantActivity;
  /** Tag each tenant's statements in pg_stat_activity.application_name (see TenantPoolConfig.activityTag). */
  tenantryActivityTag?: boolean | 'watched';
  /** Citus mode (see TenantPoolConfig.citus): the context as SET LOCAL in a transaction block. */
  tenantryCitus?: boolean;
}

/** A tenant's route as a connection needs it: where, under which epoch, with which search path. */
export interface ClientRoute {
  /** `<cluster>/<database or empty>`: compared with the connection's own location. */
  location: string;
  epoch: number;
  /** Transaction-local search_path for a tenant of the schema tier; null otherwise. */
  searchPath: string | null;
}

/** What a routed connection knows: its own location and the router's cached routes (synchronous). */
export interface ClientRouting {
  location: string;
  peek(tenantId: string): ClientRoute | undefined;
  /**
   * False while the prefix may leave the route check to the policy (read per statement; see
   * RoutedTenantPool's `routeCheck`). Absent: the prefix checks the route (`tenantry.enter_route`).
   */
  readonly checkInPrefix?: boolean;
}

type TxStatus = 'I' | 'T' | 'E';

/** Statements without a tenant keep the connection's own limits (the role's defaults). */
const NO_LIMITS: readonly null[] = Object.freeze(DB_LIMIT_SETTINGS.map(() => null));

/** The slice of pg's Connection a cancel request uses. */
interface CancelConnection extends NodeJS.EventEmitter {
  stream: { destroy(): void };
  connect(port: number | string, host?: string): void;
  cancel(processID: number, secretKey: number): void;
}

/** Qualified name of a table by OID, for CROSS_TENANT_ROW (a name, never data). */
const TABLE_NAME_SQL = `select format('%I.%I', n.nspname, c.relname) as name
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
 where c.oid = $1`;

/**
 * A pg.Client that applies the current tenant to every statement it sends, in the same
 * round trip, transaction-locally. Used by TenantPool; rarely constructed directly.
 */
export class TenantClient extends pg.Client {
  readonly #encoder: ContextEncoder;
  readonly #registrar: ContextRegistrar | undefined;
  readonly #prefix: PrefixWriter;
  readonly #citus: boolean;
  /** The names of the app's parameterised statements on this connection (prepareStatements). */
  readonly #names: StatementNames;
  readonly #guard: QueryGuard | undefined;
  readonly #resultColumns: ReadonlySet<string>;
  readonly #routing: ClientRouting | undefined;
  readonly #observer: TenantPoolObserver | undefined;
  readonly #dbLimits: TenantDbLimits | undefined;
  readonly #activity: TenantActivity | undefined;
  readonly #tags: ActivityTags | undefined;
  /** With `activityTag: 'watched'`: the counters whose `watched` decides whether to tag now. */
  readonly #tagWatch: TenantActivity | undefined;
  #status: TxStatus = 'I';
  /** Citus mode: this backend's global pid (`citus_backend_gpid()`), which signed values are bound to. */
  #binding: string | undefined;
  /** Tenant (or undefined for none) under which the open transaction began. */
  #transactionTenant: string | undefined;
  /** What a tenant's SQL may have left on this session (session-quarantine.ts). */
  readonly #quarantine = new SessionQuarantine();
  /** A cancel request was sent for this session: a late one could hit a later statement, so the pool destroys it. */
  #cancelSent = false;

  constructor(config: TenantClientConfig) {
    if ((config as { pipeline?: boolean }).pipeline) {
      throw new TenantryError('UNSUPPORTED', 'pipeline mode is not supported by TenantClient', { status: 500 });
    }
    super(config);
    this.#encoder = config.tenantryEncoder;
    this.#registrar = config.tenantryRegistrar;
    this.#dbLimits = config.tenantryDbLimits;
    this.#activity = config.tenantryActivity;
    const tag = config.tenantryActivityTag === true || config.tenantryActivityTag === 'watched';
    this.#tags = tag ? new ActivityTags() : undefined;
    this.#tagWatch = config.tenantryActivityTag === 'watched' ? config.tenantryActivity : undefined;
    this.#citus = config.tenantryCitus === true;
    this.#names = new StatementNames(config.tenantryPrepareStatements);
    // Citus mode carries the context alone (per-tenant limits and tags are not sent there yet)
    this.#prefix = this.#citus
      ? new CitusContextWriter(() => this.#status, config.tenantryStatementTimeoutMs)
      : new ContextPrefixWriter(
          config.tenantryPrepareContext ?? false,
          config.tenantryStatementTimeoutMs,
          this.#dbLimits ? DB_LIMIT_SETTINGS : [],
          tag,
        );
    this.#guard = config.tenantryGuard;
    this.#resultColumns = config.tenantryResultColumns ?? new Set(['tenant_id']);
    this.#routing = config.tenantryRouting;
    this.#observer = config.tenantryObserver;
    const connection = (this as unknown as { connection: NodeJS.EventEmitter }).connection;
    connection.on('parameterStatus', (msg: { parameterName?: string; parameterValue?: string }) =>
      this.#quarantine.reported(msg?.parameterName, msg?.parameterValue),
    );
    // every ErrorResponse of the session, whichever query it answers (cursors, streams too)
    connection.on('errorMessage', (msg: { code?: string }) => {
      if (msg?.code === '42P05') this.#quarantine.foreignStatement();
    });
    // Registered before pg's own listener, which submits the next query: the status must be current then.
    connection.prependListener('readyForQuery', (msg: { status?: string }) => {
      if (msg?.status === 'I' || msg?.status === 'T' || msg?.status === 'E') this.#status = msg.status;
    });
  }

  /** Transaction status from the last ReadyForQuery: `I` idle, `T` in a transaction, `E` failed transaction. */
  get transactionStatus(): TxStatus {
    return this.#status;
  }

  /** True once a cancel request was sent for this session: the pool destroys it instead of reusing it. */
  get cancelSent(): boolean {
    return this.#cancelSent;
  }

  /**
   * True while replies are still due on this connection: a statement running or queued, or an
   * error delivered before its ReadyForQuery (pg calls back on ErrorResponse). Such a client must
   * not be handed to another borrower until it is idle (see TenantPool's release).
   */
  get repliesPending(): boolean {
    const self = this as unknown as { _activeQuery: unknown; _queryQueue: unknown[]; readyForQuery: boolean };
    return self._activeQuery != null || self._queryQueue.length > 0 || self.readyForQuery !== true;
  }

  // pg resolves connect() at ReadyForQuery; when the server sends a FATAL error in the same
  // socket read (a backend dying while it starts), pg would emit 'error' on a client nobody holds
  // yet, which crashes the process. The success is reported after the rest of that read has been
  // processed, and an error seen meanwhile rejects the connect instead.
  override connect(): Promise<pg.Client>;
  override connect(callback: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): void;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- mirrors node-postgres' own signatures, which use any
  override connect(callback?: Function): Promise<pg.Client> | void {
    const settle = (done: (err: Error | null) => void) => (err: Error | null) => {
      if (err) return done(err);
      let early: Error | undefined;
      const onEarly = (e: Error) => (early ??= e);
      this.on('error', onEarly);
      setImmediate(() => {
        if (!early) {
          this.removeListener('error', onEarly);
          if (!this.#citus) return done(null);
          // Citus mode: the context value travels as SET LOCAL text (visible in pg_stat_activity
          // and statement logs); signed values are bound to this backend's global pid, which the
          // workers' connections of this backend carry too, so a copy fails in any other session
          (pg.Client.prototype.query as (this: pg.Client, text: string) => Promise<pg.QueryResult<{ gpid: string }>>)
            .call(this, 'select pg_catalog.citus_backend_gpid()::text as gpid')
            .then(
              (res) => {
                this.#binding = res.rows[0]?.gpid;
                done(null);
              },
              (error: Error) => {
                void this.end().catch(() => undefined);
                done(error);
              },
            );
          return;
        }
        // onEarly stays: the socket's end follows the FATAL, and end() closes it quietly
        void this.end().catch(() => undefined);
        done(early);
      });
    };
    if (callback) {
      super.connect(settle((err) => (err ? callback(err) : callback(null, this))) as (err: Error) => void);
      return;
    }
    return new Promise<pg.Client>((resolve, reject) => {
      super.connect(settle((err) => (err ? reject(err) : resolve(this))) as (err: Error) => void);
    });
  }

  // pg.Client.query has many overloads; this one accepts them all and returns what pg would.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- mirrors node-postgres' own signatures, which use any
  override query(config: any, values?: any, callback?: any): any {
    let tag: QueryTag | undefined;
    if (config instanceof TaggedQuery) {
      tag = config;
      config = config.config;
    } else tag = typeof config === 'object' && config !== null ? TAGS.get(config) : undefined;
    if (config == null) throw new TypeError('Client was passed a null or undefined query');
    const tenantId: string | undefined = tag ? tag.tenantId : tryCurrentTenant();
    const signal: AbortSignal | undefined = tag ? tag.signal : currentSignal();
    // checked now, in the caller's stack (or already by TenantPool.query, before its hand-over);
    // a refusal is delivered at submit time, so nothing is written
    const refusal = !this.#guard
      ? null
      : tag?.verdict !== undefined
        ? tag.verdict
        : guardVerdict(this.#guard, typeof config === 'string' ? config : config.text);
    if (typeof config.submit === 'function') {
      // pg's own Query says itself whether it needs the extended protocol (it has `values` even
      // when there are none: a review found such a query classed extended while it went out as a
      // simple Query, past every check of multi-statement text); a single statement without
      // parameters is sent extended, as below. pg-cursor (and pg-query-stream through it) speak
      // the extended protocol; anything else is assumed to send a simple Query, which cannot
      // share the prefix's transaction
      const pgQuery = typeof (config as { requiresPreparation?: unknown }).requiresPreparation === 'function';
      if (pgQuery) sendOneStatementExtended(config as OwnProtocol);
      const extended = pgQuery
        ? (config.requiresPreparation() as boolean)
        : 'values' in config || 'cursor' in config || 'portal' in config;
      // the database's refusal of an inactive tenant reaches a cursor's or stream's reader with
      // the codes pool.query gives (wrapped before the prefix, which sees the original error)
      const onError = (config as Submittable).handleError;
      if (typeof onError === 'function')
        (config as Submittable).handleError = function (this: Submittable, error: unknown, connection) {
          return onError.call(this, inactiveTenantError(error), connection);
        };
      prefixWithContext(
        config as Submittable,
        () =>
          this.#sent(
            refusal ??
              this.#aborted(signal, config.text) ??
              this.#citusSubmittable() ??
              this.#quarantine.refusal(config.text, tenantId, !extended) ??
              this.#contextFor(tenantId, config as Submittable, !extended),
            config.text,
            tenantId,
            !extended,
          ),
        this.#prefix,
      );
      return super.query(config, values, callback);
    }
    const query = new ContextQuery(config, values, callback);
    // prepareStatements: the app's unnamed parameterised statement named for this connection
    const autoName = this.#citus || query.name !== undefined ? undefined : this.#names.nameOf(query.text, query.values);
    if (autoName !== undefined) query.name = autoName;
    sendOneStatementExtended(query);
    if (typeof config === 'object' && config.query_timeout) query.query_timeout = config.query_timeout;
    let result: Promise<unknown> | undefined;
    if (!query.callback) {
      result = new Promise((resolve, reject) => {
        query.callback = (err: unknown, res: unknown) => (err ? reject(err) : resolve(res));
      }).catch((err: unknown) => {
        if (err instanceof Error) Error.captureStackTrace(err);
        throw err;
      });
    } else if (typeof query.callback !== 'function') {
      throw new TypeError('callback is not a function');
    }
    // what the decision at submit time and the delivery need, kept on the query itself: no
    // closure per statement (bench:isolation's client cost)
    query.tenantId = tenantId;
    query.signal = signal;
    query.refusal = refusal;
    query.simple = !query.requiresPreparation();
    query.withContext(this.#handler, this.#prefix);
    // waits end as errors with codes; a statement that started when the signal aborts is cancelled
    query.deliver = query.callback!;
    if (signal && !signal.aborted) {
      query.onAbort = () => {
        if (query.submitted) this.#cancel();
      };
      signal.addEventListener('abort', query.onAbort, { once: true });
    }
    if (this.#activity) query.started = performance.now();
    const telemetry = activeTelemetry();
    if (telemetry !== undefined) {
      // one observation per statement (tenantry/otel, tenantry/metrics); outermost but for the
      // table's name below, so it sees the error the caller gets
      query.telemetryEnd = telemetry.statement({
        tenantId,
        text: typeof query.text === 'string' ? query.text : undefined,
        location: this.#routing?.location,
        parent: tag ? tag.telemetry : telemetry.capture(),
      });
    }
    if (tenantId !== undefined && this.#resultColumns.size > 0) query.checkResults(tenantId, this.#resultColumns);
    query.callback = (err: unknown, res: unknown) => this.#finish(query, err, res);
    if (this.#observer) this.#observe(query, tenantId);
    if (autoName !== undefined) {
      // a named statement the server can no longer run as parsed (0A000 after DDL changed its
      // result columns, 26000) gets a fresh name, parsed anew. Outside a transaction block its
      // failure rolled back everything it did (the prefix and it were one implicit transaction):
      // it is run again once, at once, as the app sent it; inside one, the app sees the error
      const deliver = query.callback!;
      const text = query.text as string;
      query.callback = (err: unknown, res: unknown) => {
        if (!staleNamedStatement(err)) return deliver(err, res);
        this.#names.forget(text, autoName);
        // once: the run again (a config of its own, known by RETRIES) delivers what it gets
        if (!query.outsideTransaction || RETRIES.has(config as object) || signal?.aborted) return deliver(err, res);
        // built here, on the rare retry, not for every statement (an object spread each time:
        // ~7 % of TenantPool's client CPU per statement, bench:isolation's client cost)
        const again: pg.QueryConfig = {
          ...(typeof config === 'string' ? undefined : (config as pg.QueryConfig)),
          text, // as sent, should the caller have changed its config since
          name: undefined,
          values: query.values as unknown[],
        };
        RETRIES.add(again);
        tagQuery(again, { tenantId, signal, verdict: null });
        this.query(again, (e: unknown, r: unknown) => deliver(e, r));
      };
    }
    super.query(query as unknown as pg.Submittable);
    return result;
  }

  /**
   * The decision at submit time of TenantClient's own queries (see #contextFor), from what the
   * query carries: one per client, so a statement allocates no closure for it.
   */
  readonly #handler: QueryHandler = {
    decide: (query) =>
      this.#sent(
        query.refusal ??
          this.#aborted(query.signal, query.text) ??
          this.#quarantine.refusal(query.text, query.tenantId, query.simple) ??
          ((query.outsideTransaction = this.#status === 'I'), this.#contextFor(query.tenantId, query, query.simple)),
        query.text,
        query.tenantId,
        query.simple,
      ),
  };

  /** The reply of one of TenantClient's own queries: the table of a cross-tenant row named first. */
  #finish(query: ContextQuery, err: unknown, res: unknown): void {
    // failure path only: name the table before the error is delivered (the caller, or the
    // pool, still holds this client until the callback runs)
    if (err instanceof CrossTenantRowError && err.details.table === undefined && query.checkingResults) {
      void this.#nameTable(err).then((named) => this.#deliver(query, named, undefined));
      return;
    }
    this.#deliver(query, err, res);
  }

  /** The reply of one of TenantClient's own queries, to telemetry, the activity counters and the caller. */
  #deliver(query: ContextQuery, err: unknown, res: unknown): void {
    const end = query.telemetryEnd;
    if (end !== undefined) {
      try {
        end(err, rowCountOf(res));
      } catch {
        // an observer that throws must not fail the statement
      }
    }
    const signal = query.signal;
    if (query.onAbort) signal!.removeEventListener('abort', query.onAbort);
    const failure = err === undefined || err === null ? err : this.#waitError(err, signal);
    const activity = this.#activity;
    if (activity) {
      const rows = (res as { rowCount?: number | null } | undefined)?.rowCount ?? 0;
      const kind =
        failure == null
          ? undefined
          : failure instanceof StatementTimeoutError || failure instanceof LockTimeoutError
            ? 'timeout'
            : 'error';
      activity.statement(query.tenantId ?? '', performance.now() - query.started, rows, kind);
    }
    const deliver = query.deliver!;
    if (failure !== undefined && failure !== null && query.ownsTransaction) {
      // Citus mode opened a transaction block for this statement, and its failure left the
      // block aborted: roll it back before the error is delivered (and the client released)
      void super.query('ROLLBACK').then(
        () => deliver(failure, res),
        () => deliver(failure, res),
      );
      return;
    }
    deliver(failure, res);
  }

  /** Reports the statement's tenant and duration to the pool's observer when its reply is delivered. */
  #observe(query: ContextQuery, tenantId: string | undefined): void {
    const observer = this.#observer!;
    const deliver = query.callback!;
    const started = performance.now();
    query.callback = (err: unknown, res: unknown) => {
      try {
        const rowCount = (res as { rowCount?: number | null } | undefined)?.rowCount;
        observer.statementDone({
          tenantId,
          durationMs: performance.now() - started,
          rowCount: typeof rowCount === 'number' ? rowCount : null,
          failed: err !== undefined && err !== null,
        });
      } catch {
        // an observer's failure never fails the statement
      }
      deliver(err, res);
    };
  }

  /** The values of the prefix's extra settings for a tenant's statement (its limits), or undefined for none. */
  #settingsOf(tenantId: string | undefined): readonly (string | null)[] | undefined {
    if (!this.#dbLimits) return undefined;
    return tenantId === undefined ? NO_LIMITS : this.#dbLimits.limitsOf(tenantId).values;
  }

  /**
   * Citus mode: a cursor or stream outside a transaction cannot be wrapped in a transaction block
   * of the pool's (its Sync comes only when it closes): open one with BEGIN first.
   */
  #citusSubmittable(): Error | undefined {
    if (!this.#citus || this.#status !== 'I') return undefined;
    return new TenantryError(
      'UNSUPPORTED',
      'In Citus mode a cursor or stream runs inside a transaction: send BEGIN first, COMMIT after',
      { status: 500 },
    );
  }

  /** The decision, and the quarantine mark when the statement is to be sent. */
  #sent<T>(decision: T, text: unknown, tenantId: string | undefined, simple: boolean): T {
    if (!(decision instanceof Error)) this.#quarantine.sending(text, tenantId, simple);
    return decision;
  }

  /**
   * True once the session ran a statement that could replace a named statement or leave a setting
   * on the session (a session-level SET, RESET, DISCARD, set_config not plainly transaction-local,
   * query_to_xml), or when a
   * setting PostgreSQL reports (client_encoding, DateStyle, IntervalStyle, TimeZone,
   * standard_conforming_strings) differs from its login value (a session-level SET by one
   * tenant's SQL would change how the next tenant's values are read and stored): the pool
   * destroys it at release.
   */
  get quarantined(): boolean {
    return this.#quarantine.active;
  }

  /** Refuses a statement of aborted work (a lone ROLLBACK still runs), before anything is sent. */
  #aborted(signal: AbortSignal | undefined, text: unknown): Error | undefined {
    if (!signal?.aborted) return undefined;
    if (typeof text === 'string' && ROLLBACK.test(text) && isLoneTransactionEnd(text)) return undefined;
    return abortError(signal);
  }

  /** PostgreSQL's cancellations and lock refusals as errors with codes; anything else unchanged. */
  #waitError(error: unknown, signal: AbortSignal | undefined): unknown {
    const state = sqlStateOf(error);
    if (state === SqlState.queryCanceled)
      return this.#cancelSent && signal?.aborted ? abortError(signal) : new StatementTimeoutError(error);
    if (state === SqlState.lockNotAvailable) return new LockTimeoutError(error);
    return inactiveTenantError(error);
  }

  /**
   * Sends PostgreSQL a cancel request for this session's running statement, over a connection of
   * its own (as pg's and libpq's cancel do). Once sent, this session is never reused: a cancel
   * that arrives late would hit whatever runs next on it.
   */
  #cancel(): void {
    const session = this as unknown as { processID: number | null; secretKey: number };
    if (this.#cancelSent || session.processID == null) return;
    this.#cancelSent = true;
    const Connection = (pg as unknown as { Connection: new () => CancelConnection }).Connection;
    const con = new Connection();
    const timer = setTimeout(() => con.stream.destroy(), 5000);
    timer.unref();
    con.on('error', () => undefined);
    con.on('end', () => clearTimeout(timer));
    con.once('connect', () => con.cancel(session.processID!, session.secretKey));
    const host = this.host;
    if (host && host.startsWith('/')) con.connect(`${host}/.s.PGSQL.${this.port}`);
    else con.connect(this.port, host);
  }

  /**
   * The same error with the table's qualified name, read from pg_catalog on this connection once
   * the offending statement has completed (no context needed: the catalog is readable by every
   * role). The original error when the lookup fails (a failed transaction, a lost connection).
   */
  async #nameTable(error: CrossTenantRowError): Promise<CrossTenantRowError> {
    try {
      const { rows } = await super.query<{ name: string }>(TABLE_NAME_SQL, [error.details.tableOid]);
      const table = rows[0]?.name;
      return table === undefined ? error : new CrossTenantRowError({ ...error.details, table });
    } catch {
      return error;
    }
  }

  /**
   * Decides, at submit time, what context to send for a statement of `tenantId`: a value,
   * `null` for none, or an Error to refuse it. `simple` statements (multi-statement text,
   * simple-protocol submittables) cannot carry a prefix and run only inside a transaction that
   * already carries the right context and that they do not end.
   */
  #contextFor(
    tenantId: string | undefined,
    query: Submittable,
    simple: boolean,
  ): string | RoutedContext | SettingsContext | null | Error {
    if (simple && query.text === '') return null; // an empty query runs nothing
    switch (this.#status) {
      case 'E':
        // aborted: only ROLLBACK can run, and it needs no tenant. Anything else is prefixed
        // (and fails as it would have), or refused when it cannot be: "rollback; select …"
        // must not run its select with whatever value the session holds.
        if (isLoneTransactionEnd(query.text)) return null;
        if (simple)
          return new TenantryError('UNSUPPORTED', 'In a failed transaction only a lone ROLLBACK can run', {
            status: 500,
          });
        break;
      case 'T':
        if (tenantId !== this.#transactionTenant)
          return isLoneTransactionEnd(query.text) ? null : new TenantContextMismatchError();
        if (simple) {
          // the open transaction carries this tenant's context, but only until it ends: the
          // statements after a COMMIT inside the text would run with the session's value
          if (typeof query.text !== 'string' || controlsTransaction(query.text)) {
            return new TenantryError(
              'UNSUPPORTED',
              'Multi-statement text inside a transaction must not begin or end transactions: send COMMIT / ROLLBACK on their own',
              { status: 500 },
            );
          }
          return null;
        }
        break;
      default:
        // Outside a transaction nothing would override a session-level value that injected SQL
        // may have planted (a pooled or pgbouncer session outlives the request), so text that
        // cannot carry the prefix is refused, with or without a tenant.
        if (simple) {
          return new TenantryError(
            'UNSUPPORTED',
            'Multi-statement query text (or a simple-protocol stream) cannot carry the tenant context outside a transaction: send statements one at a time, or inside BEGIN … COMMIT',
            { status: 500 },
          );
        }
        this.#transactionTenant = tenantId;
    }
    // With no tenant, still send an empty value: it overrides any session-level value that
    // injected SQL might have left behind (set_config(..., false) or ALTER ROLE ... SET).
    const settings = this.#settingsOf(tenantId);
    if (tenantId === undefined) return settings ? { value: '', settings } : '';
    // The tag goes with a tenant's statement outside a transaction block only: one that opens a
    // block (BEGIN) sets it for the whole block (a transaction-local setting made before any
    // savepoint lasts until the block ends), so the block's other statements, all of this tenant,
    // need not set it again. Statements without a tenant set none: the connection's own shows.
    // With `activityTag: 'watched'`, only while someone watches the live activity (tenants top).
    const tag =
      this.#tags !== undefined && this.#status === 'I' && (this.#tagWatch === undefined || this.#tagWatch.watched)
        ? this.#tags.tagOf(tenantId)
        : undefined;
    if (!this.#routing) {
      const value = this.#encoder.encode(tenantId, 0, this.#binding);
      this.#registrar?.note(value);
      return settings || tag !== undefined ? { value, settings, tag } : value;
    }
    const route = this.#routing.peek(tenantId);
    if (!route)
      return new TenantryError(
        'TENANT_ROUTE_UNKNOWN',
        "The tenant's route is not known to this connection: query through the RoutedTenantPool",
        { status: 503 },
      );
    if (route.location !== this.#routing.location) {
      return new TenantryError(
        'TENANT_ROUTE_MISMATCH',
        "This connection serves another database than the tenant's: check out connections inside runAs(tenant)",
        { status: 500 },
      );
    }
    const value = this.#encoder.encode(tenantId, route.epoch);
    this.#registrar?.note(value);
    const searchPath = route.searchPath ?? '';
    const check = this.#routing.checkInPrefix !== false;
    // the plain pool's prefix, as the plain pool sends it (its bytes shared by value)
    if (!check && searchPath === '' && !settings && tag === undefined) return value;
    return settings || tag !== undefined ? { value, searchPath, check, settings, tag } : { value, searchPath, check };
  }
}

/** Rows a result returned or changed (summed over a multi-statement result), if pg reported them. */
function rowCountOf(res: unknown): number | undefined {
  if (Array.isArray(res)) {
    let rows = 0;
    for (const r of res) rows += (r as { rowCount?: number | null } | null)?.rowCount ?? 0;
    return rows;
  }
  const count = (res as { rowCount?: number | null } | null | undefined)?.rowCount;
  return typeof count === 'number' ? count : undefined;
}

/** The database's own refusal of an inactive tenant's context (core migration 005) as the library's errors; anything else unchanged. */
function inactiveTenantError(error: unknown): unknown {
  const state = sqlStateOf(error);
  if (state === SqlState.tenantSuspended) return new TenantSuspendedError({}, error);
  if (state === SqlState.tenantDeleted) return new TenantDeletedError({}, error);
  return error;
}
