import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { SignInThrottle, TenantRateLimits } from 'tenantry/limits';
import { createAppFixture, PASSWORD, type AppFixture } from './support/app-fixture.js';

// small numbers, so the tests reach them: 5 API requests a minute on free, 50 on business;
// sign-in: 5 attempts per account, 20 per address, per 15 minutes
let f: AppFixture;
let pool: pg.Pool;
let limits: TenantRateLimits;

beforeAll(async () => {
  f = await createAppFixture({
    limits: async (db) => {
      pool = new pg.Pool({ connectionString: db.ownerUrl, max: 4 });
      limits = new TenantRateLimits({
        store: { postgres: pool },
        catalog: pool,
        listen: { connectionString: db.ownerUrl },
        limits: { api: { durationSeconds: 60 }, export: { durationSeconds: 3600, onStoreDown: 'closed' } },
        plans: { free: { api: 5, export: 1 }, business: { api: 50, export: 10 } },
        defaultPlan: 'free',
        // a loaded test machine must not turn these tests into fail-open ones (tested in test/limits)
        storeTimeoutMs: 10_000,
      });
      await limits.start();
      const throttle = (name: string) =>
        new SignInThrottle({
          store: { postgres: pool },
          name,
          perAccount: { points: 5, durationSeconds: 900 },
          perAddress: { points: 20, durationSeconds: 900 },
          storeTimeoutMs: 10_000,
        });
      return { api: limits, signIn: throttle('sign-in'), staffSignIn: throttle('staff-sign-in') };
    },
  });
});
afterAll(async () => {
  await f?.app.close();
  await limits?.close();
  await pool?.end();
  await f?.close();
});

const signIn = (body: object, remoteAddress = '203.0.113.1', url = '/auth/sign-in') =>
  f.app.inject({ method: 'POST', url, payload: body, remoteAddress });

describe('sign-in throttles (brute force)', () => {
  it('an account under attack: 401 for each wrong guess up to the limit, then 429 even with the right password', async () => {
    const email = f.users.bob.email;
    for (let i = 0; i < 5; i++)
      expect((await signIn({ email, password: `guess-${i}`, tenant: 'alpha' }, '203.0.113.10')).statusCode).toBe(401);
    const refused = await signIn({ email, password: PASSWORD, tenant: 'alpha' }, '203.0.113.11');
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ error: { code: 'RATE_LIMITED' } });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(900);
    // nothing about the account or address in the answer
    expect(refused.body).not.toContain(email);
    expect(refused.body).not.toContain('203.0.113');
    // another account is not affected (from the other side), nor is the same one by another name's case
    expect((await signIn({ email: f.users.alice.email, password: PASSWORD, tenant: 'alpha' })).statusCode).toBe(200);
    expect(
      (await signIn({ email: email.toUpperCase(), password: PASSWORD, tenant: 'alpha' }, '203.0.113.12')).statusCode,
    ).toBe(429);
  });

  it('parallel guesses cannot slip between check and count: at most the limit reach the password check', async () => {
    const email = f.users.carol.email;
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        signIn({ email, password: `guess-${i}`, tenant: 'bravo' }, `198.51.100.${i}`),
      ),
    );
    const statuses = answers.map((a) => a.statusCode);
    expect(statuses.filter((s) => s === 401)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(25);
  });

  it('an address spraying many accounts is throttled per address; a success clears its account and is not held against the address', async () => {
    const address = '192.0.2.7';
    // a success resets the account's count (sam signs in with typos now and then)
    for (let i = 0; i < 4; i++)
      expect((await signIn({ email: f.users.sam.email, password: 'typo', tenant: 'alpha' }, address)).statusCode).toBe(
        401,
      );
    expect((await signIn({ email: f.users.sam.email, password: PASSWORD, tenant: 'alpha' }, address)).statusCode).toBe(
      200,
    );
    expect((await signIn({ email: f.users.sam.email, password: 'typo', tenant: 'alpha' }, address)).statusCode).toBe(
      401,
    );
    // 6 attempts so far from this address, but the success gave its point back: 5 counted; 15 more
    // accounts (unknown ones) reach 20
    for (let i = 0; i < 15; i++)
      expect(
        (await signIn({ email: `nobody${i}@example.test`, password: 'x', tenant: 'alpha' }, address)).statusCode,
      ).toBe(401);
    const refused = await signIn({ email: 'another@example.test', password: 'x', tenant: 'alpha' }, address);
    expect(refused.statusCode).toBe(429);
    // the same account from another address goes on
    expect(
      (await signIn({ email: 'another@example.test', password: 'x', tenant: 'alpha' }, '192.0.2.8')).statusCode,
    ).toBe(401);
  });

  it('staff sign-in is throttled per account too', async () => {
    const email = f.staff.email;
    for (let i = 0; i < 5; i++)
      expect((await signIn({ email, password: `guess-${i}` }, '203.0.113.50', '/staff/sign-in')).statusCode).toBe(401);
    const refused = await signIn({ email, password: PASSWORD }, '203.0.113.51', '/staff/sign-in');
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBeDefined();
    // members' sign-in counts apart from staff's
    expect((await signIn({ email, password: 'x', tenant: 'alpha' }, '203.0.113.52')).statusCode).toBe(401);
  });
});

