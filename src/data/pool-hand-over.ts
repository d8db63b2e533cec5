import type pg from 'pg';
import { TenantryError } from '../errors/tenantry-error.js';
import { sqlStateOf } from '../errors/sqlstate.js';
import { PoolTimeoutError } from '../errors/wait-errors.js';

// TenantPool's dealings with pg-pool's checkout queue and its release: what a hand-over of an
// idle connection needs, and what decides whether a connection is lent again

export const noop = (): void => undefined;

/** A checkout in pg-pool's queue, as its PendingItem (callback, and `timedOut` once it gave up). */
export interface PendingCheckout {
  callback: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void;
  timedOut: boolean;
}
/** The parts of pg-pool's state a hand-over of an idle connection reads. */
export interface IdlePool {
  ending: boolean;
  options: { connectionTimeoutMillis?: number };
  _idle: unknown[];
  _pendingQueue: PendingCheckout[];
  _pulseQueue(): void;
}

/**
 * pg-pool's pulse for a queued checkout (one per checkout, as its connect schedules). If the
 * checkout is still queued after it (the idle connection closed meanwhile), it now waits as any
 * other: bounded by connectionTimeoutMillis, with pg-pool's own timeout error.
 */
export function pulseIdle(pool: IdlePool, item: PendingCheckout): void {
  pool._pulseQueue();
  const timeout = pool.options.connectionTimeoutMillis ?? 0;
  if (timeout <= 0 || !pool._pendingQueue.includes(item)) return;
  const deliver = item.callback;
  const timer = setTimeout(() => {
    const at = pool._pendingQueue.indexOf(item);
    if (at !== -1) pool._pendingQueue.splice(at, 1);
    item.timedOut = true;
    deliver(new PoolTimeoutError(timeout, new Error('timeout exceeded when trying to connect')), undefined, noop);
  }, timeout);
  timer.unref();
  item.callback = (err, client, done) => {
    clearTimeout(timer);
    deliver(err, client, done);
  };
}

/**
 * Why a released client is closed rather than lent again (undefined: it is kept): the release's
 * own error, a cancel request sent, a quarantined session, or an open transaction.
 */
export function releaseReason(
  client: { transactionStatus?: string; cancelSent?: boolean; quarantined?: boolean },
  err: unknown,
): unknown {
  // any falsy err (release(false), release(0)) is "no error": the session is still judged
  if (err) return err;
  if (client.cancelSent) return new Error('client sent a cancel request');
  if (client.quarantined)
    return new Error(
      'client quarantined (PREPARE, DEALLOCATE, DO, a session-level SET, RESET or set_config, multi-statement text or a changed setting): its session is not lent again',
    );
  if (client.transactionStatus !== undefined && client.transactionStatus !== 'I')
    return new Error('client released inside an open transaction');
  return undefined;
}

/**
 * True for an error PostgreSQL answered a statement with, the session still usable: a SQLSTATE
 * outside connection exceptions (08), operator intervention (57, but 57014 query_canceled) and
 * internal errors (XX), not FATAL; or a timeout error of ours wrapping one.
 */
export function isStatementError(error: unknown): boolean {
  const e = error as { severity?: unknown; cause?: unknown } | null;
  if (error instanceof TenantryError)
    return (error.code === 'STATEMENT_TIMEOUT' || error.code === 'LOCK_TIMEOUT') && isStatementError(e?.cause);
  const state = sqlStateOf(error);
  if (state === undefined || (e?.severity !== 'ERROR' && e?.severity !== undefined)) return false;
  if (state === '57014') return true;
  return !/^(08|57|XX|53)/.test(state);
}
