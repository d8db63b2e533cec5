/**
 * `tenantry/limits`: per-tenant rate limits by plan (API and expensive operations) and sign-in
 * throttles, counted in PostgreSQL or Redis by rate-limiter-flexible. See docs/rate-limits.md.
 */
export {
  TenantRateLimits,
  type TenantRateLimitsOptions,
  type RateLimitDecision,
  type RateLimitedEvent,
  type EffectiveLimits,
} from './tenant-rate-limits.js';
export {
  parseRateLimitConfig,
  type RateLimitConfig,
  type ParsedRateLimitConfig,
  type LimitDefinition,
  type PlanLimits,
  type StoreDownPolicy,
} from './rate-limit-config.js';
export { LimitNotInPlanError, RateLimitedError, type RateLimitScope } from './rate-limited-error.js';
export type { RateLimitStore, RedisClientLike } from './limit-counter.js';
export { LIMITS_CHANNEL } from './tenant-plan-cache.js';
export {
  SignInThrottle,
  type SignInThrottleOptions,
  type ThrottleScope,
  type SignInAttempt,
  type ThrottleWindow,
} from './sign-in-throttle.js';
export { rateLimitHeaders, RATE_LIMIT_HEADER_NAMES } from './rate-limit-headers.js';
export { fastifyTenantRateLimit, type FastifyTenantRateLimitOptions } from './fastify-rate-limit.js';
export { expressTenantRateLimit, type ExpressTenantRateLimitOptions } from './express-rate-limit.js';
