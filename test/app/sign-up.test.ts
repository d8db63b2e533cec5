import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RoutedTenantPool } from '../../src/tiers/routed-tenant-pool.js';
import { TenantRouter } from '../../src/tiers/tenant-router.js';
import { signUpRoutes } from '../../app/signup/sign-up-routes.js';
import { tenantSignUp, type TenantSignUp } from '../../app/signup/tenant-sign-up.js';
import { ROLE_PASSWORD } from '../support/test-database.js';
import { createAppFixture, PASSWORD, type AppFixture } from './support/app-fixture.js';

// POST /sign-up on the reference server: the library's onboarding behind a public route.
let f: AppFixture;
let signUp: TenantSignUp;
let router: TenantRouter;
let data: RoutedTenantPool;
const extra: pg.Pool[] = [];

const post = (payload: unknown) => f.call('POST', '/sign-up', { payload });
const count = async (sql: string, params: unknown[] = []) =>
  Number((await f.db.admin.query<{ n: string }>(`select count(*) as n from (${sql}) x`, params)).rows[0]!.n);

beforeAll(async () => {
  f = await createAppFixture({
    // the route needs the fixture's database: it calls through a holder filled in below
    configure: (app) => signUpRoutes(app, { signUp: { signUp: (input) => signUp.signUp(input), end: async () => {} } }),
  });
  const routes = new pg.Pool({ connectionString: f.db.routerUrl, max: 2 });
  extra.push(routes);
  router = new TenantRouter({ pool: routes });
  await router.start();
  data = new RoutedTenantPool({ router, clusters: { home: f.db.appUrl }, contextSecret: f.db.contextSecret });
  const catalog = new pg.Pool({ connectionString: f.db.ownerUrl, max: 2 });
  extra.push(catalog);
  signUp = tenantSignUp({
    catalog,
    clusters: { home: { ownerUrl: f.db.ownerUrl, appUrl: f.db.appUrl, adminUrl: f.db.adminUrl } },
    install: {
      appRole: f.db.appRole,
      ownerRole: f.db.ownerRole,
      appPassword: ROLE_PASSWORD,
      ownerPassword: ROLE_PASSWORD,
      routerRole: f.db.routerRole,
      routerPassword: ROLE_PASSWORD,
      contextSecret: f.db.contextSecret,
    },
    appPool: f.serverPool,
    dataPool: data,
  });
});

afterAll(async () => {
  await signUp?.end();
  await data?.end();
  await router?.close();
  await Promise.all(extra.map((p) => p.end()));
  await f?.close();
});

describe('POST /sign-up', () => {
  it('creates the tenant and invites its owner, who joins with the invitation and signs in', async () => {
    const res = await post({ slug: 'newco', name: 'NewCo', email: 'Founder@NewCo.test' });
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json();
    expect(body).toMatchObject({
      tenant: { slug: 'newco', name: 'NewCo', tier: 'shared' },
      owner: { email: 'founder@newco.test', invitation: 'sent' },
    });
    expect(body.code).toMatch(/^[A-Za-z0-9_-]{22}$/);
    // delivered to the outbox, once; the tenant's defaults seeded
    expect(
      await count(`select from app_private.outbox where recipient = 'founder@newco.test' and template = 'invitation'`),
    ).toBe(1);
    expect(await count('select from tenant_event_streams where tenant_id = $1', [body.tenant.id])).toBe(1);
    // the owner proves the address (confirmation from the outbox) and joins as owner
    const first = await f.call('POST', '/invitations/accept', {
      payload: { code: body.code, email: 'founder@newco.test', password: PASSWORD },
    });
    expect(first.statusCode).toBe(202);
    const { rows } = await f.db.admin.query<{ confirmation: string }>(
      `select data->>'confirmation' as confirmation from app_private.outbox where recipient = 'founder@newco.test' and template = 'address_confirmation'`,
    );
    const joined = await f.call('POST', '/invitations/accept', {
      payload: {
        code: body.code,
        email: 'founder@newco.test',
        password: PASSWORD,
        confirmation: rows[0]!.confirmation,
      },
    });
    expect(joined.statusCode, joined.body).toBe(201);
    const members = await f.call('GET', '/members', { token: joined.json().token });
    expect(members.json().items).toEqual([expect.objectContaining({ email: 'founder@newco.test', role: 'owner' })]);
    // from the other side: alpha's people see nothing of it, and it sees nothing of alpha
    const alice = await f.token(f.users.alice, f.a);
    expect(
      (await f.call('GET', '/members', { token: alice })).json().items.map((m: { email: string }) => m.email),
    ).not.toContain('founder@newco.test');
    expect((await f.call('GET', '/recordings', { token: joined.json().token })).json().items).toEqual([]);
  });

  it('puts a business sign-up in its own schema', async () => {
    const res = await post({ slug: 'bizco', name: 'BizCo', email: 'owner@bizco.test', plan: 'business' });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().tenant).toMatchObject({ slug: 'bizco', tier: 'schema' });
    expect(await count('select from t_bizco.tenant_event_streams')).toBe(1);
  });

  it('answers 409 for a taken slug, changing nothing', async () => {
    const before = await count('select from tenantry.tenants');
    const outbox = await count('select from app_private.outbox');
    for (const payload of [
      { slug: 'newco', name: 'NewCo', email: 'founder@newco.test' },
      { slug: 'newco', name: 'Other', email: 'x@other.test' },
      { slug: f.a.slug, name: 'Alpha', email: 'x@alpha.test' },
    ]) {
      const res = await post(payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(409);
      expect(res.json().error.code).toBe('TENANT_SLUG_TAKEN');
    }
    expect(await count('select from tenantry.tenants')).toBe(before);
    expect(await count('select from app_private.outbox')).toBe(outbox);
  });

  it('refuses bad input with 400 and a field, creating nothing', async () => {
    const before = await count('select from tenantry.tenants');
    for (const payload of [
      {},
      { slug: 'Bad Slug', name: 'x', email: 'a@b.test' },
      { slug: 'ok-co', name: '', email: 'a@b.test' },
      { slug: 'ok-co', name: 'x'.repeat(201), email: 'a@b.test' },
      { slug: 'ok-co', name: 'Ok', email: 'not-an-email' },
      { slug: 'ok-co', name: 'Ok', email: 'a@b.test', plan: 'enterprise' },
      { slug: 'ok-co', name: 'Ok', email: 'a@b.test', owner: 'me' },
      [1, 2],
      { slug: 'ok-co', name: 'Ok\u0000', email: 'a@b.test' },
      // host names that name no tenant, punycode look-alikes, and a slug too long for its own schema
      ...['www', 'api', 'admin', 'staff', 'xn--cme-fla', 'a'.repeat(49)].map((slug) => ({
        slug,
        name: 'Squatter',
        email: 'a@b.test',
        plan: 'business',
      })),
    ]) {
      const res = await post(payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.code).toMatch(/^[A-Z_]+$/);
    }
    expect(await count('select from tenantry.tenants')).toBe(before);
  });
});
