import type { Queryable } from '../catalog/tenant-catalog.js';
import { InvalidArgumentError } from '../errors/tenantry-error.js';
import { isTenantId } from '../context/tenant-id.js';

/** Who a session belongs to: a member of one tenant, or staff (no tenant). Services use API keys. */
export type SessionKind = 'user' | 'staff';

/**
 * Server-side sessions in `tenantry_private.sessions`: a token names its session (`sid`), and
 * every request checks it (`TenantResolver` does, in the same round trip as the tenant's status),
 * so signing out or removing a member takes effect on the next request, not at token expiry.
 *
 * Starting a session is the sign-in's job and needs the owner role (the application's own
 * SECURITY DEFINER sign-in, or the control plane): the app role cannot mint sessions.
 *
 * @example
 * const { sessionId } = await new Sessions(ownerPool).start({ userId, tenantId, kind: 'user', ttlSeconds: 3600 });
 * await new Sessions(appPool).end(sessionId); // sign-out: the next request with its token fails
 */
export class Sessions {
  constructor(private readonly db: Queryable) {}

  /** Starts a session (owner role). Staff sessions have no tenant. */
  async start(input: {
    userId: string;
    tenantId?: string;
    kind: SessionKind;
    ttlSeconds: number;
  }): Promise<{ sessionId: string; expiresAt: Date }> {
    if (!isTenantId(input.userId)) throw new InvalidArgumentError('userId must be a uuid', 'userId');
    if (input.kind !== 'staff' && !isTenantId(input.tenantId))
      throw new InvalidArgumentError('tenantId must be a uuid', 'tenantId');
    const { rows } = await this.db.query<{ session_id: string; expires_at: Date }>(
      'select session_id, expires_at from tenantry.start_session($1, $2, $3, $4)',
      [input.userId, input.kind === 'staff' ? null : input.tenantId, input.kind, input.ttlSeconds],
    );
    return { sessionId: rows[0]!.session_id, expiresAt: rows[0]!.expires_at };
  }

  /** Ends a session at once; false when it was unknown or already ended. */
  async end(sessionId: string): Promise<boolean> {
    if (!isTenantId(sessionId)) return false;
    const { rows } = await this.db.query<{ ended: boolean }>('select tenantry.end_session($1) as ended', [sessionId]);
    return rows[0]!.ended;
  }

  /** Ends every session a user has in the current tenant (call inside `runAs`), e.g. when removing the member. */
  async endMemberSessions(userId: string): Promise<number> {
    if (!isTenantId(userId)) throw new InvalidArgumentError('userId must be a uuid', 'userId');
    const { rows } = await this.db.query<{ ended: number }>('select tenantry.end_member_sessions($1) as ended', [
      userId,
    ]);
    return rows[0]!.ended;
  }
}
