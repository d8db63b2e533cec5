import { createRequire } from 'node:module';
import pg from 'pg';
import { CONTEXT_SETTING } from '../policy/install-sql.js';
import { CrossTenantRowError } from '../errors/tenantry-error.js';
import { namedPrefix, parseMessage, prefixMessages, unnamedPrefix, withStatement } from './prefix-bytes.js';

/**
 * The statement that carries the tenant context. It travels as Parse/Bind/Execute messages
 * in front of the caller's own extended-protocol messages, before their single Sync, so
 * PostgreSQL runs both in one implicit transaction: one round trip, and the setting
 * (transaction-local) is gone when that transaction ends. The value is a bind parameter, so
 * it never appears in query text (pg_stat_activity, logs of statements). Schema-qualified: the
 * session's search_path (which injected SQL may change) never decides which function runs.
 */
export const CONTEXT_PREFIX_SQL = `select pg_catalog.set_config('${CONTEXT_SETTING}', $1, true)`;

/**
 * The prefix of a RoutedTenantPool's statements: sets the context and, for the schema tier, the
 * tenant's schema first on the search path (transaction-locally too: never a session-level
 * search_path, which would outlive the statement on a pooled or pgbouncer connection), then
 * checks the route at once, so a statement on a stale route is refused before it runs.
 */
export const ROUTED_PREFIX_SQL = `select tenantry.enter_route($1, $2)`;

/**
 * A schema-tier tenant's prefix when the route is left to the policy's signed check (signed mode,
 * a router that hears every route change: see RoutedTenantPool's `routeCheck`): the context and
 * the tenant's schema first on the search path, both transaction-locally, no function of ours.
 * A routed statement of the other tiers then sends the plain prefix (CONTEXT_PREFIX_SQL).
 */
export const SCHEMA_PREFIX_SQL = `select pg_catalog.set_config('${CONTEXT_SETTING}', $1, true), pg_catalog.set_config('search_path', $2, true)`;

/** Name of the prefix when it is prepared once per connection (`prepareContextStatement`). */
export const CONTEXT_PREFIX_STATEMENT = 'tenantry_context';
export const ROUTED_PREFIX_STATEMENT = 'tenantry_context_routed';
export const SCHEMA_PREFIX_STATEMENT = 'tenantry_context_path';

/**
 * What a prefix adds for a pool's `statementTimeoutMs`: the timeout, transaction-locally, as one
 * more call in the same SELECT (no extra message, no round trip, no startup parameter, so it
 * works behind pgbouncer in transaction mode). PostgreSQL disarms the statement timer after each
 * Execute and arms it again, with the new value, for the caller's statement that follows.
 */
const STATEMENT_TIMEOUT_CALL = (param: number) => `, pg_catalog.set_config('statement_timeout', $${param}, true)`;

/**
 * What a prefix adds per extra setting (a tenant's limits, see TenantDbLimits): one more
 * transaction-local set_config in the same SELECT, its value a bind parameter; a null value keeps
 * the connection's own (the role's default). The names are fixed per pool, so the text is too.
 */
const EXTRA_SETTING_CALL = (name: string, param: number) =>
  `, set_config('${name}', coalesce($${param}, current_setting('${name}')), true)`;

/**
 * What a prefix adds for an activity tag (TenantPool's `activityTag`): application_name,
 * transaction-locally, in the same SELECT. Only in the prefix of a statement that has a tag to
 * set (see `tag` below), so the others do not pay for it. A condition rather than one more
 * column: the prefix's answer keeps its columns (one field fewer for the client to parse per
 * statement). Without a FROM the condition is a one-time filter, evaluated once, before the
 * columns; set_config never returns null, so the row is always there.
 */
const TAG_CALL = (param: number) => ` where pg_catalog.set_config('application_name', $${param}, true) is not null`;

