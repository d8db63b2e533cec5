/**
 * Something outside the tenant tables that holds a tenant's data and takes part in its purge: a
 * job queue (`tenantry/jobs`' `purgeTenantJobs`), a cache, an object store. The purge calls
 * `plan` for the dry run and the report's "before" count, `purge` once (again on a resumed run:
 * it must be idempotent), then `plan` again, which must answer 0.
 *
 * @example
 * const jobs: PurgeParticipant = {
 *   name: 'jobs',
 *   tables: ['pgboss.job'],
 *   plan: async (tenantId) => (await owner.query(`select count(*)::int as n from pgboss.job where data->>'tenantId' = $1`, [tenantId])).rows[0].n,
 *   purge: (tenantId) => purgeTenantJobs(owner, tenantId),
 * };
 */
export interface PurgeParticipant {
  /** Shown in the plan and the report, e.g. `jobs` or `cache`: 1-63 of [a-z0-9_.-]. */
  readonly name: string;
  /**
   * Tables (`schema.table`, in the home database) whose rows of the tenant this participant
   * removes: the purge counts them as accounted for when it looks for tables with a `tenant_id`
   * column that nothing purges.
   */
  readonly tables?: readonly string[];
  /** How many items of the tenant it holds (and would remove). */
  plan(tenantId: string): Promise<number>;
  /** Removes them; returns how many it removed. Idempotent. */
  purge(tenantId: string): Promise<number>;
}
