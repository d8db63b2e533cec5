import { expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { TenantJobs } from '../../src/jobs/index.js';
import { BullMqAdapter } from '../../src/jobs/bullmq.js';
import { REDIS_URL, redisReachable } from '../live/support/redis.js';
import { describeAdapterScenarios } from './support/adapter-scenarios.js';

// Redis is optional for the project (`npm test` must pass without it): these tests skip, with
// this reason, when nothing answers on TENANTRY_TEST_REDIS_URL (default redis://127.0.0.1:6379).
const reachable = await redisReachable();

// one prefix per test file (test files share the Redis), and one per extra instance ("space")
const prefix = `tenantry-test-${randomBytes(4).toString('hex')}`;
let redis: Redis | undefined;
const client = (): Redis => {
  redis ??= new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  return redis;
};

describeAdapterScenarios(
  {
    name: 'BullMQ (Redis)',
    skip: reachable ? false : `no Redis answers on ${REDIS_URL}`,
    newJobs(db, onRefused, space) {
      const connection = {
        host: new URL(REDIS_URL).hostname,
        port: Number(new URL(REDIS_URL).port || 6379),
        maxRetriesPerRequest: null,
      };
      return new TenantJobs({
        adapter: new BullMqAdapter({ connection, prefix: space ? `${prefix}-${space}` : prefix }),
        catalog: db.owner,
        signingSecret: db.contextSecret.padEnd(32, 'x'),
        maxStalenessMs: 0,
        pollIntervalMs: 20,
        onRefused,
      });
    },
    async editTenant(_db, queue, id, tenant) {
      const key = `${prefix}:${queue}:${id}`;
      const data = JSON.parse((await client().hget(key, 'data'))!);
      data.tenantry.tenant = tenant;
      await client().hset(key, 'data', JSON.stringify(data));
    },
    async readData(_db, queue, id) {
      return JSON.parse((await client().hget(`${prefix}:${queue}:${id}`, 'data'))!);
    },
    async insertCopy(_db, queue, data) {
      // BullMQ's own add, as someone with access to the Redis would call it
      const q = new Queue(queue, { connection: client(), prefix });
      try {
        return (await q.add(queue, data)).id!;
      } finally {
        await q.close();
      }
    },
    async cleanup() {
      if (!redis) return;
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    },
  },
  (ctx) => {
    it('schedules and unschedules a cron fan-out (a BullMQ job scheduler)', async () => {
      const { jobs } = ctx();
      await jobs.schedule('nightly', '0 3 * * *', {});
      expect(await client().keys(`${prefix}:nightly__tick:repeat*`)).not.toEqual([]);
      await jobs.unschedule('nightly');
    });
  },
);
