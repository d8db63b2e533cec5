import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TenantResolver } from 'tenantry';
import { resolutionOf, tenantRoutes } from 'tenantry/fastify';
import { ApiError } from '../http/api-error.js';
import { staffCaller, type Member } from './member-context.js';
import type { Queryable } from 'tenantry';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller of a tenant route (set inside the tenant scope before the handler runs). */
    member: Member | null;
  }
}

/** What {@link tenantScope} needs. */
export interface TenantScopeOptions {
  appPool: Queryable;
  resolver: TenantResolver<Member>;
}

/**
 * Makes every route registered in `scope` a tenant route, through the library's resolver
 * (`tenantry/fastify`): the tenant comes from the token, an API key, the host or (for staff) the
 * `X-Tenant` header, all of which must agree; the session, the tenant's status and the
 * membership are checked on every request; the handler runs inside `runAs(tenant)`.
 * Register this before the scope's routes.
 */
export function tenantScope(scope: FastifyInstance, { appPool, resolver }: TenantScopeOptions): void {
  if (!scope.hasRequestDecorator('member')) scope.decorateRequest('member', null);
  // onRoute hooks wrap in registration order: this one first, so the adapter's runAs wraps it
  // and the staff lookup below runs as the tenant
  scope.addHook('onRoute', (route) => {
    const handler = route.handler as (this: FastifyInstance, request: FastifyRequest, reply: unknown) => unknown;
    route.handler = async function memberHandler(this: FastifyInstance, request, reply) {
      const principal = resolutionOf<Member>(request).principal;
      if (principal.kind === 'user') request.member = principal.member;
      else if (principal.kind === 'staff') request.member = await staffCaller(appPool, principal.userId);
      return handler.call(this, request, reply);
    };
  });
  // the "incoming request" line once the tenant is known (server.ts skips Fastify's own for these routes)
  tenantRoutes(scope, { resolver, logIncomingRequest: true });
}

/** The caller of a tenant route; API keys are refused here (routes that need a person). */
export function memberOf(request: FastifyRequest): Member {
  if (!request.member)
    throw new ApiError(403, 'MEMBERS_ONLY', 'This route needs a signed-in member (an API key is not enough)');
  return request.member;
}

/** The caller when it must be a member of the tenant (not staff acting as it): e.g. to own a resource. */
export function realMemberOf(request: FastifyRequest): Member & { role: Exclude<Member['role'], 'staff'> } {
  const member = memberOf(request);
  if (member.role === 'staff')
    throw new ApiError(403, 'MEMBERS_ONLY', 'Staff act as the tenant but cannot own its resources');
  return member as Member & { role: Exclude<Member['role'], 'staff'> };
}

/** Refuses callers who are not an owner or admin of the tenant (staff under a grant count as admin). */
export function adminOf(request: FastifyRequest): Member {
  const member = memberOf(request);
  if (member.role === 'member')
    throw new ApiError(403, 'FORBIDDEN', 'Only an owner or admin of the tenant can do this');
  return member;
}
