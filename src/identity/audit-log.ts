import type { Queryable } from '../catalog/tenant-catalog.js';
import { sqlStateOf, SqlState } from '../errors/sqlstate.js';
import { InvalidArgumentError } from '../errors/tenantry-error.js';
import { AccessError } from './access-error.js';

/** Who did it. `system` entries come only from the control plane. */
export type AuditActorKind = 'user' | 'staff' | 'service' | 'system';

/** One entry of a tenant's audit log. */
export interface AuditEntry {
  /**
   * The entry's number in its own tenant's log: 1, 2, 3, … with no gaps, in commit order. Never
   * the table's global key, whose gaps would show how much other tenants write.
   */
  id: string;
  occurredAt: Date;
  actorKind: AuditActorKind;
  actorId: string | null;
  action: string;
  reason: string | null;
  detail: Record<string, unknown>;
}

const ACTION = /^[a-z][a-z0-9_.-]{0,62}$/;

/**
 * The current tenant's append-only audit log (`tenantry.audit_log`): staff access opens and closes
 * are written by the database itself; the application adds its own entries with `record`.
 * Nobody can change or delete an entry (a trigger refuses it, even for the owner). Call inside
 * `runAs`: a tenant reads and writes only its own log.
 *
 * @example
 * const entries = await runAs(tenantId, () => new AuditLog(appPool).list({ limit: 50 }));
 */
export class AuditLog {
  constructor(private readonly db: Queryable) {}

  /**
   * Appends an entry and answers its number in the tenant's log (its `id` in `list`). A staff
   * entry must pass the staff member's `sessionId`: the database accepts it only while that
   * session holds an open grant on the current tenant.
   */
  async record(entry: {
    actorKind: Exclude<AuditActorKind, 'system'>;
    actorId?: string;
    action: string;
    reason?: string;
    detail?: Record<string, unknown>;
    sessionId?: string;
  }): Promise<string> {
    if (!ACTION.test(entry.action ?? ''))
      throw new InvalidArgumentError('action must be a short lower-case word such as member.removed', 'action');
    try {
      const { rows } = await this.db.query<{ id: string }>(
        'select tenantry.record_audit($1, $2, $3, $4, $5, $6)::text as id',
        [
          entry.actorKind,
          entry.actorId ?? null,
          entry.action,
          entry.reason ?? null,
          JSON.stringify(entry.detail ?? {}),
          entry.sessionId ?? null,
        ],
      );
      return rows[0]!.id;
    } catch (error) {
      if (sqlStateOf(error) === SqlState.insufficientPrivilege && entry.actorKind === 'staff')
        throw new AccessError('STAFF_ACCESS_REQUIRED', { cause: error });
      throw error;
    }
  }

  /**
   * Newest first; `before` is the `id` of the last entry of the previous page. Numbers are given
   * under a per-tenant lock and in commit order, so a page never skips an entry that committed late.
   */
  async list(options: { limit?: number; before?: string } = {}): Promise<AuditEntry[]> {
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 500)
      throw new InvalidArgumentError('limit must be 1 to 500', 'limit');
    // a number PostgreSQL's bigint holds (past it, 22003 would answer 500): 1 to 2^63 - 1
    if (
      options.before !== undefined &&
      (!/^[1-9]\d{0,18}$/.test(options.before) || BigInt(options.before) > 9_223_372_036_854_775_807n)
    )
      throw new InvalidArgumentError('before must be an entry id', 'before');
    const { rows } = await this.db.query<{
      id: string;
      occurred_at: Date;
      actor_kind: AuditActorKind;
      actor_id: string | null;
      action: string;
      reason: string | null;
      detail: Record<string, unknown>;
    }>(
      // the tenant's own numbering (seq), never the global id; ordered by the bigint column, not
      // the text alias (text order puts "9" after "10"); served by the (tenant_id, seq) index
      `select a.seq::text as id, a.occurred_at, a.actor_kind, a.actor_id, a.action, a.reason, a.detail
         from tenantry.audit_log a
        where a.tenant_id = tenantry.home_tenant_id() and ($1::bigint is null or a.seq < $1::bigint)
        order by a.seq desc limit $2`,
      [options.before ?? null, limit],
    );
    return rows.map((r) => ({
      id: r.id,
      occurredAt: r.occurred_at,
      actorKind: r.actor_kind,
      actorId: r.actor_id,
      action: r.action,
      reason: r.reason,
      detail: r.detail,
    }));
  }
}
