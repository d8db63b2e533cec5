import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { RateLimitedError, SignInThrottle } from '../../src/limits/index.js';
import { connect, quitAll, redisReachable } from '../live/support/redis.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { closeAll, instance, tenant, type Instance } from './limits-harness.js';

// Redis is optional for the project (`npm test` must pass without it): these tests skip, with
// this reason, when nothing answers on TENANTRY_TEST_REDIS_URL (default redis://127.0.0.1:6379).
const reachable = await redisReachable();

describe.skipIf(!reachable)('tenantry/limits on Redis', () => {
  let db: TestDatabase;
  const opened: Instance[] = [];
  const clients: Redis[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await closeAll(opened);
    await quitAll(clients);
    await db?.drop();
  });

  it('at most 1 % over-admission across 4 instances (4 Redis connections) hammering one store: exactly the limit', async () => {
    const storeErrors: unknown[] = [];
    const instances = await Promise.all(
      [1, 2, 3, 4].map(() =>
        instance(db, opened, {
          store: { redis: connect(clients) },
          storeTimeoutMs: 10_000,
          onStoreError: (e) => storeErrors.push(e.error),
        }),
      ),
    );
    const t = await tenant(db, { plan: 'pro', limits: { api: 300 } });
    let admitted = 0;
    let refused = 0;
    await Promise.all(
      instances.map(async ({ limits }) => {
        for (let round = 0; round < 25; round++) {
          const results = await Promise.allSettled(Array.from({ length: 8 }, () => limits.consume(t, 'api')));
          for (const r of results) {
            if (r.status === 'fulfilled' && r.value.storeDown) throw storeErrors[0] as Error;
            if (r.status === 'fulfilled') admitted++;
            else if (r.reason instanceof RateLimitedError) refused++;
            else throw r.reason;
          }
        }
      }),
    );
    expect(admitted + refused).toBe(800);
    expect(admitted).toBeLessThanOrEqual(303);
    expect(admitted).toBe(300);
  });

  it('a Redis that is gone: open admits, closed refuses with 429, within the timeout', async () => {
    const gone = connect(clients);
    await gone.quit();
    const { limits } = await instance(db, opened, { store: { redis: gone }, storeTimeoutMs: 200 });
    const t = await tenant(db);
    await expect(limits.consume(t, 'api')).resolves.toMatchObject({ storeDown: true });
    await expect(limits.consume(t, 'export')).rejects.toMatchObject({
      code: 'RATE_LIMITED',
      details: { storeDown: true },
    });
    const throttle = new SignInThrottle({ store: { redis: gone }, storeTimeoutMs: 200 });
    await expect(throttle.attempt({ account: 'a@example.com', address: '10.0.0.1' })).rejects.toMatchObject({
      code: 'RATE_LIMITED',
    });
  });

  it('start() waits for a client made just before it: the first requests are counted, not admitted as store-down', async () => {
    const fresh = connect(clients); // still connecting
    expect(fresh.status).not.toBe('ready');
    const storeErrors: unknown[] = [];
    const { limits } = await instance(db, opened, {
      store: { redis: fresh },
      onStoreError: (e) => storeErrors.push(e.error),
    });
    expect(fresh.status).toBe('ready');
    const t = await tenant(db, { limits: { api: 2 } });
    await expect(limits.consume(t, 'api')).resolves.toMatchObject({ storeDown: false, remaining: 1 });
    await expect(limits.consume(t, 'api')).resolves.toMatchObject({ storeDown: false, remaining: 0 });
    await expect(limits.consume(t, 'api')).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(storeErrors).toEqual([]);
  });
});
