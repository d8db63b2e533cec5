import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgBossAdapter, TenantJobs, type JobQueueAdapter } from '../../src/jobs/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { testBoss } from './support/jobs-harness.js';

describe('cron fan-out across pages: a crash mid fan-out and a re-run send each tenant once', () => {
  let db: TestDatabase;
  let jobs: TenantJobs;
  let failOnSend = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    // 1,200 active tenants (three pages of 500) and 100 suspended ones
    await db.owner.query(
      `insert into tenantry.tenants (slug, name) select 'fan-' || i, 'Fan ' || i from generate_series(1, 1200) i`,
    );
    await db.owner.query(
      `insert into tenantry.tenants (slug, name, status, suspended_at) select 'off-' || i, 'Off ' || i, 'suspended', now() from generate_series(1, 100) i`,
    );
    const inner = new PgBossAdapter(testBoss(db));
    let sends = 0;
    // the adapter dies on the n-th send, as a process killed mid fan-out would stop there
    const crashing: JobQueueAdapter = Object.assign(Object.create(inner) as JobQueueAdapter, {
      send: async (...args: Parameters<JobQueueAdapter['send']>) => {
        if (++sends === failOnSend) throw new Error('crash');
        return inner.send(...args);
      },
    });
    jobs = new TenantJobs({ adapter: crashing, catalog: db.owner, signingSecret: db.contextSecret.padEnd(32, 'x') });
    jobs.define('daily', () => undefined);
    await jobs.start();
  });

  afterAll(async () => {
    await jobs?.stop();
    await db?.drop();
  });

  async function perTenant(tick: string): Promise<{ tenants: number; duplicates: number; inactive: number }> {
    const { rows } = await db.owner.query<{ tenants: number; duplicates: number; inactive: number }>(
      `select count(distinct j.data->'tenantry'->>'tenant')::int as tenants,
              (count(*) - count(distinct j.data->'tenantry'->>'tenant'))::int as duplicates,
              count(*) filter (where t.status <> 'active')::int as inactive
         from pgboss.job j join tenantry.tenants t on t.id = (j.data->'tenantry'->>'tenant')::uuid
        where j.name = 'daily' and j.data->'tenantry'->>'requestId' = $1`,
      [`tick:${tick}`],
    );
    return rows[0]!;
  }

  it('the first run crashes on its second page; the re-run sends the rest, nobody twice', async () => {
    failOnSend = 2;
    await expect(jobs.fanOut('daily', 't1', {})).rejects.toThrow('crash');
    expect(await perTenant('t1')).toEqual({ tenants: 500, duplicates: 0, inactive: 0 });
    failOnSend = 0;
    expect(await jobs.fanOut('daily', 't1', {})).toEqual({ sent: 700, skipped: 500 });
    expect(await perTenant('t1')).toEqual({ tenants: 1200, duplicates: 0, inactive: 0 });
    expect(await jobs.fanOut('daily', 't1', {})).toEqual({ sent: 0, skipped: 1200 });
    expect(await perTenant('t1')).toEqual({ tenants: 1200, duplicates: 0, inactive: 0 });
  });

  it('another tick is a fresh round', async () => {
    expect(await jobs.fanOut('daily', 't2', {})).toEqual({ sent: 1200, skipped: 0 });
  });
});
