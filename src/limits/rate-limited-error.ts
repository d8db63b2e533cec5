import { TenantryError } from '../errors/tenantry-error.js';

/** What was limited: a tenant's limit (`api`, `export`…), or a sign-in's account or address. */
export type RateLimitScope = 'tenant' | 'account' | 'address';

/**
 * Too many requests: answer 429 with `Retry-After: retryAfterSeconds`. Also raised when the
 * limit's store is down and the limit fails closed (`details.storeDown: true`), so an outage
 * of the store is never a 5xx. The message names the limit, never the tenant, account or address.
 */
export class RateLimitedError extends TenantryError {
  declare readonly details: Readonly<{
    limit: string;
    scope: RateLimitScope;
    retryAfterSeconds: number;
    storeDown?: boolean;
    /** The refused limit's points per window, when known (a tenant limit that counted). */
    points?: number;
  }>;

  /** Whole seconds to wait (at least 1): the `Retry-After` header. */
  readonly retryAfterSeconds: number;

  constructor(details: {
    limit: string;
    scope: RateLimitScope;
    retryAfterSeconds: number;
    storeDown?: boolean;
    points?: number;
  }) {
    super(
      'RATE_LIMITED',
      details.storeDown
        ? `The ${details.limit} limit cannot be checked now: try again in ${details.retryAfterSeconds} s`
        : `Too many requests (${details.limit} limit): try again in ${details.retryAfterSeconds} s`,
      { status: 429, details },
    );
    this.retryAfterSeconds = details.retryAfterSeconds;
  }
}

/**
 * The tenant's plan (or its override) gives this limit 0 points: nothing of it is allowed, and
 * waiting changes nothing, so the answer is 403 LIMIT_NOT_IN_PLAN without `Retry-After` rather than
 * a 429. The message names the limit, never the tenant.
 */
export class LimitNotInPlanError extends TenantryError {
  declare readonly details: Readonly<{ limit: string; scope: 'tenant'; points: 0 }>;

  constructor(limit: string) {
    super('LIMIT_NOT_IN_PLAN', `The ${limit} limit allows nothing on this tenant's plan`, {
      status: 403,
      details: { limit, scope: 'tenant', points: 0 },
    });
  }
}