/** A context value for a routed statement, with the search path of the tenant's schema ('' for none). */
export interface RoutedContext {
  value: string;
  searchPath: string;
  /**
   * False: the prefix leaves the route to the policy's signed check (no `tenantry.enter_route`):
   * the plain prefix, or SCHEMA_PREFIX_SQL with a search path. Default true: `enter_route`.
   */
  check?: boolean;
  /** Values of the writer's extra settings, in order (see ContextPrefixWriter). */
  settings?: readonly (string | null)[];
  /** application_name to set transaction-locally (a writer made with `tag`), or undefined for none. */
  tag?: string;
}

/** A context value with values for the writer's extra settings, in order (null: keep the connection's), and a tag. */
export interface SettingsContext {
  value: string;
  searchPath?: undefined;
  check?: undefined;
  settings?: readonly (string | null)[];
  /** application_name to set transaction-locally (a writer made with `tag`), or undefined for none. */
  tag?: string;
}

/** The slice of node-postgres' connection used to write protocol messages. */
export interface WireConnection {
  stream: { cork?: () => void; uncork?: () => void; write?: (bytes: Buffer) => unknown; writable?: boolean };
  parse(config: { text: string; name?: string; types?: unknown[] }): void;
  bind(config: { statement?: string; values: unknown[] }): void;
  execute(config: { portal?: string; rows?: number }): void;
  sync(): void;
  parsedStatements: Record<string, string>;
  submittedNamedStatements: Record<string, string>;
}

/** A node-postgres submittable: pg's own Query, pg-cursor, pg-query-stream… */
export interface Submittable {
  submit(connection: WireConnection): Error | null | undefined | void;
  handleDataRow?(msg: unknown): void;
  handleCommandComplete?(msg: unknown, connection: WireConnection): void;
  handleError?(error: unknown, connection: WireConnection): void;
  text?: string;
  name?: string;
  values?: unknown;
}

/**
 * Decides, at submit time, what to send in front of a statement: a context value, `null` for
 * no prefix, or an Error to refuse the statement without sending anything.
 */
export type ContextDecision = () => Decision;
type Decision = string | RoutedContext | SettingsContext | null | Error;

/** What decides a ContextQuery's prefix at submit time, from what the query carries (its client's, one per client). */
export interface QueryHandler {
  decide(query: ContextQuery): Decision;
}

function isServerError(error: unknown): boolean {
  return typeof (error as { severity?: unknown } | null)?.severity === 'string';
}

/**
 * Which form of the prefix a pool's connections write, shared by them and decided once (by the
 * pooler self-test, see TenantPool's `poolerSelfTest`): `named` parses it once per connection.
 */
export interface PrefixForm {
  named: boolean;
}

/**
 * What a prefix writer sent for one statement: how many CommandCompletes in front of the
 * statement's own belong to it, and how many after (a suffix written just before the Sync).
 */
export interface PrefixWritten {
  before: number;
  after: number;
  /** True when the writer opened a transaction block of its own (it must be rolled back when the statement fails). */
  ownsTransaction: boolean;
  /** Parse messages written in front of the statement (default: `before`, one per statement). */
  parses?: number;
}

/** Writes the context messages of one statement (ContextPrefixWriter, or Citus mode's writer). */
export interface PrefixWriter {
  write(
    connection: WireConnection,
    context: string | RoutedContext | SettingsContext,
    statementText?: string,
  ): PrefixWritten | void;
  failed(error: unknown): void;
}

/**
 * Writes the prefix on one connection. Unnamed by default (parsed with every statement, works
 * behind any pooler); with `prepare`, parsed once per connection as a named statement and then
 * only bound and executed, which saves the server a parse and plan per statement but needs a
 * direct connection or pgbouncer ≥ 1.21 with `max_prepared_statements`.
 */
export class ContextPrefixWriter implements PrefixWriter {
  /**
   * Whether each form was parsed on this connection (named form), by index: plain 0, routed 1,
   * tagged +2 (0 and 1); schema path without the route check 4, tagged 5.
   */
  readonly #prepared = [false, false, false, false, false, false];
  /**
   * When the last write carried the named prefix's Parse: the connection's ParseComplete count
   * that proves it went through (its Parse is the first message of the pipeline, so the first
   * ParseComplete after the write is its own), else 0; and that count.
   */
  #parsedAt = 0;
  #parses: { n: number } | undefined;
  /** Which named prefix the last write used: the one a failure concerns. */
  #last = 0;
  /** By the same index: each form's statement name, its Parse message as named, and as unnamed. */
  readonly #names: readonly string[];
  readonly #namedParses: readonly Buffer[];
  readonly #unnamedParses: readonly Buffer[];
  /** statement_timeout as sent (milliseconds as text), or undefined for none. */
  readonly #timeout: string | undefined;
  readonly #extra: readonly string[];

