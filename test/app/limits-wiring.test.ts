// The reference server's own rate-limit configuration (app/limits/limits-from-env.ts, as npm start
// builds it): the export limit on the usage export, the onboarding limit on POST /sign-up, the
// invitation-accept throttle, a tenant on a plan the server does not know (served with the
// default plan, a warning, no crash), and the one-time warning for X-Forwarded-For without
// trustProxy.
import pg from 'pg';
import { TenantMetrics } from 'tenantry/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../app/logger.js';
import { limitsFromEnv, SIGN_UP_THROTTLE, type ServerLimits } from '../../app/limits/limits-from-env.js';
import { PLANS } from '../../app/plans.js';
import type { SignUpInput, TenantSignUp } from '../../app/signup/tenant-sign-up.js';
import { createAppFixture, type AppFixture } from './support/app-fixture.js';

let f: AppFixture;
let pool: pg.Pool;
let limits: ServerLimits;
const lines: Array<Record<string, unknown>> = [];
const signedUp: SignUpInput[] = [];

// the onboarding itself is tested in sign-up.test.ts: here only whether a request reaches it
const signUp: TenantSignUp = {
  async signUp(input) {
    signedUp.push(input);
    return {
      outcome: 'onboarded',
      tenant: { id: '00000000-0000-4000-8000-000000000000', slug: input.slug, name: input.name, tier: 'shared' },
    };
  },
  end: async () => undefined,
};

beforeAll(async () => {
  const logger = createLogger({
    level: 'info',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  f = await createAppFixture({
    logger,
    server: { signUp },
    limits: async (db) => {
      pool = new pg.Pool({ connectionString: db.ownerUrl, max: 4 });
      // a tenant on a plan this server does not know (settings used to say `pro`): the start goes on
      await db.owner.query(`update tenantry.tenants set settings = settings || '{"plan": "pro"}' where slug = 'bravo'`);
      limits = await limitsFromEnv(pool, db.ownerUrl, logger);
      return limits;
    },
  });
});
afterAll(async () => {
  await f?.app.close();
  await limits?.close();
  await pool?.end();
  await f?.close();
});

const warnings = (text: string) => lines.filter((l) => l.level === 40 && String(l.msg).includes(text));

describe('plans', () => {
  it('a tenant on an unknown plan: the server started, warned once naming the plan, and serves it with the default plan', async () => {
    expect(warnings('plans this server does not know')).toHaveLength(1);
    expect(warnings('plans this server does not know')[0]).toMatchObject({
      plans: [{ plan: 'pro', tenants: 1 }],
      defaultPlan: 'free',
    });
    const carol = await f.token(f.users.carol, f.b);
    for (let i = 0; i < 3; i++) {
      const res = await f.call('GET', '/me', { token: carol });
      expect(res.statusCode).toBe(200);
      expect(res.headers['ratelimit-limit']).toBe(String(PLANS.free.limits.api));
    }
    // reported once for that tenant, not on every request
    expect(warnings('tenant rate limit settings')).toHaveLength(1);
    expect(warnings('tenant rate limit settings')[0]).toMatchObject({ tenant_id: f.b.id });
  });
});

describe('the export limit on GET /usage/events', () => {
  it('admits the plan’s exports an hour, then 429 with Retry-After; the other tenant’s exports are its own', async () => {
    const alice = await f.token(f.users.alice, f.a);
    const url = '/usage/events?from=2026-01-01&to=2026-01-31';
    for (let i = 0; i < PLANS.free.limits.export; i++) {
      const res = await f.call('GET', url, { token: alice });
      expect(res.statusCode).toBe(200);
      // the export limit's headers, not the api limit's
      expect(res.headers['ratelimit-limit']).toBe(String(PLANS.free.limits.export));
      expect(res.headers['ratelimit-remaining']).toBe(String(PLANS.free.limits.export - i - 1));
    }
    const refused = await f.call('GET', url, { token: alice });
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['ratelimit-limit']).toBe(String(PLANS.free.limits.export));
    expect(refused.headers['ratelimit-remaining']).toBe('0');
    expect(refused.headers['ratelimit-reset']).toBe(refused.headers['retry-after']);
    expect(refused.json()).toMatchObject({
      error: { code: 'RATE_LIMITED', message: expect.stringContaining('export') },
    });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(60);
    // a bad request does not count (and is still a 400, not a 429 in disguise)
    expect((await f.call('GET', '/usage/events?from=x&to=y', { token: alice })).statusCode).toBe(400);
    // from the other side: bravo's exports are untouched
    const carol = await f.token(f.users.carol, f.b);
    expect((await f.call('GET', url, { token: carol })).statusCode).toBe(200);
    // the usage report is not an export: still served to alice
    expect((await f.call('GET', '/usage?from=2026-01-01&to=2026-01-31', { token: alice })).statusCode).toBe(200);
  });

  it('a 429 increments tenantry_tenant_rate_limited_total for that tenant only', async () => {
    const metrics = new TenantMetrics().install();
    try {
      const sample = async (tenant: string) =>
        (await metrics.registry.getSingleMetric('tenantry_tenant_rate_limited_total')!.get()).values
          .filter((v) => v.labels.tenant === tenant)
          .reduce((sum, v) => sum + v.value, 0);
      const alice = await f.token(f.users.alice, f.a);
      // alice's exports are used up by the test above
      const refused = await f.call('GET', '/usage/events?from=2026-01-01&to=2026-01-31', { token: alice });
      expect(refused.statusCode).toBe(429);
      expect(await sample(f.a.id)).toBe(1);
      expect(await sample(f.b.id)).toBe(0);
    } finally {
      metrics.uninstall();
    }
  });
});

describe('POST /sign-up (the onboarding limit)', () => {
  it('past the sign-ups per e-mail and address: 429 before anything is created', async () => {
    const address = '198.51.100.20';
    const post = (slug: string, email: string, remoteAddress = address) =>
      f.app.inject({ method: 'POST', url: '/sign-up', payload: { slug, name: 'Co', email }, remoteAddress });
    for (let i = 0; i < SIGN_UP_THROTTLE.perAccountAddress.points; i++)
      expect((await post(`co-${i}`, 'founder@co.test')).statusCode).toBe(201);
    const before = signedUp.length;
    const refused = await post('co-last', 'founder@co.test');
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ error: { code: 'RATE_LIMITED' } });
    expect(refused.body).not.toContain('founder@co.test');
    expect(signedUp).toHaveLength(before);
    // another founder at another address is not affected
    expect((await post('other-co', 'other@co.test', '198.51.100.21')).statusCode).toBe(201);
    // invalid input is refused as such and not counted
    expect((await post('BAD SLUG', 'founder@co.test', '198.51.100.22')).statusCode).toBe(400);
  });
});

