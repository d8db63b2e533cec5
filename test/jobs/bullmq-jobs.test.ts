import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { currentTenant, runAs, tryCurrentTenant } from '../../src/index.js';
import { TenantJobs, type JobRefusal } from '../../src/jobs/index.js';
import { BullMqAdapter } from '../../src/jobs/bullmq.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { REDIS_URL, redisReachable } from '../live/support/redis.js';
import { eventually, freshTenant, INACTIVE, settled, type InactiveState } from './support/jobs-harness.js';

// Redis is optional for the project (`npm test` must pass without it): these tests skip, with
// this reason, when nothing answers on TENANTRY_TEST_REDIS_URL (default redis://127.0.0.1:6379).
const reachable = await redisReachable();

const CODE: Record<InactiveState, string> = {
  missing: 'TENANT_NOT_FOUND',
  suspended: 'TENANT_SUSPENDED',
  deleted: 'TENANT_DELETED',
};

describe.skipIf(!reachable)('tenantry/jobs on BullMQ (Redis)', () => {
  let db: TestDatabase;
  let jobs: TenantJobs;
  let redis: Redis;
  const refusals: JobRefusal[] = [];
  const calls: Record<string, (string | undefined)[]> = {};
  const record = (name: string) => (calls[name] ??= []).push(tryCurrentTenant());
  const deactivate = new Map<string, () => Promise<void>>();
  // one prefix per test file: test files share the Redis
  const prefix = `tenantry-test-${randomBytes(4).toString('hex')}`;

  const extraPrefixes: string[] = [];

  function newJobs(queuePrefix = prefix): TenantJobs {
    const connection = {
      host: new URL(REDIS_URL).hostname,
      port: Number(new URL(REDIS_URL).port || 6379),
      maxRetriesPerRequest: null,
    };
    const j = new TenantJobs({
      adapter: new BullMqAdapter({ connection, prefix: queuePrefix }),
      catalog: db.owner,
      signingSecret: db.contextSecret.padEnd(32, 'x'),
      maxStalenessMs: 0,
      pollIntervalMs: 20,
      onRefused: (r) => refusals.push(r),
    });
    j.define('first', () => record('first'));
    j.define(
      'flaky',
      async () => {
        record('flaky');
        await deactivate.get(currentTenant())?.();
        throw new Error('first run fails');
      },
      { retryLimit: 1, retryDelaySeconds: 0, retryBackoff: false },
    );
    j.define(
      'doomed',
      async () => {
        record('doomed');
        await deactivate.get(currentTenant())?.();
        throw new Error('always fails');
      },
      { retryLimit: 0, onDeadLetter: () => record('doomed.dead') },
    );
    j.define(
      'redo',
      () => {
        record('redo');
        if ((calls.redo ?? []).filter((t) => t === currentTenant()).length === 1) throw new Error('fails once');
      },
      { retryLimit: 0 },
    );
    j.define('nightly', () => record('nightly'));
    return j;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    jobs = newJobs();
    await jobs.start();
    await jobs.work({ queues: ['first', 'flaky', 'doomed', 'redo'], concurrency: 2 });
  });

  afterAll(async () => {
    await jobs?.stop();
    for (const p of [prefix, ...extraPrefixes]) {
      const keys = await redis.keys(`${p}:*`);
      if (keys.length) await redis.del(...keys);
    }
    await redis.quit();
    await db?.drop();
  });

  it("B's side: a job hash edited in Redis to name tenant B is refused and never runs", async () => {
    const a = await freshTenant(db, 'edit-a');
    const b = await freshTenant(db, 'edit-b');
    const id = await runAs(a.id, () => jobs.enqueue('first', {}, { startAfterSeconds: 2 }));
    const key = `${prefix}:first:${id}`;
    const data = JSON.parse((await redis.hget(key, 'data'))!);
    data.tenantry.tenant = b.id;
    await redis.hset(key, 'data', JSON.stringify(data));
    expect(await settled(jobs, 'first', id)).toBe('refused');
    expect(refusals.find((r) => r.jobId === id)?.code).toBe('JOB_ENVELOPE_INVALID');
    expect(calls.first ?? []).not.toContain(b.id);
    expect(calls.first ?? []).not.toContain(a.id);
  });

  describe.each(INACTIVE)('a %s tenant: 0 handler calls on every path, and a terminal state', (state) => {
    it('first run', async () => {
      const t = await freshTenant(db, `first-${state}`);
      await t.make(state);
      const id = await runAs(t.id, () => jobs.enqueue('first', {}));
      expect(await settled(jobs, 'first', id)).toBe('refused');
      expect(calls.first ?? []).not.toContain(t.id);
      expect(refusals.find((r) => r.jobId === id)?.code).toBe(CODE[state]);
    });

    it('retry', async () => {
      const t = await freshTenant(db, `retry-${state}`);
      deactivate.set(t.id, () => t.make(state));
      const id = await runAs(t.id, () => jobs.enqueue('flaky', {}));
      expect(await settled(jobs, 'flaky', id)).toBe('refused');
      expect((calls.flaky ?? []).filter((x) => x === t.id)).toHaveLength(1);
      expect(refusals.find((r) => r.jobId === id)?.code).toBe(CODE[state]);
    });

    it('dead letter', async () => {
      const t = await freshTenant(db, `dead-${state}`);
      deactivate.set(t.id, () => t.make(state));
      const id = await runAs(t.id, () => jobs.enqueue('doomed', {}));
      expect(await settled(jobs, 'doomed', id)).toBe('failed');
      await eventually(() => refusals.some((r) => r.queue === 'doomed__dead' && r.tenantId === t.id));
      const dead = refusals.find((r) => r.queue === 'doomed__dead' && r.tenantId === t.id)!;
      expect(dead.code).toBe(CODE[state]);
      expect(await settled(jobs, 'doomed__dead', dead.jobId)).toBe('refused');
      expect(calls['doomed.dead'] ?? []).not.toContain(t.id);
    });

    it('manual re-drive', async () => {
      const t = await freshTenant(db, `redo-${state}`);
      const id = await runAs(t.id, () => jobs.enqueue('redo', {}));
      expect(await settled(jobs, 'redo', id)).toBe('failed');
      await t.make(state);
      expect(await jobs.redrive('redo', id)).toBe(true);
      await eventually(() => refusals.some((r) => r.jobId === id));
      expect(await settled(jobs, 'redo', id)).toBe('refused');
      expect((calls.redo ?? []).filter((x) => x === t.id)).toHaveLength(1);
    });

    it('cron fan-out', async () => {
      const before = await freshTenant(db, `cron-before-${state}`);
      const between = await freshTenant(db, `cron-between-${state}`);
      await before.make(state);
      const tick = `tick-${state}`;
      // a queue of its own with no worker yet: the fanned-out jobs wait while `between` turns inactive
      const own = `${prefix}-${state}`;
      extraPrefixes.push(own);
      const cron = newJobs(own);
      await cron.start();
      try {
        const result = await cron.fanOut('nightly', tick, {});
        expect(result.sent).toBeGreaterThan(0);
        expect(await cron.fanOut('nightly', tick, {})).toMatchObject({ sent: 0 });
        await between.make(state);
        await cron.work({ queues: ['nightly'] });
        await eventually(() => refusals.some((r) => r.queue === 'nightly' && r.tenantId === between.id), 20_000);
      } finally {
        await cron.stop();
      }
      expect(calls.nightly ?? []).not.toContain(between.id);
      expect(calls.nightly ?? []).not.toContain(before.id);
      expect(refusals.some((r) => r.tenantId === before.id && r.queue === 'nightly')).toBe(false);
    });
  });

  it('positive controls: an active tenant runs on retry, in the dead-letter path, on re-drive and in a fan-out', async () => {
    const t = await freshTenant(db, 'control');
    const flaky = await runAs(t.id, () => jobs.enqueue('flaky', {}));
    expect(await settled(jobs, 'flaky', flaky)).toBe('failed');
    expect((calls.flaky ?? []).filter((x) => x === t.id)).toHaveLength(2);
    await runAs(t.id, () => jobs.enqueue('doomed', {}));
    await eventually(() => (calls['doomed.dead'] ?? []).includes(t.id));
    const redo = await runAs(t.id, () => jobs.enqueue('redo', {}));
    expect(await settled(jobs, 'redo', redo)).toBe('failed');
    expect(await jobs.redrive('redo', redo)).toBe(true);
    expect(await settled(jobs, 'redo', redo)).toBe('completed');
    const own = `${prefix}-control`;
    extraPrefixes.push(own);
    const cron = newJobs(own);
    await cron.start();
    try {
      await cron.fanOut('nightly', 'tick-control', {});
      await cron.work({ queues: ['nightly'] });
      await eventually(() => (calls.nightly ?? []).includes(t.id), 20_000);
    } finally {
      await cron.stop();
    }
    await jobs.schedule('nightly', '0 3 * * *', {});
    await jobs.unschedule('nightly');
  });
});