  readonly #form: PrefixForm;

  /**
   * `prepare`: the named form (true), the unnamed one (false), or the form a pool decides for its
   * connections (read at each write). `statementTimeoutMs`: a positive whole number of
   * milliseconds, sent with every prefix. `extraSettings`: names of more settings set
   * transaction-locally by every prefix, their values given with each context (`settings`).
   * `tag`: a context may carry an application_name (`tag`), set by its prefix only.
   */
  constructor(
    prepare: boolean | PrefixForm,
    statementTimeoutMs?: number,
    extraSettings: readonly string[] = [],
    tag = false,
  ) {
    this.#form = typeof prepare === 'boolean' ? { named: prepare } : prepare;
    if (statementTimeoutMs !== undefined && !(Number.isInteger(statementTimeoutMs) && statementTimeoutMs > 0))
      throw new TypeError('statementTimeoutMs must be a positive whole number of milliseconds');
    this.#timeout = statementTimeoutMs === undefined ? undefined : String(statementTimeoutMs);
    for (const name of extraSettings)
      if (!/^[a-z_]{1,63}$/.test(name)) throw new TypeError(`not a setting name: ${name}`);
    this.#extra = extraSettings;
    const extra = (first: number) => extraSettings.map((name, i) => EXTRA_SETTING_CALL(name, first + i)).join('');
    const plain = this.#timeout ? CONTEXT_PREFIX_SQL + STATEMENT_TIMEOUT_CALL(2) : CONTEXT_PREFIX_SQL;
    const routed = this.#timeout ? ROUTED_PREFIX_SQL + STATEMENT_TIMEOUT_CALL(3) : ROUTED_PREFIX_SQL;
    const firstPlain = this.#timeout ? 3 : 2;
    const firstRouted = this.#timeout ? 4 : 3;
    // the schema path form numbers its parameters as the routed one: context, search path, then the rest
    const path = this.#timeout ? SCHEMA_PREFIX_SQL + STATEMENT_TIMEOUT_CALL(3) : SCHEMA_PREFIX_SQL;
    const text = plain + extra(firstPlain);
    const routedText = routed + extra(firstRouted);
    const pathText = path + extra(firstRouted);
    const n = extraSettings.length;
    const texts = [
      text,
      routedText,
      tag ? text + TAG_CALL(firstPlain + n) : text,
      tag ? routedText + TAG_CALL(firstRouted + n) : routedText,
      pathText,
      tag ? pathText + TAG_CALL(firstRouted + n) : pathText,
    ];
    const suffix = (this.#timeout ? '_timed' : '') + (n > 0 ? `_x${n}` : '');
    this.#names = [
      CONTEXT_PREFIX_STATEMENT + suffix,
      ROUTED_PREFIX_STATEMENT + suffix,
      CONTEXT_PREFIX_STATEMENT + suffix + '_tag',
      ROUTED_PREFIX_STATEMENT + suffix + '_tag',
      SCHEMA_PREFIX_STATEMENT + suffix,
      SCHEMA_PREFIX_STATEMENT + suffix + '_tag',
    ];
    this.#namedParses = texts.map((t, i) => parseMessage(this.#names[i]!, t));
    this.#unnamedParses = texts.map((t) => parseMessage('', t));
  }

  write(connection: WireConnection, context: string | RoutedContext | SettingsContext): PrefixWritten {
    const bytes = this.bytes(connection, context);
    // as pg's Connection does, nothing is written to a stream that is no longer writable
    const stream = connection.stream;
    if (stream.writable) stream.write!(bytes);
    return this.written;
  }

  /** What the last `bytes` (or `write`) sent: with a Parse of the prefix or without. */
  written: PrefixWritten = WRITTEN_BOUND;

