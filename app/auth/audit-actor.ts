import type { FastifyRequest } from 'fastify';
import type { AuditActorKind } from 'tenantry';
import { resolutionOf } from 'tenantry/fastify';

/** Who to name in the tenant's audit log for this request: the member, the staff member, or the API key. */
export function auditActor(request: FastifyRequest): {
  actorKind: Exclude<AuditActorKind, 'system'>;
  actorId: string | undefined;
  reason?: string;
  sessionId?: string;
} {
  const principal = resolutionOf(request).principal;
  switch (principal.kind) {
    case 'user':
      return { actorKind: 'user', actorId: principal.userId };
    case 'staff':
      return {
        actorKind: 'staff',
        actorId: principal.userId,
        reason: principal.grant.reason,
        sessionId: principal.sessionId,
      };
    case 'apiKey':
      return { actorKind: 'service', actorId: principal.keyId };
    default:
      return { actorKind: 'service', actorId: undefined };
  }
}
