/**
 * `tenantry/cache`: a cache namespaced by the current tenant, failing closed without one, with
 * per-tenant invalidation by generation counters, in-process (LRU) and Redis backends, and a
 * purge participant. See docs/cache.md.
 */
export { TenantCache, type TenantCacheOptions } from './tenant-cache.js';
export type { CacheBackend } from './cache-backend.js';
export { MemoryCacheBackend, type MemoryCacheBackendOptions } from './memory-cache-backend.js';
export { RedisCacheBackend, type RedisCacheBackendOptions, type RedisCacheClientLike } from './redis-cache-backend.js';
export { CacheKeyInvalidError } from './cache-errors.js';
export { cachePurgeParticipant } from './cache-purge-participant.js';
