import { createHash } from 'node:crypto';

/** What the prefix puts in application_name for a tenant's statements: see {@link activityTag}. */
export const ACTIVITY_TAG_PREFIX = 'tenantry:';

/**
 * The tag of a tenant's statements in `pg_stat_activity.application_name` (TenantPool's
 * `activityTag`): `tenantry:` and 16 hex digits of SHA-256 over the tenant id. Not the context
 * value (a signed token) and not the id itself: every role can read application_name, and a tag
 * tells who runs only to someone who already has the tenant ids (`tenantry tenants top` reads them
 * from the catalog and hashes each).
 *
 * @example
 * activityTag('0b8e…') // 'tenantry:5f1c2a…'
 */
export function activityTag(tenantId: string): string {
  return ACTIVITY_TAG_PREFIX + createHash('sha256').update(`tenantry-activity:${tenantId}`).digest('hex').slice(0, 16);
}

const MAX_CACHED = 10_000;

/** Each tenant's tag, hashed once and reused: a statement costs a map lookup, no hashing, no allocation. */
export class ActivityTags {
  readonly #cache = new Map<string, string>();

  tagOf(tenantId: string): string {
    let tag = this.#cache.get(tenantId);
    if (tag === undefined) {
      if (this.#cache.size >= MAX_CACHED) this.#cache.clear();
      tag = activityTag(tenantId);
      this.#cache.set(tenantId, tag);
    }
    return tag;
  }
}
