import { createHash } from 'node:crypto';
import type { ResolvedDbLimits, TenantDbLimits } from './tenant-db-limits.js';

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

/**
 * The extra prefix values of each tenant (its limits, then its tag), built once per tenant and
 * reused: a statement costs a map lookup, no hashing, no allocation.
 */
export class TaggedSettings {
  readonly #cache = new Map<string, { limits: ResolvedDbLimits | undefined; values: readonly (string | null)[] }>();

  constructor(
    private readonly dbLimits: TenantDbLimits | undefined,
    private readonly noTenant: readonly (string | null)[],
  ) {}

  valuesOf(tenantId: string | undefined): readonly (string | null)[] {
    if (tenantId === undefined) return this.noTenant;
    const limits = this.dbLimits?.limitsOf(tenantId);
    const hit = this.#cache.get(tenantId);
    if (hit && hit.limits === limits) return hit.values;
    if (this.#cache.size >= MAX_CACHED) this.#cache.clear();
    const values = Object.freeze([...(limits?.values ?? []), activityTag(tenantId)]);
    this.#cache.set(tenantId, { limits, values });
    return values;
  }
}
