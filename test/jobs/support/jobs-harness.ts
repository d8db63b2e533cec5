import PgBoss from 'pg-boss';
import { TenantCatalog } from '../../../src/index.js';
import {
  PgBossAdapter,
  TenantJobs,
  type JobRefusal,
  type JobState,
  type TenantJobsOptions,
} from '../../../src/jobs/index.js';
import type { TestDatabase } from '../../support/test-database.js';

/** A pg-boss for a test database, as the owner role, without its background maintenance. */
export function testBoss(db: TestDatabase): PgBoss {
  const boss = new PgBoss({ connectionString: db.ownerUrl, max: 4, supervise: false, schedule: false });
  boss.on('error', () => undefined);
  return boss;
}

/** TenantJobs on pg-boss for a test database; refusals collected. */
export function testJobs(
  db: TestDatabase,
  options: Partial<TenantJobsOptions> = {},
): { jobs: TenantJobs; boss: PgBoss; refusals: JobRefusal[]; errors: unknown[] } {
  const boss = testBoss(db);
  const refusals: JobRefusal[] = [];
  const errors: unknown[] = [];
  const jobs = new TenantJobs({
    adapter: new PgBossAdapter(boss),
    catalog: db.owner,
    signingSecret: db.contextSecret.padEnd(32, 'x'),
    maxStalenessMs: 0,
    pollIntervalMs: 20,
    onRefused: (r) => refusals.push(r),
    onError: (e) => errors.push(e),
    ...options,
  });
  return { jobs, boss, refusals, errors };
}

const TERMINAL: JobState[] = ['completed', 'refused', 'failed'];

/** Waits (bounded) until the job reaches a terminal state; returns it. */
export async function settled(jobs: TenantJobs, queue: string, id: string, timeoutMs = 15_000): Promise<JobState> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const state = await jobs.state(queue, id);
    if (state && TERMINAL.includes(state)) return state;
    if (Date.now() > until) throw new Error(`job ${queue}/${id} still ${state} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Polls `check` until true (bounded). */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

export type InactiveState = 'missing' | 'suspended' | 'deleted';
export const INACTIVE: InactiveState[] = ['missing', 'suspended', 'deleted'];

/** A fresh active tenant, and how to make it missing, suspended or deleted. */
export async function freshTenant(
  db: TestDatabase,
  label: string,
): Promise<{ id: string; make(state: InactiveState): Promise<void> }> {
  const catalog = new TenantCatalog(db.owner);
  const slug = `${label}-${Math.random().toString(36).slice(2, 8)}`.toLowerCase();
  const { id } = await catalog.create({ slug, name: label });
  return {
    id,
    async make(state) {
      if (state === 'suspended') await catalog.suspend(id);
      else if (state === 'deleted') await catalog.softDelete(id);
      else await db.admin.query('delete from tenantry.tenants where id = $1', [id]);
    },
  };
}
