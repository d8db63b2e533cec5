import pg from 'pg';
import { CONTEXT_SETTING } from '../policy/install-sql.js';

/**
 * The statement that carries the tenant context. It travels as Parse/Bind/Execute messages
 * in front of the caller's own extended-protocol messages, before their single Sync, so
 * PostgreSQL runs both in one implicit transaction: one round trip, and the
 * setting (transaction-local) is gone when that transaction ends. The value is a bind
 * parameter, so it never appears in query text (pg_stat_activity, logs of statements).
 */
export const CONTEXT_PREFIX_SQL = `select set_config('${CONTEXT_SETTING}', $1, true)`;

/** The slice of node-postgres' connection used to write protocol messages. */
interface WireConnection {
  stream: { cork?: () => void; uncork?: () => void };
  parse(config: { text: string; name?: string; types?: unknown[] }): void;
  bind(config: { values: unknown[] }): void;
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

function isServerError(error: unknown): boolean {
  return typeof (error as { severity?: unknown } | null)?.severity === 'string';
}

/** The checks pg's Query.submit makes before writing anything, made first so a refusal writes nothing. */
function precheck(query: Submittable, connection: WireConnection): Error | null {
  if (!(query instanceof pg.Query)) return null;
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
 * Rewrites `query` in place so that, when submitted, it first sets the tenant context.
 * Only for queries sent with the extended protocol (ending in their own Sync): a simple Query
 * message after unsynced extended messages is not a documented sequence, and PostgreSQL 18
 * leaves its transaction open.
 * `decide` runs at submit time (when the connection's transaction status is known) and
 * returns the context value to send, `null` to send none, or an Error to refuse the query.
 */
export function prefixWithContext(query: Submittable, decide: () => string | null | Error): void {
  const submit = query.submit;
  const onDataRow = query.handleDataRow;
  const onCommandComplete = query.handleCommandComplete;
  const onError = query.handleError;
  let prefixPending = false;
  let parsedBefore = true;

  query.submit = function (this: Submittable, connection: WireConnection) {
    const value = decide();
    if (value instanceof Error) return value;
    if (value === null) return submit.call(this, connection);
    const refused = precheck(this, connection);
    if (refused) return refused;
    prefixPending = true;
    parsedBefore = !this.name || connection.parsedStatements[this.name] !== undefined;
    connection.stream.cork?.();
    try {
      connection.parse({ text: CONTEXT_PREFIX_SQL, types: [] });
      connection.bind({ values: [value] });
      connection.execute({});
      return submit.call(this, connection);
    } finally {
      connection.stream.uncork?.();
    }
  };
  query.handleDataRow = function (this: Submittable, msg: unknown) {
    if (prefixPending) return;
    return onDataRow?.call(this, msg);
  };
  query.handleCommandComplete = function (this: Submittable, msg: unknown, connection: WireConnection) {
    if (prefixPending) {
      prefixPending = false;
      return;
    }
    return onCommandComplete?.call(this, msg, connection);
  };
  query.handleError = function (this: Submittable, error: unknown, connection: WireConnection) {
    // pg records a named statement as parsed on the first ParseComplete it sees, which is the
    // prefix's: if the statement's own Parse then failed, forget it so the next use re-parses.
    if (this.name && !parsedBefore && isServerError(error)) delete connection.parsedStatements[this.name];
    // the server now skips every message up to the query's own Sync, which ends the pipeline
    if (prefixPending && isServerError(error)) prefixPending = false;
    return onError?.call(this, error, connection);
  };
}
