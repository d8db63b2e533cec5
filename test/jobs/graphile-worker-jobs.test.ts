import { expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { runAs } from '../../src/index.js';
import { countTenantJobs, purgeTenantJobs, TenantJobs, type SealedJob } from '../../src/jobs/index.js';
import { GraphileWorkerAdapter } from '../../src/jobs/graphile-worker.js';
import { describeAdapterScenarios } from './support/adapter-scenarios.js';
import { freshTenant, settled } from './support/jobs-harness.js';

// graphile-worker runs on the same PostgreSQL (its schema `graphile_worker`, created by start()
// as the owner role): nothing to skip, the embedded database is enough.

const pools: pg.Pool[] = [];
const adapters = new WeakMap<TenantJobs, SpyAdapter>();

/** Keeps what schedule() stored, to send a tick the way graphile-worker's cron does. */
class SpyAdapter extends GraphileWorkerAdapter {
  readonly scheduled = new Map<string, SealedJob>();
  override async schedule(queue: string, cron: string, data: SealedJob, timezone: string): Promise<void> {
    this.scheduled.set(queue, data);
    await super.schedule(queue, cron, data, timezone);
  }
}

describeAdapterScenarios(
  {
    name: 'graphile-worker',
    newJobs(db, onRefused) {
      // a pool per adapter: each runner holds one connection for LISTEN
      const pgPool = new pg.Pool({ connectionString: db.ownerUrl, max: 6 });
      pgPool.on('error', () => undefined);
      pgPool.on('connect', (client) => client.on('error', () => undefined));
      pools.push(pgPool);
      const adapter = new SpyAdapter({ pgPool, pollInterval: 50 });
      const jobs = new TenantJobs({
        adapter,
        catalog: db.owner,
        signingSecret: db.contextSecret.padEnd(32, 'x'),
        maxStalenessMs: 0,
        onRefused,
      });
      adapters.set(jobs, adapter);
      return jobs;
    },
    async editTenant(db, _queue, id, tenant) {
      const { rowCount } = await db.admin.query(
        `update graphile_worker._private_jobs
            set payload = jsonb_set(payload::jsonb, '{tenantry,tenant}', to_jsonb($2::text))::json, run_at = now()
          where id = $1`,
        [id, tenant],
      );
      expect(rowCount).toBe(1);
    },
    async readData(db, _queue, id) {
      const { rows } = await db.admin.query('select payload from graphile_worker._private_jobs where id = $1', [id]);
      return rows[0].payload;
    },
    async insertCopy(db, queue, data) {
      // graphile-worker's own add_job, as someone with access to its schema would call it
      const { rows } = await db.admin.query<{ id: string }>(
        'select (graphile_worker.add_job($1, $2::json)).id::text as id',
        [queue, JSON.stringify(data)],
      );
      return rows[0]!.id;
    },
    async sendTick(_db, jobs, name) {
      const adapter = adapters.get(jobs)!;
      const data = adapter.scheduled.get(`${name}__tick`)!;
      // graphile-worker's cron adds `_cron` next to the stored payload
      const tick = { ...data, _cron: { ts: new Date().toISOString() } } as unknown as SealedJob;
      const [id] = await adapter.send(`${name}__tick`, [{ data: tick, priority: 0 }]);
      return id!;
    },
    async cleanup() {
      await Promise.all(pools.splice(0).map((p) => p.end()));
    },
  },
  (ctx) => {
    it('runs a job as the tenant that enqueued it; the row in graphile_worker carries the signed envelope', async () => {
      const { db, jobs, calls } = ctx();
      const tenant = (await freshTenant(db, 'gw')).id;
      const id = await runAs(tenant, () => jobs.enqueue('first', {}, { startAfterSeconds: 1, actor: 'user:7' }));
      const { rows } = await db.owner.query('select payload from graphile_worker._private_jobs where id = $1', [id]);
      expect(rows[0].payload.tenantry).toMatchObject({ tenant, actor: 'user:7', queue: 'first' });
      expect(await settled(jobs, 'first', id)).toBe('completed');
      expect(calls.first ?? []).toContain(tenant);
    });

    it("purgeTenantJobs removes one tenant's graphile-worker jobs, and no other tenant's", async () => {
      const { db, jobs } = ctx();
      const victim = randomUUID();
      const other = randomUUID();
      await runAs(victim, () => jobs.enqueueMany('first', [{}, {}], { startAfterSeconds: 3600 }));
      await runAs(other, () => jobs.enqueue('first', {}, { startAfterSeconds: 3600 }));
      expect(await countTenantJobs(db.owner, victim)).toBe(2);
      expect(await purgeTenantJobs(db.owner, victim)).toBe(2);
      expect(await countTenantJobs(db.owner, victim)).toBe(0);
      expect(await countTenantJobs(db.owner, other)).toBe(1);
      expect(await purgeTenantJobs(db.owner, victim)).toBe(0);
      await purgeTenantJobs(db.owner, other);
    });

    it('a timezone other than UTC is refused (graphile-worker cron runs in UTC)', async () => {
      const { jobs } = ctx();
      await expect(jobs.schedule('nightly', '0 3 * * *', {}, { timezone: 'Europe/Paris' })).rejects.toMatchObject({
        code: 'CONFIGURATION_ERROR',
      });
    });
  },
);
