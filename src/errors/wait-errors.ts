import { TenantryError } from './tenantry-error.js';

/**
 * The errors of a bounded wait: every wait of the data plane (a connection from the pool, a
 * statement, a lock, a request) ends, and ends with one of these, never a hang. Each carries an
 * HTTP-ish status (503 retry later, 504 took too long) and never the statement or its values.
 */

/** No connection became free (or could be opened) within the pool's checkout timeout. */
export class PoolTimeoutError extends TenantryError {
  constructor(timeoutMs: number, cause?: unknown) {
    super('POOL_TIMEOUT', `No database connection became free within ${timeoutMs} ms: retry shortly`, {
      status: 503,
      details: { timeoutMs },
      cause,
    });
  }
}

/** PostgreSQL cancelled the statement at the statement timeout (SQLSTATE 57014). */
export class StatementTimeoutError extends TenantryError {
  constructor(cause?: unknown) {
    super('STATEMENT_TIMEOUT', 'The statement ran past its statement timeout and was cancelled', {
      status: 504,
      details: { sqlState: '57014' },
      cause,
    });
  }
}

/** A lock was not granted within lock_timeout (SQLSTATE 55P03, also NOWAIT): nothing was changed. */
export class LockTimeoutError extends TenantryError {
  constructor(cause?: unknown) {
    super('LOCK_TIMEOUT', 'A lock the statement needed was not granted in time: retry shortly', {
      status: 503,
      details: { sqlState: '55P03' },
      cause,
    });
  }
}

/**
 * The request's AbortSignal fired (the client went away): a statement not yet sent was not sent,
 * a running one was cancelled. Status 499 (client closed request): nobody is left to answer.
 */
export class RequestAbortedError extends TenantryError {
  constructor(cause?: unknown) {
    super('REQUEST_ABORTED', 'The request was aborted: its statement was not run, or was cancelled', {
      status: 499,
      cause,
    });
  }
}

/** The request ran past its deadline: what it had not sent was not sent, what ran was cancelled. */
export class DeadlineExceededError extends TenantryError {
  constructor(deadlineMs: number) {
    super('DEADLINE_EXCEEDED', `The request did not finish within its deadline of ${deadlineMs} ms`, {
      status: 504,
      details: { deadlineMs },
    });
  }
}

/**
 * The error a statement fails with when `signal` aborted it: the signal's reason when it is a
 * TenantryError (a deadline), else REQUEST_ABORTED with the reason as cause.
 */
export function abortError(signal: AbortSignal): TenantryError {
  const reason: unknown = signal.reason;
  return reason instanceof TenantryError ? reason : new RequestAbortedError(reason);
}
