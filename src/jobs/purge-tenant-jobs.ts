import { toTenantId } from '../context/tenant-id.js';
import { quoteIdent } from '../policy/identifiers.js';
import type { SqlExecutor } from './job-queue-adapter.js';

/** Options of {@link purgeTenantJobs}. */
export interface PurgeTenantJobsOptions {
  /** pg-boss's schema (default `pgboss`). */
  schema?: string;
  /** graphile-worker's schema (default `graphile_worker`). */
  graphileSchema?: string;
}

/**
 * Removes every job of one tenant from the queue tables (pg-boss's `job` and `archive`, any
 * state: a finished job's payload is the tenant's data too; graphile-worker's `_private_jobs`,
 * which keeps failed and refused jobs) and its rows in Tenantry's job ledgers. Returns how many
 * jobs it removed (0 where neither queue was ever installed). Run it as the owner role; the
 * purge of a tenant calls it. (BullMQ's jobs live in Redis: not reached from here.)
 *
 * @example
 * const removed = await purgeTenantJobs(ownerPool, tenantId);
 */
export async function purgeTenantJobs(
  db: SqlExecutor,
  tenantId: string,
  options: PurgeTenantJobsOptions = {},
): Promise<number> {
  const tenant = toTenantId(tenantId);
  let removed = 0;
  for (const { table, column } of await queueTables(db, options)) {
    const result = await db.query(`delete from ${table} where ${column} -> 'tenantry' ->> 'tenant' = $1`, [tenant]);
    removed += result.rowCount ?? 0;
  }
  const ledgers = await db.query<{ ok: boolean }>(
    `select to_regclass('tenantry_private.job_backlog') is not null as ok`,
  );
  if (ledgers.rows[0]?.ok) {
    await db.query('delete from tenantry_private.job_backlog where tenant_key = $1', [tenant]);
    await db.query('delete from tenantry_private.job_fanout where tenant_id = $1', [tenant]);
  }
  return removed;
}

/**
 * The queue tables that exist, with their payload column: pg-boss's `job` and `archive` (`data`),
 * graphile-worker's `_private_jobs` (`payload`, json).
 */
async function queueTables(
  db: SqlExecutor,
  options: PurgeTenantJobsOptions,
): Promise<{ table: string; column: string }[]> {
  const schema = quoteIdent(options.schema ?? 'pgboss', 'schema');
  const graphile = quoteIdent(options.graphileSchema ?? 'graphile_worker', 'schema');
  const { rows } = await db.query<{ job: string | null; archive: string | null; graphile: string | null }>(
    `select to_regclass($1)::text as job, to_regclass($2)::text as archive, to_regclass($3)::text as graphile`,
    [`${schema}.job`, `${schema}.archive`, `${graphile}._private_jobs`],
  );
  const r = rows[0];
  return [
    ...[r?.job, r?.archive].filter((t): t is string => !!t).map((table) => ({ table, column: 'data' })),
    ...(r?.graphile ? [{ table: r.graphile, column: 'payload' }] : []),
  ];
}

/** How many jobs of one tenant the queue tables hold, in any state (what purgeTenantJobs would remove). */
export async function countTenantJobs(
  db: SqlExecutor,
  tenantId: string,
  options: PurgeTenantJobsOptions = {},
): Promise<number> {
  const tenant = toTenantId(tenantId);
  let count = 0;
  for (const { table, column } of await queueTables(db, options)) {
    const { rows } = await db.query<{ n: number }>(
      `select count(*)::int as n from ${table} where ${column} -> 'tenantry' ->> 'tenant' = $1`,
      [tenant],
    );
    count += rows[0]?.n ?? 0;
  }
  return count;
}

/**
 * The tenant purge's participant for the job queue (structurally a `PurgeParticipant` of
 * `tenantry/lifecycle`): counts the tenant's jobs for the plan and removes them in the purge.
 * `tenantry tenants purge` uses it on the home database.
 *
 * @example
 * const purger = new TenantPurger({ ...options, participants: [jobsPurgeParticipant(ownerPool)] });
 */
export function jobsPurgeParticipant(
  db: SqlExecutor,
  options: PurgeTenantJobsOptions = {},
): { name: string; plan(tenantId: string): Promise<number>; purge(tenantId: string): Promise<number> } {
  return {
    name: 'jobs',
    plan: (tenantId) => countTenantJobs(db, tenantId, options),
    purge: (tenantId) => purgeTenantJobs(db, tenantId, options),
  };
}
