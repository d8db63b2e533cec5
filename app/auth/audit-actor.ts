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

/**
 * The meta of a library change (settings, flags, brand) made through the API: `user:<id>`,
 * `staff:<id>` or `key:<id>` in the change's history, and the same actor in the tenant's audit
 * log (not `system`). Staff's grant reason is the change's reason when none is given.
 */
export function changeMetaOf(
  request: FastifyRequest,
  reason?: string,
): { actor: string; reason?: string; auditActor: { kind: 'user' | 'staff' | 'service'; id: string | null } } {
  const who = auditActor(request);
  const prefix = who.actorKind === 'service' ? 'key' : who.actorKind;
  const why = reason ?? who.reason;
  return {
    actor: `${prefix}:${who.actorId ?? 'unknown'}`,
    ...(why ? { reason: why } : {}),
    auditActor: { kind: who.actorKind, id: who.actorId ?? null },
  };
}
