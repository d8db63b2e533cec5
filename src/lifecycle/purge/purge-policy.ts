import { z } from 'zod';
import type { Queryable } from '../../catalog/tenant-catalog.js';
import { TenantCatalog } from '../../catalog/tenant-catalog.js';
import type { Tenant } from '../../catalog/tenant.js';
import { InvalidArgumentError } from '../../errors/tenantry-error.js';

/** What the purge does with the tenant's audit entries (`tenantry.audit_log`). */
export type AuditPolicy = 'keep' | 'anonymise' | 'delete';

/**
 * The tenant setting (`tenant.settings.retentionDays`, a whole number of days) that overrides the
 * plan's retention for one tenant, e.g. a contract that keeps data 90 days after cancellation.
 */
export const RETENTION_SETTING = 'retentionDays';

/**
 * How long a soft-deleted tenant is kept before it may be purged, and what the purge does with
 * its audit entries. Configuration of the library: the application passes it to
 * `TenantPurger`; the CLI takes it from flags.
 *
 * @example
 * const policy: PurgePolicy = { retentionDays: 30, plans: { enterprise: 90, free: 7 }, audit: 'anonymise' };
 */
export interface PurgePolicy {
  /** Days from the soft delete to the purge for a tenant whose plan has none. Default 30. */
  retentionDays?: number;
  /** Days per plan (`tenant.settings.plan`). */
  plans?: Readonly<Record<string, number>>;
  /**
   * Audit entries: `anonymise` (default: kept, with the tenant id replaced by a random one and
   * the actor, reason and detail cleared, so the log's shape survives without naming the tenant),
   * `keep` (unchanged: the one table left holding the tenant's id) or `delete`.
   */
  audit?: AuditPolicy;
}

const days = z.number().int().min(0).max(36500);
const policySchema = z
  .object({
    retentionDays: days.optional(),
    plans: z.record(z.string().min(1).max(100), days).optional(),
    audit: z.enum(['keep', 'anonymise', 'delete']).optional(),
  })
  .strict();

/** A policy with its defaults, checked: INVALID_ARGUMENT names the bad field. */
export function purgePolicy(policy: PurgePolicy = {}): Required<PurgePolicy> {
  const parsed = policySchema.safeParse(policy);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InvalidArgumentError(`purge policy: ${issue.message}`, issue.path.join('.') || 'policy');
  }
  return { retentionDays: 30, plans: {}, audit: 'anonymise', ...parsed.data };
}

/** A tenant's retention: how many days, where the number comes from, and when the purge may run. */
export interface Retention {
  days: number;
  source: 'tenant' | 'plan' | 'default';
  /** `deletedAt` + days; null while the tenant is not deleted. */
  dueAt: Date | null;
}

/** The retention of one tenant under `policy`: its own setting, else its plan's, else the default. */
export function retentionOf(tenant: Pick<Tenant, 'settings' | 'deletedAt'>, policy: PurgePolicy = {}): Retention {
  const p = purgePolicy(policy);
  const own = tenant.settings[RETENTION_SETTING];
  const plan = tenant.settings.plan;
  let result: Pick<Retention, 'days' | 'source'>;
  if (own !== undefined && days.safeParse(own).success) result = { days: own as number, source: 'tenant' };
  else if (typeof plan === 'string' && p.plans[plan] !== undefined) result = { days: p.plans[plan], source: 'plan' };
  else result = { days: p.retentionDays, source: 'default' };
  const dueAt = tenant.deletedAt ? new Date(tenant.deletedAt.getTime() + result.days * 86_400_000) : null;
  return { ...result, dueAt };
}

/** Soft-deleted tenants whose retention is over at `now`: the ones a scheduled purge may take. */
export async function tenantsDueForPurge(
  catalog: Queryable,
  policy: PurgePolicy = {},
  now: Date = new Date(),
): Promise<Array<{ tenant: Tenant; retention: Retention }>> {
  const c = new TenantCatalog(catalog);
  const due: Array<{ tenant: Tenant; retention: Retention }> = [];
  let cursor: string | undefined;
  do {
    const page = await c.list({ status: 'deleted', limit: 1000, cursor });
    for (const tenant of page.tenants) {
      const retention = retentionOf(tenant, policy);
      if (retention.dueAt && retention.dueAt <= now) due.push({ tenant, retention });
    }
    cursor = page.nextCursor;
  } while (cursor);
  return due;
}
