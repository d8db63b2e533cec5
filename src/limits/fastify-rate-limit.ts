import type { TenantRateLimits } from './tenant-rate-limits.js';
import { LimitNotInPlanError, markRefusedByRateLimit, RateLimitedError } from './rate-limited-error.js';
import { rateLimitHeaders } from './rate-limit-headers.js';

// Structural types: tenantry/limits does not import fastify (an optional peer)
interface FastifyRequestLike {
  tenantry?: { tenantId: string } | null;
  method: string;
}
interface FastifyReplyLike {
  header(name: string, value: string): unknown;
}
interface FastifyScopeLike {
  addHook(name: 'onRequest', hook: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<void>): unknown;
}

/** Options of {@link fastifyTenantRateLimit}. */
export interface FastifyTenantRateLimitOptions {
  limits: TenantRateLimits;
  /** The limit counted for each request. Default `api`. */
  limit?: string;
  /** Points a request costs (e.g. more for writes). Default 1. */
  cost?: (request: FastifyRequestLike) => number;
}

/**
 * Counts every request of a tenant scope against the tenant's `limit`: register it right after
 * `tenantRoutes(scope, …)` (its `onRequest` runs after the resolver's). A refusal is thrown as
 * RateLimitedError (429 RATE_LIMITED) with `Retry-After` set; admitted answers carry
 * `RateLimit-*` headers.
 *
 * @example
 * app.register(async (scope) => {
 *   tenantRoutes(scope, { resolver });
 *   fastifyTenantRateLimit(scope, { limits });
 *   scope.get('/recordings', listRecordings);
 * });
 */
export function fastifyTenantRateLimit(scope: FastifyScopeLike, options: FastifyTenantRateLimitOptions): void {
  const limit = options.limit ?? 'api';
  scope.addHook('onRequest', async (request, reply) => {
    const tenantId = request.tenantry?.tenantId;
    if (!tenantId) return; // not resolved: the resolver has already answered
    try {
      const decision = await options.limits.consume(tenantId, limit, options.cost?.(request) ?? 1);
      for (const [name, value] of Object.entries(rateLimitHeaders(decision))) reply.header(name, value);
    } catch (error) {
      if (error instanceof RateLimitedError || error instanceof LimitNotInPlanError) markRefusedByRateLimit(request);
      if (error instanceof RateLimitedError)
        for (const [name, value] of Object.entries(rateLimitHeaders(error))) reply.header(name, value);
      throw error;
    }
  });
}
