import type { RateLimitDecision } from './tenant-rate-limits.js';
import { RateLimitedError } from './rate-limited-error.js';

/** The headers {@link rateLimitHeaders} may set: remove them before answering for another limit. */
export const RATE_LIMIT_HEADER_NAMES = ['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'retry-after'];

/**
 * The headers of an answer: `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (IETF
 * draft, as express-rate-limit's `draft-6`) on an admitted request, `Retry-After` on a refusal
 * (with the refusing limit's `RateLimit-*`, remaining 0, when its points are known).
 * None when the store was down and the limit failed open (nothing known to say).
 */
export function rateLimitHeaders(outcome: RateLimitDecision | RateLimitedError): Record<string, string> {
  if (outcome instanceof RateLimitedError) {
    const retry = String(outcome.retryAfterSeconds);
    const points = outcome.details.points;
    return typeof points === 'number'
      ? {
          'ratelimit-limit': String(points),
          'ratelimit-remaining': '0',
          'ratelimit-reset': retry,
          'retry-after': retry,
        }
      : { 'retry-after': retry };
  }
  if (outcome.storeDown) return {};
  return {
    'ratelimit-limit': String(outcome.points),
    'ratelimit-remaining': String(outcome.remaining),
    'ratelimit-reset': String(outcome.resetSeconds),
  };
}