describe('per-tenant API limits', () => {
  it('answers 429 RATE_LIMITED with Retry-After past the plan’s points; the other tenant is untouched', async () => {
    const alice = await f.token(f.users.alice, f.a);
    const carol = await f.token(f.users.carol, f.b);
    const first = await f.call('GET', '/me', { token: alice });
    expect(first.statusCode).toBe(200);
    expect(first.headers['ratelimit-limit']).toBe('5');
    expect(first.headers['ratelimit-remaining']).toBe('4');
    for (let i = 0; i < 4; i++) expect((await f.call('GET', '/me', { token: alice })).statusCode).toBe(200);
    const refused = await f.call('GET', '/me', { token: alice });
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toEqual({ error: { code: 'RATE_LIMITED', message: expect.stringContaining('api limit') } });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // tenant B from its side: its own count, all its points left
    const other = await f.call('GET', '/me', { token: carol });
    expect(other.statusCode).toBe(200);
    expect(other.headers['ratelimit-remaining']).toBe('4');
    // a plan change lifts the limit at once (the listener hears the commit)
    await limits.setPlan(f.a.id, 'business');
    const lifted = await f.call('GET', '/me', { token: alice });
    expect(lifted.statusCode).toBe(200);
    expect(lifted.headers['ratelimit-limit']).toBe('50');
  });

  it('a limit of 0 points is a block: 403 LIMIT_NOT_IN_PLAN without Retry-After; the other tenant is untouched', async () => {
    const alice = await f.token(f.users.alice, f.a);
    const carol = await f.token(f.users.carol, f.b);
    const carolBefore = await limits.limitsOf(f.b.id);
    await limits.setOverride(f.a.id, 'api', 0);
    try {
      const blocked = await f.call('GET', '/me', { token: alice });
      expect(blocked.statusCode).toBe(403);
      expect(blocked.json()).toEqual({
        error: { code: 'LIMIT_NOT_IN_PLAN', message: expect.stringContaining('api limit') },
      });
      expect(blocked.headers['retry-after']).toBeUndefined();
      // tenant B from its side: still admitted, its limits unchanged
      expect((await f.call('GET', '/me', { token: carol })).statusCode).toBe(200);
      expect(await limits.limitsOf(f.b.id)).toEqual(carolBefore);
    } finally {
      await limits.setOverride(f.a.id, 'api', null);
    }
    expect((await f.call('GET', '/me', { token: alice })).statusCode).toBe(200);
  });

  it('a request without valid credentials is refused by the resolver before it counts', async () => {
    const before = await limits.limitsOf(f.b.id);
    const res = await f.call('GET', '/me', { token: 'not-a-token' });
    expect(res.statusCode).toBe(401);
    expect(await limits.limitsOf(f.b.id)).toEqual(before);
  });
});
