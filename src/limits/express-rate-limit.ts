import type { TenantRateLimits } from './tenant-rate-limits.js';
import { LimitNotInPlanError, markRefusedByRateLimit, RateLimitedError } from './rate-limited-error.js';
import { rateLimitHeaders } from './rate-limit-headers.js';

// Structural types: tenantry/limits does not import express (an optional peer)
interface ExpressResponseLike {
  setHeader(name: string, value: string): unknown;
}
type Next = (error?: unknown) => void;

/** Options of {@link expressTenantRateLimit}. */
export interface ExpressTenantRateLimitOptions<Req> {
  limits: TenantRateLimits;
  /** The request's tenant id: e.g. `(req) => resolutionOfRequest(req).tenantId` from `tenantry/express`. */
  tenantOf: (request: Req) => string | undefined;
  /** The limit counted for each request. Default `api`. */
  limit?: string;
  /** Points a request costs. Default 1. */
  cost?: (request: Req) => number;
}

/**
 * Express middleware counting each request against its tenant's `limit`; mount it after
 * `tenantMiddleware`. A refusal goes to `next(RateLimitedError)` with `Retry-After` set
 * (`tenantryErrorHandler` answers 429 RATE_LIMITED).
 *
 * @example
 * app.use(tenantMiddleware({ resolver }));
 * app.use(expressTenantRateLimit({ limits, tenantOf: (req) => resolutionOfRequest(req).tenantId }));
 */
export function expressTenantRateLimit<Req>(
  options: ExpressTenantRateLimitOptions<Req>,
): (request: Req, response: ExpressResponseLike, next: Next) => void {
  const limit = options.limit ?? 'api';
  return (request, response, next) => {
    let tenantId: string | undefined;
    let cost: number;
    try {
      tenantId = options.tenantOf(request);
      cost = options.cost?.(request) ?? 1;
    } catch (error) {
      return next(error);
    }
    if (!tenantId) return next();
    options.limits.consume(tenantId, limit, cost).then(
      (decision) => {
        for (const [name, value] of Object.entries(rateLimitHeaders(decision))) response.setHeader(name, value);
        next();
      },
      (error: unknown) => {
        if (error instanceof RateLimitedError || error instanceof LimitNotInPlanError)
          markRefusedByRateLimit(request as object);
        if (error instanceof RateLimitedError)
          for (const [name, value] of Object.entries(rateLimitHeaders(error))) response.setHeader(name, value);
        next(error);
      },
    );
  };
}
