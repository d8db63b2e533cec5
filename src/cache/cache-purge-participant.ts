import { toTenantId } from '../context/tenant-id.js';
import type { CacheBackend } from './cache-backend.js';

/**
 * The tenant purge's participant for a cache backend (structurally a `PurgeParticipant` of
 * `tenantry/lifecycle`): counts the tenant's entries for the plan and removes them, with its
 * generation counter, in the purge. With the Redis backend this clears what every instance
 * shares; a memory backend holds only its own process's entries (other instances' age out by
 * their TTL, and a deleted tenant's requests are refused before they read anything).
 *
 * @example
 * const purger = new TenantPurger({ ...options, participants: [cachePurgeParticipant(redisBackend)] });
 */
export function cachePurgeParticipant(
  backend: CacheBackend,
  name = 'cache',
): { name: string; plan(tenantId: string): Promise<number>; purge(tenantId: string): Promise<number> } {
  return {
    name,
    plan: (tenantId) => backend.count(toTenantId(tenantId)),
    purge: (tenantId) => backend.purge(toTenantId(tenantId)),
  };
}