describe('POST /invitations/accept', () => {
  it('is throttled like a sign-in: password guesses through it stop at the limit', async () => {
    const address = '203.0.113.30';
    const accept = () =>
      f.app.inject({
        method: 'POST',
        url: '/invitations/accept',
        payload: { code: 'not-a-code-at-all-0000', email: f.users.bob.email, password: 'guess-password' },
        remoteAddress: address,
      });
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await accept()).statusCode);
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(400)); // CODE_INVALID: checked, not throttled
    expect(statuses[10]).toBe(429);
    // bob's own sign-in door, at another address, is not locked by it
    const signIn = await f.app.inject({
      method: 'POST',
      url: '/auth/sign-in',
      payload: { email: f.users.bob.email, password: 'correct horse battery staple', tenant: 'alpha' },
      remoteAddress: '203.0.113.31',
    });
    expect(signIn.statusCode).toBe(200);
  });
});

describe('X-Forwarded-For while trustProxy is off', () => {
  it('warns once, whichever throttle meets it, and the header never changes the address counted', async () => {
    const signIn = (xff: string) =>
      f.app.inject({
        method: 'POST',
        url: '/auth/sign-in',
        payload: { email: 'nobody@example.test', password: 'x', tenant: 'alpha' },
        headers: { 'x-forwarded-for': xff },
        remoteAddress: '10.9.9.9',
      });
    expect(warnings('X-Forwarded-For arrived but trustProxy is off')).toHaveLength(0);
    for (let i = 0; i < 3; i++) expect((await signIn(`198.51.100.${i}`)).statusCode).toBe(401);
    await f.app.inject({
      method: 'POST',
      url: '/staff/sign-in',
      payload: { email: 'nobody@example.test', password: 'x' },
      headers: { 'x-forwarded-for': '198.51.100.50' },
    });
    expect(warnings('X-Forwarded-For arrived but trustProxy is off')).toHaveLength(1);
    // the warning names no address
    expect(JSON.stringify(warnings('X-Forwarded-For'))).not.toContain('198.51.100');
  });
});
