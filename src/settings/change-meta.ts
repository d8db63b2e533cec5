import type pg from 'pg';
import { InvalidArgumentError } from '../errors/tenantry-error.js';

/** Who makes a change and why: kept in the history and the tenant's audit log. */
export interface ChangeMeta {
  /** Who: a user or staff id, `cli:<login>`, a service name (1-200 characters). */
  actor: string;
  /** Why (up to 500 characters). */
  reason?: string;
}

/** Validates a change's actor and reason. */
export function checkMeta(meta: ChangeMeta): { actor: string; reason: string | null } {
  const actor = typeof meta?.actor === 'string' ? meta.actor.trim() : '';
  if (actor.length < 1 || actor.length > 200) throw new InvalidArgumentError('actor must be 1-200 characters', 'actor');
  const reason = meta.reason?.trim() || null;
  if (reason !== null && reason.length > 500)
    throw new InvalidArgumentError('reason must be at most 500 characters', 'reason');
  return { actor, reason };
}

/** The part of a pg.Pool a writer needs: a client for one transaction. */
export type TransactionPool = Pick<pg.Pool, 'connect' | 'query'>;

/**
 * Runs `fn` in a transaction with bounded lock and statement waits (a writer queued behind a
 * long lock fails with LOCK_TIMEOUT's SQLSTATE instead of hanging a CLI or a request).
 */
export async function inTransaction<T>(pool: TransactionPool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`select set_config('lock_timeout', '5s', true), set_config('statement_timeout', '15s', true)`);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
