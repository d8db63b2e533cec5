import type pg from 'pg';
import { InvalidArgumentError } from '../errors/tenantry-error.js';
import { hasDeceptiveCharacters } from '../identity/visible-length.js';

/** Who makes a change and why: kept in the history and the tenant's audit log. */
export interface ChangeMeta {
  /** Who: a user or staff id, `cli:<login>`, a service name (1-200 characters). */
  actor: string;
  /** Why (up to 500 characters). */
  reason?: string;
  /**
   * Who the tenant's audit log names (`actor_kind`, `actor_id`): the member, the staff member or
   * the API key behind an admin API call. Default `system` with no id (a CLI, a script).
   */
  auditActor?: { kind: 'user' | 'staff' | 'service' | 'system'; id?: string | null };
}

/** A change's meta, checked. */
export interface CheckedMeta {
  actor: string;
  reason: string | null;
  actorKind: 'user' | 'staff' | 'service' | 'system';
  actorId: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const KINDS = new Set(['user', 'staff', 'service', 'system']);

/** Validates a change's actor and reason. */
export function checkMeta(meta: ChangeMeta): CheckedMeta {
  const actor = typeof meta?.actor === 'string' ? meta.actor.trim() : '';
  if (actor.length < 1 || actor.length > 200) throw new InvalidArgumentError('actor must be 1-200 characters', 'actor');
  const reason = meta.reason?.trim() || null;
  if (reason !== null && reason.length > 500)
    throw new InvalidArgumentError('reason must be at most 500 characters', 'reason');
  // the reason is shown in audit logs and consoles: no forged lines, escape sequences or bidi tricks
  if (reason !== null && hasDeceptiveCharacters(reason))
    throw new InvalidArgumentError('reason must not hold control characters or bidi overrides', 'reason');
  const kind = meta.auditActor?.kind ?? 'system';
  if (!KINDS.has(kind))
    throw new InvalidArgumentError('auditActor.kind must be user, staff, service or system', 'auditActor');
  const id = meta.auditActor?.id ?? null;
  if (id !== null && (typeof id !== 'string' || !UUID.test(id)))
    throw new InvalidArgumentError('auditActor.id must be a uuid', 'auditActor');
  return { actor, reason, actorKind: kind, actorId: id === null ? null : id.toLowerCase() };
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
