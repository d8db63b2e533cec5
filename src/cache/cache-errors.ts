import { TenantryError } from '../errors/tenantry-error.js';

/**
 * A cache key the tenant cache refuses: not a string, empty, longer than the limit, or not
 * well-formed Unicode (a lone surrogate would encode to the same bytes as U+FFFD and make two
 * different keys one entry). The key itself is never in the message: it may carry the caller's data.
 */
export class CacheKeyInvalidError extends TenantryError {
  constructor(reason: string) {
    super('CACHE_KEY_INVALID', `Invalid cache key: ${reason}`, { status: 400, details: { reason } });
  }
}
