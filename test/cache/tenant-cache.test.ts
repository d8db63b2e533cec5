import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { runAs } from '../../src/index.js';
import {
  cachePurgeParticipant,
  MemoryCacheBackend,
  RedisCacheBackend,
  TenantCache,
  type CacheBackend,
} from '../../src/cache/index.js';
import { connect, quitAll, redisReachable } from '../live/support/redis.js';

// Redis is optional for the project: its half of these tests skips, with this reason, when
// nothing answers on TENANTRY_TEST_REDIS_URL (default redis://127.0.0.1:6379).
const reachable = await redisReachable();
const opened: Redis[] = [];
afterAll(() => quitAll(opened));

const backends: Array<[string, boolean, () => CacheBackend]> = [
  ['memory', true, () => new MemoryCacheBackend()],
  [
    'redis',
    reachable,
    // one prefix per run: test files share the machine's Redis
    () => new RedisCacheBackend(connect(opened), { prefix: `tenantry:test:${randomBytes(4).toString('hex')}:` }),
  ],
];

async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn();
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

describe.each(backends)('TenantCache on %s', (_name, available, make) => {
  let backend: CacheBackend;
  let cache: TenantCache;
  const a = randomUUID();
  const b = randomUUID();
  const asA = <T>(fn: () => T) => runAs(a, fn);
  const asB = <T>(fn: () => T) => runAs(b, fn);

  beforeAll(() => {
    if (!available) return;
    backend = make();
    cache = new TenantCache({ backend, ttlMs: 60_000 });
  });

  it.skipIf(!available)('fails closed without a tenant: every call refuses, nothing is written', async () => {
    expect(await codeOf(() => cache.get('k'))).toBe('TENANT_SCOPE_MISSING');
    expect(await codeOf(() => cache.set('k', 1))).toBe('TENANT_SCOPE_MISSING');
    expect(await codeOf(() => cache.delete('k'))).toBe('TENANT_SCOPE_MISSING');
    expect(await codeOf(() => cache.getOrLoad('k', () => 1))).toBe('TENANT_SCOPE_MISSING');
    expect(await codeOf(() => cache.invalidateTenant())).toBe('TENANT_SCOPE_MISSING');
    if (backend.peek) expect(await codeOf(() => cache.peek('k'))).toBe('TENANT_SCOPE_MISSING');
    expect(await asA(() => cache.get('k'))).toBeUndefined();
  });

  it.skipIf(!available)(
    'tenant B can neither read, overwrite nor delete what A stored under the same key',
    async () => {
      await asA(() => cache.set('profile', { name: 'alpha' }));
      expect(await asB(() => cache.get('profile'))).toBeUndefined();
      await asB(() => cache.set('profile', { name: 'beta' }));
      await asB(() => cache.delete('profile'));
      expect(await asA(() => cache.get('profile'))).toEqual({ name: 'alpha' });
      expect(await asB(() => cache.get('profile'))).toBeUndefined();
    },
  );

  it.skipIf(!available)(
    'crafted keys stay inside the current tenant (separators, hash tags, ids, unicode)',
    async () => {
      await asB(() => cache.set('k', 'b-secret'));
      const crafted = [
        `${b}\u00000\u0000s:k`, // the memory backend's layout of B's `k`
        `${b}\u0000`,
        `{${b}}:0:s:k`, // the Redis layout
        `}:0:s:k`,
        `../${b}/k`,
        '*',
        'k\u0000',
        `s:k`,
        'ｋ', // full-width k
        'k\u0301',
        '🔑'.repeat(50),
      ];
      for (const key of crafted) {
        expect(await asA(() => cache.get(key))).toBeUndefined();
        await asA(() => cache.set(key, 'a-overwrite'));
        await asA(() => cache.delete(key));
        await asA(() => cache.set(key, 'a-value'));
      }
      expect(await asB(() => cache.get('k'))).toBe('b-secret');
      for (const key of crafted) expect(await asB(() => cache.get(key))).toBeUndefined();
      for (const key of crafted) expect(await asA(() => cache.get(key))).toBe('a-value');
    },
  );

  it.skipIf(!available)(
    'very long keys: hashed past 200 characters, refused past the limit, never cross tenants',
    async () => {
      const long = 'x'.repeat(4096);
      await asA(() => cache.set(long, 'a-long'));
      expect(await asA(() => cache.get(long))).toBe('a-long');
      expect(await asB(() => cache.get(long))).toBeUndefined();
      // a key that is the hash's own spelling is a different key
      expect(await asA(() => cache.get('x'.repeat(4095)))).toBeUndefined();
      expect(await codeOf(() => asA(() => cache.set('x'.repeat(4097), 1)))).toBe('CACHE_KEY_INVALID');
      expect(await codeOf(() => asA(() => cache.set('', 1)))).toBe('CACHE_KEY_INVALID');
      expect(await codeOf(() => asA(() => cache.set('\uD800lone', 1)))).toBe('CACHE_KEY_INVALID');
      expect(await codeOf(() => asA(() => cache.get(42 as unknown as string)))).toBe('CACHE_KEY_INVALID');
    },
  );

  it.skipIf(!available)('B cannot invalidate A: invalidation bumps only the current tenant', async () => {
    await asA(() => cache.set('plan', 'pro'));
    await asB(() => cache.set('plan', 'free'));
    await asB(() => cache.invalidateTenant());
    expect(await asA(() => cache.get('plan'))).toBe('pro');
    expect(await asB(() => cache.get('plan'))).toBeUndefined();
    await asA(() => cache.invalidateTenant());
    expect(await asA(() => cache.get('plan'))).toBeUndefined();
  });

  it.skipIf(!available)(
    'a load overtaken by an invalidation is not stored (no stale value after a change)',
    async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const slow = asA(() =>
        cache.getOrLoad('setting', async () => {
          await gate;
          return 'old';
        }),
      );
      await new Promise((r) => setTimeout(r, 20));
      await asA(() => cache.invalidateTenant());
      release();
      expect(await slow).toBe('old');
      expect(await asA(() => cache.get('setting'))).toBeUndefined();
      expect(await asA(() => cache.getOrLoad('setting', () => 'new'))).toBe('new');
      expect(await asA(() => cache.get('setting'))).toBe('new');
    },
  );

  it.skipIf(!available)('property: whatever key A writes, B never sees it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary', minLength: 1, maxLength: 300 }), async (key) => {
        await asA(() => cache.set(key, 'a'));
        expect(await asB(() => cache.get(key))).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });

  it.skipIf(!available)("the purge participant removes the tenant's entries only", async () => {
    const c = randomUUID();
    const d = randomUUID();
    await runAs(c, () => cache.set('one', 1));
    await runAs(c, () => cache.set('two', 2));
    await runAs(c, () => cache.invalidateTenant());
    await runAs(c, () => cache.set('three', 3));
    await runAs(d, () => cache.set('one', 'd'));
    const participant = cachePurgeParticipant(backend);
    expect(await participant.plan(c)).toBe(3);
    expect(await participant.purge(c)).toBe(3);
    expect(await participant.plan(c)).toBe(0);
    expect(await runAs(c, () => cache.get('three'))).toBeUndefined();
    expect(await runAs(d, () => cache.get('one'))).toBe('d');
    expect(await participant.plan(d)).toBe(1);
    expect(await codeOf(() => participant.purge('not-a-tenant'))).toBe('INVALID_TENANT_ID');
  });
});

describe.skipIf(!reachable)('RedisCacheBackend keys on the server', () => {
  it("every key of a tenant starts with the prefix and that tenant's hash tag", async () => {
    const redis = connect(opened);
    const prefix = `tenantry:test:${randomBytes(4).toString('hex')}:`;
    const cache = new TenantCache({ backend: new RedisCacheBackend(redis, { prefix }) });
    const a = randomUUID();
    await runAs(a, () => cache.set(`{${randomUUID()}}:0:s:x`, 1));
    await runAs(a, () => cache.invalidateTenant());
    const keys = await redis.keys(`${prefix}*`);
    expect(keys.length).toBe(2);
    for (const key of keys) expect(key.startsWith(`${prefix}{${a}}:`)).toBe(true);
    expect(await redis.pttl(keys.find((k) => !k.endsWith(':gen'))!)).toBeGreaterThan(0);
  });
});
