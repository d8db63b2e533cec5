import type { RateLimitDecision } from './tenant-rate-limits.js';
import { RateLimitedError } from './rate-limited-error.js';

/**
 * The headers of an answer: `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (IETF
 * draft, as express-rate-limit's `draft-6`) on an admitted request, `Retry-After` on a refusal.
 * None when the store was down and the limit failed open (nothing known to say).
 */
export function rateLimitHeaders(outcome: RateLimitDecision | RateLimitedError): Record<string, string> {
  if (outcome instanceof RateLimitedError) return { 'retry-after': String(outcome.retryAfterSeconds) };
  if (outcome.storeDown) return {};
  return {
    'ratelimit-limit': String(outcome.points),
    'ratelimit-remaining': String(outcome.remaining),
    'ratelimit-reset': String(outcome.resetSeconds),
  };
}
