// Security finding (try-out 1, medium): behind a proxy the server does not trust, every user has
// the proxy's address, and ~100 bad sign-ins used to lock everyone out for 15 minutes. Failures
// now count per account AND address, with a much higher ceiling per address that successful
// sign-ins do not use up; an X-Forwarded-For the address was not read from warns once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { RateLimitedError, SignInThrottle } from '../../src/limits/index.js';
import { addressKey } from '../../src/limits/sign-in-throttle.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

const PROXY = '10.0.0.2'; // the one address every user has behind the untrusted proxy

describe('SignInThrottle behind one shared address', () => {
  let db: TestDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = new pg.Pool({ connectionString: db.ownerUrl, max: 4 });
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  const refusal = (p: Promise<unknown>) => p.then(() => undefined).catch((e: unknown) => e);

  it('an attacker’s 120 failures lock the accounts it guessed at, never another account at the same address', async () => {
    // the defaults: 10 per account and address, 50 per account, 500 per address (15 minutes)
    const throttle = new SignInThrottle({ store: { postgres: pool }, name: 'shared-a', storeTimeoutMs: 10_000 });
    const victims = Array.from({ length: 12 }, (_, i) => `victim${i}@example.test`);
    let refused = 0;
    for (const account of victims)
      for (let i = 0; i < 11; i++) {
        const outcome = await refusal(throttle.attempt({ account, address: PROXY }));
        if (outcome instanceof RateLimitedError) refused++;
      }
    // 10 failures per victim were let through to the password check (120 in all: the old limit
    // of 100 per address would have locked the whole address), the 11th of each refused
    expect(refused).toBe(12);
    // a victim is locked at that address: the account-and-address count, reported as the account
    const locked = await refusal(throttle.attempt({ account: victims[0]!, address: PROXY }));
    expect(locked).toBeInstanceOf(RateLimitedError);
    expect(locked).toMatchObject({ details: { scope: 'account' } });
    // from the other side: another user behind the same proxy signs in as if nothing happened
    await expect(throttle.attempt({ account: 'alice@example.test', address: PROXY })).resolves.toBeUndefined();
    await throttle.succeeded({ account: 'alice@example.test', address: PROXY });
    // and the victim from another address is not locked either (its count there is its own)
    await expect(throttle.attempt({ account: victims[0]!, address: '198.51.100.9' })).resolves.toBeUndefined();
  });

  it('guessing one account from many addresses meets the per-account ceiling', async () => {
    const throttle = new SignInThrottle({
      store: { postgres: pool },
      name: 'shared-b',
      perAccount: { points: 15, durationSeconds: 900 },
      storeTimeoutMs: 10_000,
    });
    for (let i = 0; i < 15; i++) await throttle.attempt({ account: 'bob@example.test', address: `192.0.2.${i}` });
    const refused = await refusal(throttle.attempt({ account: 'bob@example.test', address: '192.0.2.200' }));
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', details: { scope: 'account' } });
  });

  it('the per-address ceiling stops spraying, and the users who sign in do not use it up', async () => {
    const throttle = new SignInThrottle({
      store: { postgres: pool },
      name: 'shared-c',
      perAddress: { points: 30, durationSeconds: 900 },
      storeTimeoutMs: 10_000,
    });
    // 60 users sign in successfully through the proxy: each success gives its point back
    for (let i = 0; i < 60; i++) {
      const attempt = { account: `user${i}@example.test`, address: PROXY };
      await throttle.attempt(attempt);
      await throttle.succeeded(attempt);
    }
    // a spray of one guess per account: 30 failures pass, the 31st is refused for the address
    for (let i = 0; i < 30; i++) await throttle.attempt({ account: `spray${i}@example.test`, address: PROXY });
    const refused = await refusal(throttle.attempt({ account: 'spray-last@example.test', address: PROXY }));
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', details: { scope: 'address' } });
    // another address is not affected
    await expect(throttle.attempt({ account: 'spray-last@example.test', address: '203.0.113.4' })).resolves.toBe(
      undefined,
    );
  });

  it('an IPv6 client counts under its /64: rotating addresses inside it gives no fresh budget (try-out 12)', async () => {
    const throttle = new SignInThrottle({
      store: { postgres: pool },
      name: 'shared-v6',
      perAddress: { points: 5, durationSeconds: 900 },
      storeTimeoutMs: 10_000,
    });
    for (let i = 1; i <= 5; i++)
      await throttle.attempt({ account: `v6-${i}@example.test`, address: `2001:db8:0:7::${i}` });
    const refused = await refusal(throttle.attempt({ account: 'v6-x@example.test', address: '2001:db8:0:7:ffff::9' }));
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', details: { scope: 'address' } });
    // the next /64 is another client
    await expect(throttle.attempt({ account: 'v6-x@example.test', address: '2001:db8:0:8::1' })).resolves.toBe(
      undefined,
    );
    expect(addressKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('2001:0DB8:0000:0000:1::'.toLowerCase())).toBe('2001:db8:0:0::/64');
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7');
  });

  it('X-Forwarded-For arriving while the address was not read from it warns once; nothing is written about it', async () => {
    const warnings: unknown[] = [];
    const throttle = new SignInThrottle({
      store: { postgres: pool },
      name: 'shared-d',
      storeTimeoutMs: 10_000,
      onUntrustedProxy: (e) => warnings.push(e),
    });
    await throttle.attempt({ account: 'x@example.test', address: PROXY });
    expect(warnings).toEqual([]);
    await throttle.attempt({ account: 'x@example.test', address: PROXY, forwardedFor: '' });
    expect(warnings).toEqual([]);
    for (let i = 0; i < 3; i++)
      await throttle.attempt({ account: 'x@example.test', address: PROXY, forwardedFor: `203.0.113.${i}` });
    await throttle.attempt({ account: 'y@example.test', address: PROXY, forwardedFor: ['203.0.113.7', '10.0.0.1'] });
    expect(warnings).toEqual([{ throttle: 'shared-d' }]);
    // keys are hashes: no address or e-mail in the store
    const { rows } = await db.admin.query<{ key: string }>('select key from tenantry_private.rate_limits');
    const keys = rows.map((r) => r.key).join(' ');
    expect(keys).not.toContain('203.0.113');
    expect(keys).not.toContain('10.0.0');
    expect(keys).not.toContain('example.test');
  });

  it('refuses bad windows at construction', () => {
    expect(
      () => new SignInThrottle({ store: { postgres: pool }, perAccountAddress: { points: 0, durationSeconds: 60 } }),
    ).toThrow(/perAccountAddress.points/);
  });
});