  /**
   * The prefix's messages for `context`, not written yet (see ContextQuery, which writes them in
   * one buffer with its own): as `write`, recorded as sent on this connection.
   */
  bytes(connection: WireConnection, context: string | RoutedContext | SettingsContext): Buffer {
    const plain = typeof context === 'string';
    if (plain && this.#timeout === undefined && this.#extra.length === 0) {
      // the common case: the context alone, its bytes shared by value (no array, no copy)
      this.#last = 0;
      if (!this.#form.named) {
        this.written = WRITTEN_PARSED;
        return unnamedPrefix(this.#unnamedParses[0]!, context);
      }
      if (this.#prepared[0]) {
        this.written = WRITTEN_BOUND;
        this.#parsedAt = 0;
        return namedPrefix(this.#names[0]!, context);
      }
    }
    // routed with the check in the prefix (enter_route), or without it: the plain prefix, or the
    // schema path form when there is a search path to set
    const routed = !plain && context.searchPath !== undefined && context.check !== false;
    const path = !plain && !routed && context.searchPath !== undefined && context.searchPath !== '';
    const tag = plain ? undefined : context.tag;
    const form = path ? (tag === undefined ? 4 : 5) : (routed ? 1 : 0) + (tag === undefined ? 0 : 2);
    const values: Array<string | null> = plain
      ? [context]
      : routed || path
        ? [context.value, context.searchPath!]
        : [context.value];
    if (this.#timeout) values.push(this.#timeout);
    for (let i = 0; i < this.#extra.length; i++) values.push((plain ? undefined : context.settings?.[i]) ?? null);
    if (tag !== undefined) values.push(tag);
    this.#last = form;
    let parse: Buffer | undefined;
    let statement = '';
    if (!this.#form.named) parse = this.#unnamedParses[form];
    else {
      statement = this.#names[form]!;
      if (!this.#prepared[form]) {
        parse = this.#namedParses[form];
        this.#prepared[form] = true;
        this.#parses = parseCount(connection);
        this.#parsedAt = this.#parses.n + 1;
      } else this.#parsedAt = 0;
    }
    this.written = parse !== undefined ? WRITTEN_PARSED : WRITTEN_BOUND;
    return values.length === 1 && parse !== undefined && statement === ''
      ? unnamedPrefix(parse, values[0]!)
      : prefixMessages(parse, statement, values);
  }

  /**
   * The prefix failed on the server: a lost named statement (DISCARD, DEALLOCATE) is parsed again
   * next time. A 42P05 (its name already taken in the session) is never taken as "parsed": the
   * client did not prepare what the name runs; the session quarantine refuses the session.
   */
  failed(error: unknown): void {
    // the Parse refused (a failed transaction's 25P02, a timeout) never made the name: parsed
    // again next time rather than bound to a statement that does not exist (26000)
    const parseRefused = this.#parsedAt !== 0 && this.#parses!.n < this.#parsedAt;
    if (parseRefused || (error as { code?: string }).code === '26000') this.#prepared[this.#last] = false;
    this.#parsedAt = 0;
  }
}

const WRITTEN_PARSED: PrefixWritten = Object.freeze({ before: 1, after: 0, ownsTransaction: false, parses: 1 });
const WRITTEN_BOUND: PrefixWritten = Object.freeze({ before: 1, after: 0, ownsTransaction: false, parses: 0 });

/** ParseComplete messages seen on each connection, counted from its first prefixed statement. */
const parseCompletes = new WeakMap<WireConnection, { n: number }>();
function parseCount(connection: WireConnection): { n: number } {
  const known = parseCompletes.get(connection);
  if (known) return known;
  const count = { n: 0 };
  parseCompletes.set(connection, count);
  (connection as unknown as NodeJS.EventEmitter).prependListener?.('parseComplete', () => count.n++);
  return count;
}

/** The checks pg's Query.submit makes before writing anything, made first so a refusal writes nothing. */
function precheck(query: Submittable, connection: WireConnection): Error | null {
  if (typeof query.text !== 'string' && typeof query.name !== 'string') {
    return new Error('A query must have either text or a name. Supplying neither is unsupported.');
  }
  const name = query.name ?? '';
  const previous = connection.parsedStatements[name] || connection.submittedNamedStatements[name];
  if (query.text && previous && query.text !== previous) {
    return new Error(`Prepared statements must be unique - '${name}' was used for a different statement`);
  }
  if (query.values && !Array.isArray(query.values)) return new Error('Query values must be an array');
  return null;
}

/**
 * The state of one prefixed submission, shared by ContextQuery and patched submittables:
 * the server's answers to the prefix (DataRow, CommandComplete) are swallowed, an error in the
 * prefix is passed on (the statement's own Sync ends the pipeline).
 */
class PrefixedSubmission {
  /** CommandCompletes still due from the prefix (in front of the statement's own). */
  #before = 0;
  /** CommandCompletes due from a suffix, after the statement's own. */
  #after = 0;
  #statementCompleted = false;
  /** The writer opened its own transaction block for this statement (Citus mode). */
  ownsTransaction = false;
  #parsedBefore = true;
  /** The connection's ParseComplete count, and the count past which the statement's own Parse has completed. */
  #parses: { n: number } | undefined;
  #ownParsedAfter = 0;

  constructor(private readonly writer: PrefixWriter) {}

  /** True while the prefix's answers are still arriving. */
  get pending(): boolean {
    return this.#before > 0;
  }

  submit<Q extends Submittable>(
    value: Decision,
    query: Q,
    connection: WireConnection,
    submit: (query: Q, connection: WireConnection) => Error | null | undefined | void,
    checkFirst: boolean,
    byHand = false,
  ) {
    if (value instanceof Error) return value;
    if (value === null) return submit(query, connection);
    if (checkFirst) {
      const refused = precheck(query, connection);
      if (refused) return refused;
    }
    this.#parsedBefore = !query.name || connection.parsedStatements[query.name] !== undefined;
    const writer = this.writer;
    if (byHand && writer instanceof ContextPrefixWriter) {
      const own = handWritten(query as unknown as HandWritable);
      if (own instanceof Error) return own; // nothing written: pg delivers it, the connection stays usable
      if (own !== undefined) {
        const prefix = writer.bytes(connection, value);
        this.#sent(writer.written, connection);
        return sendByHand(prefix, query as unknown as HandWritable, own, connection);
      }
    }
    connection.stream.cork?.();
    try {
      this.#sent(writer.write(connection, value, query.text), connection);
      return submit(query, connection);
    } finally {
      connection.stream.uncork?.();
    }
  }

  /** What the writer sent in front of the statement: the answers to swallow, the Parse count to watch. */
  #sent(written: PrefixWritten | void, connection: WireConnection): void {
    if (!this.#parsedBefore) {
      this.#parses = parseCount(connection);
      this.#ownParsedAfter = this.#parses.n + (written ? (written.parses ?? written.before) : 1);
    }
    this.#before = written ? written.before : 1;
    this.#after = written ? written.after : 0;
    this.#statementCompleted = false;
    this.ownsTransaction = written ? written.ownsTransaction : false;
  }

  /** True when the message belongs to the prefix or the suffix and must not reach the statement. */
  swallowCommandComplete(): boolean {
    if (this.#before > 0) {
      this.#before--;
      return true;
    }
    if (!this.#statementCompleted) {
      this.#statementCompleted = true;
      return false;
    }
    if (this.#after > 0) {
      this.#after--;
      return true;
    }
    return false;
  }

  error(query: Submittable, error: unknown, connection: WireConnection): void {
    if (!isServerError(error)) return; // a client-side error: the prefix's answers are still to come
    // pg records a named statement as parsed on the first ParseComplete it sees, which may be the
    // prefix's: if the statement's own Parse then failed, forget it so the next use re-parses.
    // Only then: a statement that parsed and failed later (at Bind or Execute) exists on the
    // server, and a Parse under its name again would fail with 42P05 from then on.
    if (query.name && !this.#parsedBefore) {
      const ownParsed = this.#parses !== undefined && this.#parses.n > this.#ownParsedAfter;
      if (!ownParsed) delete connection.parsedStatements[query.name];
    }
    // the server skips everything up to the Sync: no more answers of the prefix or suffix
    this.#after = 0;
    if (this.#before > 0) {
      this.#before = 0;
      this.writer.failed(error);
    }
  }
}

/** pg.Query as it really is (its typings omit the protocol handlers). */
interface PgQuery extends Submittable {
  submit(connection: WireConnection): Error | null | undefined;
  handleRowDescription(msg: unknown): void;
  handleDataRow(msg: unknown): void;
  _canceledDueToError?: unknown;
  handleCommandComplete(msg: unknown, connection: WireConnection): void;
  handleError(error: unknown, connection: WireConnection): void;
  requiresPreparation(): boolean;
  callback?: (err: unknown, res: unknown) => void;
  queryMode?: string;
  query_timeout?: number;
}
const PgQueryClass = pg.Query as unknown as new (config: unknown, values?: unknown, callback?: unknown) => PgQuery;

/** No tenant column in the result: shared, never added to (a result that has some gets its own array). */
const NONE_CHECKED: Array<{ index: number; tableOid: number; column: string }> = [];

/**
 * pg's Query with the context prefix: one class (a stable shape for V8), used for every
 * query TenantClient builds itself. Only for the extended protocol, ending in its own Sync: a
 * simple Query message after unsynced extended messages is not a documented sequence, and
 * PostgreSQL 18 leaves its transaction open.
 */
export class ContextQuery extends PgQueryClass {
  /** True once the statement was written to the connection (it may be running): a cancel may concern it. */
  submitted = false;
  // What the client's decision at submit time and its delivery of the reply read (TenantClient
  // sets them): fields of the query rather than closures over them, one object per statement.
  tenantId: string | undefined = undefined;
  signal: AbortSignal | undefined = undefined;
  /** The guard's refusal, or null when it passed or did not run. */
  refusal: Error | null = null;
  /** Sent as a simple Query (multi-statement text): it cannot carry a prefix. */
  simple = false;
  /** The statement went out of a transaction block (its failure then rolled back all it did). */
  outsideTransaction = false;
  /** The caller's callback, the abort listener, the start (activity counters), the telemetry's end. */
  deliver: ((err: unknown, res: unknown) => void) | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;
  started = 0;
  telemetryEnd: ((error: unknown, rowCount: number | undefined) => void) | undefined = undefined;
  #prefix: PrefixedSubmission | undefined;
  #handler: QueryHandler | undefined;
  #tenantId: string | undefined;
  #tenantColumns: ReadonlySet<string> | undefined;
  /** Indexes and table OIDs of the tenant columns in the current result, if any. */
  #checked: Array<{ index: number; tableOid: number; column: string }> = NONE_CHECKED;

  /**
   * pg's Query, without its copy of an object config: pg copies it whole, property descriptors
   * and prototype included (utils.cloneQueryConfig, ~8 % of TenantPool's client CPU per statement
   * in bench:isolation's client cost), only to read the fields below from the copy. They are read
   * from the caller's config instead (never changed): the same fields, the same values, as
   * test/context-query.test.ts checks against pg's own Query.
   */
  constructor(config: unknown, values?: unknown, callback?: unknown) {
    const object = typeof config === 'object' && config !== null;
    super(object ? '' : config, values, callback);
    if (object) adoptConfig(this as unknown as QueryFields, config as QueryFields, values);
  }

  /** True when the context writer opened a transaction block for this statement (Citus mode): roll it back on failure. */
  get ownsTransaction(): boolean {
    return this.#prefix?.ownsTransaction ?? false;
  }

  /** Must be called once, before the query is handed to the client. */
  withContext(handler: QueryHandler, writer: PrefixWriter): this {
    this.#handler = handler;
    this.#prefix = new PrefixedSubmission(writer);
    return this;
  }

  /** True when result rows are checked for their tenant (see checkResults). */
  get checkingResults(): boolean {
    return this.#tenantColumns !== undefined;
  }

  /** Refuse result rows whose tenant column (one of `columns`, read from a table) is not `tenantId`. */
  checkResults(tenantId: string, columns: ReadonlySet<string>): this {
    this.#tenantId = tenantId;
    this.#tenantColumns = columns;
    return this;
  }

  override handleRowDescription(msg: unknown): void {
    const columns = this.#tenantColumns;
    if (columns) {
      const fields = (msg as { fields: Array<{ name: string; tableID: number }> }).fields;
      // an array only for a result with tenant columns (most have none)
      let checked: Array<{ index: number; tableOid: number; column: string }> | undefined;
      for (let index = 0; index < fields.length; index++) {
        const f = fields[index]!;
        if (f.tableID !== 0 && columns.has(f.name))
          (checked ??= []).push({ index, tableOid: f.tableID, column: f.name });
      }
      this.#checked = checked ?? NONE_CHECKED;
    }
    super.handleRowDescription(msg);
  }

  override submit(connection: WireConnection): Error | null | undefined {
    const prefix = this.#prefix;
    if (!prefix) return submitOwn(this, connection);
    return prefix.submit(this.#handler!.decide(this), this, connection, submitOwn, true, true) as
      Error | null | undefined;
  }

  override handleDataRow(msg: unknown): void {
    if (this.#prefix?.pending) return;
    if (this.#checked.length > 0 && !this._canceledDueToError) {
      const values = (msg as { fields: Array<string | null> }).fields;
      for (const c of this.#checked) {
        const value = values[c.index];
        // PostgreSQL's uuid output is lower case, as the tenant id here: no lower-cased copy per row then
        const tenantId = this.#tenantId;
        if (value !== null && value !== undefined && value !== tenantId && String(value).toLowerCase() !== tenantId) {
          // pg fails the query with this at ReadyForQuery; the row is not handed out
          this._canceledDueToError = new CrossTenantRowError({ tableOid: c.tableOid, column: c.column });
          return;
        }
      }
    }
    super.handleDataRow(msg);
  }

  override handleCommandComplete(msg: unknown, connection: WireConnection): void {
    if (this.#prefix?.swallowCommandComplete()) return;
    super.handleCommandComplete(msg, connection);
  }

  override handleError(error: unknown, connection: WireConnection): void {
    this.#prefix?.error(this, error, connection);
    super.handleError(error, connection);
  }
}

/** The fields pg's Query constructor reads from its config (pg 8: lib/query.js), and sets on itself. */
interface QueryFields {
  text?: unknown;
  values?: unknown;
  rows?: unknown;
  types?: unknown;
  name?: unknown;
  queryMode?: unknown;
  binary?: unknown;
  portal?: unknown;
  callback?: unknown;
  rowMode?: unknown;
  _rowMode?: unknown;
  _result?: object;
  _results?: unknown;
}

/**
 * What pg's Query constructor does with an object config, given a query built from an empty
 * text with the same `values` and callback: `values` and the callback given as arguments win
 * over the config's (utils.normalizeQueryConfig), a callback is bound to the active domain, the
 * result is built for the config's row mode and type parsers.
 */
function adoptConfig(query: QueryFields, config: QueryFields, values: unknown): void {
  query.text = config.text;
  if (!values || typeof values === 'function') query.values = config.values;
  query.rows = config.rows;
  query.types = config.types;
  query.name = config.name;
  query.queryMode = config.queryMode;
  query.binary = config.binary;
  query.portal = config.portal || '';
  if (query.callback === undefined && config.callback) {
    const domain = (process as { domain?: { bind(fn: unknown): unknown } }).domain;
    query.callback = domain ? domain.bind(config.callback) : config.callback;
  }
  query._rowMode = config.rowMode;
  if (config.rowMode !== undefined || config.types !== undefined) {
    const Result = query._result!.constructor as new (rowMode: unknown, types: unknown) => object;
    query._result = query._results = new Result(config.rowMode, config.types);
  }
}

const pgSubmit = PgQueryClass.prototype.submit;

/** The fields of a ContextQuery that its own messages are written from (pg's Query's). */
interface HandWritable {
  text?: unknown;
  name?: string;
  values?: unknown;
  rows?: unknown;
  binary?: unknown;
  portal?: unknown;
  types?: unknown;
  submitted: boolean;
  requiresPreparation(): boolean;
}

/** pg's own mapping of a parameter to what it sends (utils.prepareValue, looked up at each use as pg's Query does). */
const pgUtils = createRequire(import.meta.url)('pg/lib/utils.js') as { prepareValue(value: unknown): unknown };

/**
 * The parameters of a statement whose messages can be written by hand (see withStatement), as
 * pg maps them (strings, Buffers, nulls); undefined when pg's own path must send it (a portal,
 * a row count, binary results, parameter types, a name pg would warn about); an Error when pg's
 * mapping of a value threw (pg would deliver that same error).
 */
function handWritten(query: HandWritable): readonly (string | Buffer | null)[] | Error | undefined {
  if (
    typeof query.text !== 'string' ||
    query.rows ||
    query.binary ||
    query.portal ||
    (query.name !== undefined && query.name.length > 63) ||
    ((query.types as { length?: unknown } | undefined)?.length ?? 0) !== 0 ||
    !query.requiresPreparation()
  )
    return undefined;
  const values = query.values as readonly unknown[] | undefined;
  if (values === undefined || values === null) return NO_VALUES;
  // a copy only when some value is not sent as it is (a number, a Date, an object…)
  let mapped: Array<string | Buffer | null> | undefined;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (typeof value === 'string' || value === null) {
      if (mapped !== undefined) mapped[i] = value;
      continue;
    }
    mapped ??= values.slice(0, i) as Array<string | null>;
    try {
      mapped[i] = pgUtils.prepareValue(value) as string | Buffer | null;
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  }
  return mapped ?? (values as readonly string[]);
}
const NO_VALUES: readonly string[] = [];

/**
 * Writes the prefix and the statement's own messages (Parse when it is not parsed on this
 * connection yet, Bind, Describe, Execute, Sync) as one buffer, in one write: what pg's
 * Query.submit would have written after the prefix, as pg records it (a named statement as
 * submitted for parsing).
 */
function sendByHand(
  prefix: Buffer,
  query: HandWritable,
  values: readonly (string | Buffer | null)[],
  connection: WireConnection,
): null {
  const name = query.name ?? '';
  const parse =
    !name ||
    (connection.parsedStatements[name] === undefined && connection.submittedNamedStatements[name] === undefined);
  const text = query.text as string;
  if (parse && name) connection.submittedNamedStatements[name] = text;
  query.submitted = true;
  // as pg's Connection does, nothing is written to a stream that is no longer writable
  const stream = connection.stream;
  if (stream.writable) stream.write!(withStatement(prefix, parse, name, text, values));
  return null;
}

/** pg's own submit of a ContextQuery (after its prefix, if any). */
function submitOwn(query: ContextQuery, connection: WireConnection): Error | null | undefined {
  query.submitted = true;
  return pgSubmit.call(query, connection);
}

/**
 * Rewrites another submittable (pg-cursor, pg-query-stream…) in place so that, when
 * submitted, it first sets the tenant context. Extended-protocol submittables only.
 */
export function prefixWithContext(query: Submittable, decide: ContextDecision, writer: PrefixWriter): void {
  const state = new PrefixedSubmission(writer);
  const submit = query.submit;
  const onDataRow = query.handleDataRow;
  const onCommandComplete = query.handleCommandComplete;
  const onError = query.handleError;
  query.submit = function (this: Submittable, connection: WireConnection) {
    return state.submit(decide(), this, connection, (q, c) => submit.call(q, c), false);
  };
  query.handleDataRow = function (this: Submittable, msg: unknown) {
    if (state.pending) return;
    return onDataRow?.call(this, msg);
  };
  query.handleCommandComplete = function (this: Submittable, msg: unknown, connection: WireConnection) {
    if (state.swallowCommandComplete()) return;
    return onCommandComplete?.call(this, msg, connection);
  };
  query.handleError = function (this: Submittable, error: unknown, connection: WireConnection) {
    state.error(this, error, connection);
    return onError?.call(this, error, connection);
  };
}
