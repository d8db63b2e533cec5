import PgBoss from 'pg-boss';
import { PgBossAdapter, TenantJobs, type OwnerPool } from 'tenantry/jobs';
import type { Logger } from 'pino';
import { currentLogContext, runWithLogContext } from 'tenantry/pino';

/** How this process takes part in background jobs (TENANTRY_ROLE). */
export type ProcessRole = 'all' | 'server' | 'worker';

/**
 * TENANTRY_ROLE: `all` (default: the HTTP server, and the jobs' workers in the same process),
 * `server` (HTTP only: jobs are enqueued, a separate worker runs them) or `worker` (no HTTP:
 * runs the jobs; `npm run worker`).
 */
export function processRoleFromEnv(env: NodeJS.ProcessEnv = process.env): ProcessRole {
  const role = env.TENANTRY_ROLE ?? 'all';
  if (role !== 'all' && role !== 'server' && role !== 'worker')
    throw new Error(`TENANTRY_ROLE must be all, server or worker (got ${JSON.stringify(role)})`);
  return role;
}

/**
 * The reference server's TenantJobs on pg-boss. pg-boss connects as the OWNER role: the queue
 * holds every tenant's jobs (it is control plane, like the catalog, out of the app role's
 * reach), and the owner creates pg-boss's schema (`pgboss`) on the first start (install time);
 * later starts find it and migrate it if pg-boss was upgraded.
 */
export function createJobs(options: {
  ownerUrl: string;
  catalog: OwnerPool;
  contextSecret: string;
  logger?: Logger;
}): TenantJobs {
  const boss = new PgBoss({ connectionString: options.ownerUrl, max: 4, application_name: 'tenantry-jobs' });
  boss.on('error', (err: Error) => options.logger?.warn({ err: { message: err.message } }, 'job queue'));
  return new TenantJobs({
    adapter: new PgBossAdapter(boss),
    catalog: options.catalog,
    // the job envelopes' key is derived from the context secret: no new secret to keep
    signingSecret: options.contextSecret,
    // the envelope's tenant, once verified, as the line's context (a tenant_id in the logged object
    // would be written as claimed_tenant_id: docs/logging.md, Fields)
    onRefused: (r) =>
      runWithLogContext({ ...currentLogContext(), ...(r.tenantId === undefined ? {} : { tenantId: r.tenantId }) }, () =>
        options.logger?.warn({ job: r.queue, jobId: r.jobId, code: r.code }, 'job refused'),
      ),
    // a handler's message may carry the tenant's data: its class and code only
    onError: (err) =>
      options.logger?.warn({ err: { name: (err as Error).name, code: (err as { code?: string }).code } }, 'job failed'),
  });
}
