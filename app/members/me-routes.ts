import type { FastifyInstance } from 'fastify';
import { currentTenant } from 'tenantry';
import { memberOf } from '../auth/tenant-scope.js';

/** `GET /me`: the caller, their role, and the tenant of the token. */
export function meRoutes(scope: FastifyInstance): void {
  scope.get('/me', async (request) => {
    const member = memberOf(request);
    return {
      user: { id: member.userId, email: member.email, displayName: member.displayName },
      role: member.role,
      // read from the async context, not the token: proves runAs reaches the handler
      tenant: { ...member.tenant, id: currentTenant() },
    };
  });
}
