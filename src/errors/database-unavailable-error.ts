import { TenantryError } from './tenantry-error.js';

/**
 * SQLSTATEs of a server that is going away or not there yet: `57P01` admin_shutdown, `57P02`
 * crash_shutdown, `57P03` cannot_connect_now (starting up, recovering), `53300`
 * too_many_connections; the whole class `08` (connection exception) is matched by prefix.
 */
const UNAVAILABLE_SQLSTATES: ReadonlySet<string> = new Set(['57P01', '57P02', '57P03', '53300']);

/** Socket errors of a server that is down or unreachable (Node's `error.code`). */
const UNAVAILABLE_SOCKET_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/**
 * node-postgres raises these without any code (a socket closed mid-query, its connect and pool
 * checkout timeouts, a client that already failed), so they can only be told apart by their
 * fixed text. Matched from the start of the message, never a substring of user data.
 */
const PG_UNAVAILABLE_MESSAGES: readonly string[] = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
];

/**
 * The database cannot be reached right now: it is down, restarting or recovering, the network
 * dropped the connection, or no connection could be had in time. Transient: retry later
 * (HTTP 503 with `Retry-After`). Carries no connection facts (host, user, password) in its
 * message; the original error is its `cause`, for logs.
 *
 * @example
 * try {
 *   await pool.query('select 1');
 * } catch (error) {
 *   const unavailable = DatabaseUnavailableError.from(error);
 *   if (unavailable) return reply.code(503).header('retry-after', '5').send({ error: { code: unavailable.code } });
 *   throw error;
 * }
 */
export class DatabaseUnavailableError extends TenantryError {
  /** The failure's SQLSTATE or socket error code, when it had one (e.g. `57P01`, `ECONNREFUSED`). */
  readonly reason: string | undefined;

  constructor(options: { reason?: string; cause?: unknown } = {}) {
    super('DATABASE_UNAVAILABLE', 'The database is unavailable right now; retry later', {
      status: 503,
      details: options.reason ? { reason: options.reason } : {},
      cause: options.cause,
    });
    this.reason = options.reason;
  }

  /**
   * `error` as a DatabaseUnavailableError when it (or an error in its `cause` chain, or one of
   * an AggregateError's errors) is a connection failure; `undefined` for anything else, which
   * includes every other TenantryError (a refusal, a POOL_TIMEOUT), whatever its cause.
   */
  static from(error: unknown): DatabaseUnavailableError | undefined {
    const reason = connectionFailureOf(error, 0);
    if (reason === undefined) return undefined;
    if (error instanceof DatabaseUnavailableError) return error;
    return new DatabaseUnavailableError({ reason: reason || undefined, cause: error });
  }
}

/** True when `error` is a transient connection failure (see {@link DatabaseUnavailableError.from}). */
export function isDatabaseUnavailable(error: unknown): boolean {
  return connectionFailureOf(error, 0) !== undefined;
}

// '' when it is one without a code, undefined when it is not one
function connectionFailureOf(error: unknown, depth: number): string | undefined {
  if (depth > 8 || error === null || typeof error !== 'object') return undefined;
  if (error instanceof DatabaseUnavailableError) return error.reason ?? '';
  // a Tenantry error already says what happened (a refusal, POOL_TIMEOUT…): never reclassified
  if (error instanceof TenantryError) return undefined;
  const { code, message, cause, errors } = error as {
    code?: unknown;
    message?: unknown;
    cause?: unknown;
    errors?: unknown;
  };
  if (typeof code === 'string') {
    if (UNAVAILABLE_SQLSTATES.has(code) || (code.length === 5 && code.startsWith('08'))) return code;
    if (UNAVAILABLE_SOCKET_CODES.has(code)) return code;
  }
  if (typeof message === 'string' && PG_UNAVAILABLE_MESSAGES.some((m) => message.startsWith(m))) return '';
  if (Array.isArray(errors)) {
    for (const inner of errors) {
      const reason = connectionFailureOf(inner, depth + 1);
      if (reason !== undefined) return reason;
    }
  }
  return connectionFailureOf(cause, depth + 1);
}
