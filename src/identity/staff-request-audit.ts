import type { Resolution } from './tenant-resolver.js';
import { AuditLog } from './audit-log.js';

/**
 * Records a staff member's request in the tenant's audit log (`staff.request`: method, route and
 * the grant's id, never bodies or query strings). Call inside `runAs(resolution.tenantId)`.
 * Does nothing for other principals.
 */
export async function auditStaffRequest(
  log: AuditLog,
  resolution: Resolution<unknown>,
  request: { method?: string; route?: string },
): Promise<void> {
  const principal = resolution.principal;
  if (principal.kind !== 'staff') return;
  await log.record({
    actorKind: 'staff',
    actorId: principal.userId,
    action: 'staff.request',
    reason: principal.grant.reason,
    sessionId: principal.sessionId,
    detail: { method: request.method ?? null, route: request.route ?? null, grantId: principal.grant.id },
  });
}
