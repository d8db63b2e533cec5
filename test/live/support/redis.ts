import { Redis } from 'ioredis';

/** Redis of the test run: TENANTRY_TEST_REDIS_URL, else the local default. */
export const REDIS_URL = process.env.TENANTRY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A connection that fails fast instead of retrying (for the reachability probe). */
function probe(): Redis {
  return new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
}

/** Whether Redis answers PING. Redis is optional for the project: its tests skip when it does not. */
export async function redisReachable(): Promise<boolean> {
  const redis = probe();
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

/** A connection for a test; quit them all with `quitAll`. */
export function connect(opened: Redis[]): Redis {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  opened.push(redis);
  return redis;
}

export async function quitAll(opened: Redis[]): Promise<void> {
  await Promise.all(opened.map((r) => r.quit().catch(() => r.disconnect())));
}
