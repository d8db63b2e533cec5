import type { FastifyInstance, FastifyRequest, RouteHandlerMethod } from 'fastify';
import { runAs, type TenantPool } from '../../src/index.js';
import { ApiError } from '../http/api-error.js';
import { loadMember, type Member } from './member-context.js';
import type { TokenClaims, TokenService } from './token-service.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Claims of the verified access token (set by the tenant scope's onRequest hook). */
    auth: TokenClaims | null;
    /** The caller's membership; set inside the tenant scope before the handler runs. */
    member: Member | null;
  }
}

/** What {@link tenantScope} needs. */
export interface TenantScopeOptions {
  appPool: TenantPool;
  tokens: TokenService;
}

/**
 * Makes every route registered in `scope` (an encapsulated plugin context) a tenant route:
 *
 * 1. `onRequest`, before the body is even read: verify the bearer token (401 otherwise).
 * 2. Each route's handler is wrapped so that it runs INSIDE `runAs(token.tid, …)`, after the
 *    tenant and membership check. Wrapping the handler (in `onRoute`) rather than entering
 *    the context in a hook is deliberate: Fastify resumes after hooks and body parsing from
 *    callbacks whose async context is not the hook's, so a context entered in a hook does not
 *    reliably reach the handler. A wrapped handler's context reaches everything it awaits.
 *
 * Register this before the scope's routes (onRoute sees only routes added after it).
 */
export function tenantScope(scope: FastifyInstance, { appPool, tokens }: TenantScopeOptions): void {
  scope.addHook('onRequest', async (request) => {
    request.auth = await tokens.verify(bearerToken(request));
  });
  scope.addHook('onRoute', (route) => {
    const handler = route.handler as RouteHandlerMethod;
    route.handler = function tenantHandler(this: FastifyInstance, request, reply) {
      const claims = request.auth;
      if (!claims) throw new ApiError(401, 'UNAUTHENTICATED', 'Send an access token: Authorization: Bearer <token>');
      return runAs(claims.tenantId, async () => {
        request.member = await loadMember(appPool, claims);
        return handler.call(this, request, reply);
      });
    };
  });
}

function bearerToken(request: FastifyRequest): string {
  const header = request.headers.authorization;
  if (header === undefined || header === '') throw new ApiError(401, 'UNAUTHENTICATED', 'Send an access token: Authorization: Bearer <token>');
  const match = /^Bearer ([A-Za-z0-9_\-.~+/]+=*)$/.exec(header);
  if (!match) throw new ApiError(401, 'INVALID_TOKEN', 'The access token is invalid');
  return match[1]!;
}

/** The member of a tenant route; throws if called outside one (a wiring bug). */
export function memberOf(request: FastifyRequest): Member {
  if (!request.member) throw new Error('memberOf() called outside a tenant route');
  return request.member;
}
