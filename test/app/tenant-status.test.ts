import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMember, createUser } from '../../app/identity/users.js';
import { createAppFixture, nobody, PASSWORD, tenantRoutes, type AppFixture } from './support/app-fixture.js';

let f: AppFixture;

beforeAll(async () => {
  f = await createAppFixture();
});
afterAll(() => f?.close());

async function expectEveryRoute(token: string, recordingId: string, status: number, code: string): Promise<void> {
  for (const route of tenantRoutes(recordingId)) {
    const res = await f.call(route.method, route.url, { token, payload: route.payload });
    expect(res.statusCode, `${route.method} ${route.url}`).toBe(status);
    expect(res.json().error.code, `${route.method} ${route.url}`).toBe(code);
  }
}

describe('membership', () => {
  it('stops a removed member on the very next request', async () => {
    const id = await createUser(f.db.owner, { email: 'temp@example.test', password: PASSWORD, displayName: 'Temp' });
    await addMember(f.db.owner, f.a.id, id, 'member');
    const token = await f.token({ id, email: 'temp@example.test' }, f.a);
    expect((await f.call('GET', '/me', { token })).statusCode).toBe(200);
    expect((await f.call('GET', '/recordings', { token })).statusCode).toBe(200);

    await f.db.owner.query('delete from members where tenant_id = $1 and user_id = $2', [f.a.id, id]);
    const [recording] = await f.insertRecordings(f.a, f.users.alice, 1);
    const before = await f.recordingsOf(f.a);
    await expectEveryRoute(token, recording!, 403, 'NOT_A_MEMBER');
    expect(await f.recordingsOf(f.a)).toEqual(before);
  });

  it('refuses a token for a user who does not exist', async () => {
    const token = await f.token({ id: nobody(), email: 'ghost@example.test' }, f.a);
    await expectEveryRoute(token, nobody(), 403, 'NOT_A_MEMBER');
  });
});

describe('tenant status', () => {
  it('answers 403 TENANT_SUSPENDED on every route while suspended, and serves again once resumed', async () => {
    const tenant = await f.catalog.create({ slug: 'paused', name: 'Paused' });
    const ref = { id: tenant.id, slug: tenant.slug };
    await addMember(f.db.owner, tenant.id, f.users.bob.id, 'owner');
    const [recording] = await f.insertRecordings(ref, f.users.bob, 2);
    const token = await f.token(f.users.bob, ref);
    expect((await f.call('GET', `/recordings/${recording}`, { token })).statusCode).toBe(200);

    await f.catalog.suspend(tenant.id);
    const before = await f.recordingsOf(ref);
    await expectEveryRoute(token, recording!, 403, 'TENANT_SUSPENDED');
    expect(await f.recordingsOf(ref)).toEqual(before);
    // a non-member learns nothing about the suspension
    await expectEveryRoute(await f.token(f.users.carol, ref), recording!, 403, 'NOT_A_MEMBER');

    await f.catalog.resume(tenant.id);
    expect((await f.call('GET', `/recordings/${recording}`, { token })).statusCode).toBe(200);
  });

  it('answers 404 TENANT_NOT_FOUND on every route once soft-deleted', async () => {
    const tenant = await f.catalog.create({ slug: 'doomed', name: 'Doomed' });
    const ref = { id: tenant.id, slug: tenant.slug };
    await addMember(f.db.owner, tenant.id, f.users.bob.id, 'owner');
    const [recording] = await f.insertRecordings(ref, f.users.bob, 2);
    const token = await f.token(f.users.bob, ref);
    expect((await f.call('GET', '/me', { token })).statusCode).toBe(200);

    await f.catalog.softDelete(tenant.id);
    const before = await f.recordingsOf(ref);
    await expectEveryRoute(token, recording!, 404, 'TENANT_NOT_FOUND');
    expect(await f.recordingsOf(ref)).toEqual(before);
  });

  it('answers 404 TENANT_NOT_FOUND for a token of a tenant that never existed', async () => {
    await expectEveryRoute(await f.token(f.users.alice, nobody()), nobody(), 404, 'TENANT_NOT_FOUND');
  });

  it('leaves other tenants untouched by one tenant being suspended', async () => {
    const tenant = await f.catalog.create({ slug: 'quiet', name: 'Quiet' });
    await addMember(f.db.owner, tenant.id, f.users.alice.id, 'owner');
    await f.catalog.suspend(tenant.id);
    expect((await f.call('GET', '/me', { token: await f.token(f.users.alice, tenant.id) })).statusCode).toBe(403);
    expect((await f.call('GET', '/me', { token: await f.token(f.users.alice, f.a) })).statusCode).toBe(200);
  });
});
