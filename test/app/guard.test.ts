import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/index.js';
import { createAppFixture, nobody, PASSWORD, type AppFixture } from './support/app-fixture.js';

// The reference server is guard-clean: every statement it sends (successes and refusals alike)
// names its tenant, so the query guard in `enforce` mode refuses nothing and records nothing. This
// file drives sign-in, /me and the recording routes step by step; the routes other app test files
// drive are checked by createAppFixture's close(), which fails a file whose server sent a flagged
// statement.
let f: AppFixture;

beforeAll(async () => {
  f = await createAppFixture({ guard: 'enforce' });
});
afterAll(() => f?.close());

describe('the reference server under the query guard (enforce)', () => {
  it('drives sign-in, /me and every recording route without a refusal or a recorded statement', async () => {
    expect(f.guard.mode).toBe('enforce');
    // read from the registry: every tenant table the migrations made (others may follow)
    expect(f.guard.tables.tables.map((t) => `${t.schema}.${t.name}`)).toEqual(
      expect.arrayContaining(['public.members', 'public.recordings']),
    );

    const signIn = await f.call('POST', '/auth/sign-in', {
      payload: { email: f.users.bob.email, password: PASSWORD, tenant: f.a.slug },
    });
    expect(signIn.statusCode).toBe(200);
    const bob = signIn.json().token as string;
    const wrong = await f.call('POST', '/auth/sign-in', {
      payload: { email: f.users.bob.email, password: 'not the password', tenant: f.a.slug },
    });
    expect(wrong.statusCode).toBe(401);

    expect((await f.call('GET', '/me', { token: bob })).statusCode).toBe(200);
    const created = await f.call('POST', '/recordings', {
      token: bob,
      payload: { title: 'Guarded', durationSeconds: 60, mimeType: 'audio/ogg' },
    });
    expect(created.statusCode).toBe(201);
    const id = created.json().id as string;
    await f.insertRecordings(f.a, f.users.bob, 3);

    const first = await f.call('GET', '/recordings?limit=2', { token: bob });
    expect(first.statusCode).toBe(200);
    const cursor = first.json().nextCursor as string;
    expect(cursor).toEqual(expect.any(String));
    const second = await f.call('GET', `/recordings?limit=2&cursor=${cursor}`, { token: bob });
    expect(second.statusCode).toBe(200);
    expect(second.json().items).toHaveLength(2);

    expect((await f.call('GET', `/recordings/${id}`, { token: bob })).statusCode).toBe(200);
    expect(
      (await f.call('PATCH', `/recordings/${id}`, { token: bob, payload: { title: 'Guarded (2)' } })).statusCode,
    ).toBe(200);
    expect((await f.call('DELETE', `/recordings/${id}`, { token: bob })).statusCode).toBe(204);

    // refusals run statements too: another tenant's recording, no membership, no tenant
    const [carols] = await f.insertRecordings(f.b, f.users.carol, 1);
    expect((await f.call('GET', `/recordings/${carols}`, { token: bob })).statusCode).toBe(404);
    expect((await f.call('PATCH', `/recordings/${carols}`, { token: bob, payload: { title: 'x' } })).statusCode).toBe(
      404,
    );
    expect((await f.call('DELETE', `/recordings/${carols}`, { token: bob })).statusCode).toBe(404);
    expect((await f.call('GET', '/me', { token: await f.token(f.users.bob, f.b) })).statusCode).toBe(403);
    expect((await f.call('GET', '/me', { token: await f.token(f.users.bob, nobody()) })).statusCode).toBe(404);

    const stats = f.guard.stats();
    expect(stats.checked).toBeGreaterThanOrEqual(20);
    expect(stats).toMatchObject({ skipped: 0, unscoped: 0, refused: 0 });
    expect(f.guard.report()).toEqual([]);
  });

  it('is the guard the server really uses, and every app test file checks it', () => {
    // the server's pool carries this guard (an unscoped statement through it would be refused and
    // recorded, and createAppFixture's close() fails any test file whose requests sent one)
    expect(f.serverPool.tenantryGuard).toBe(f.guard);
    expect(f.appPool.tenantryGuard).toBeUndefined();
  });

  it('fails, at close(), an app test file whose server sent a statement the guard flags', async () => {
    const other = await createAppFixture({ guard: 'report' });
    // report mode lets it run (RLS still isolates) and records it
    await runAs(other.a.id, () => other.serverPool.query('select title from recordings'));
    await expect(other.close()).rejects.toThrow(
      'statements the query guard flags: select title from recordings [public.recordings]',
    );
  });
});
