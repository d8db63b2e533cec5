import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/index.js';
import { createAppFixture, nobody, type AppFixture } from './support/app-fixture.js';

let f: AppFixture;
let tokenA: string;
let bIds: string[];
let aIds: string[];

beforeAll(async () => {
  f = await createAppFixture();
  tokenA = await f.token(f.users.alice, f.a);
  aIds = await f.insertRecordings(f.a, f.users.alice, 5);
  bIds = await f.insertRecordings(f.b, f.users.carol, 5);
});
afterAll(() => f?.close());

describe("tenant A's token against tenant B's recordings", () => {
  it('answers GET, PATCH and DELETE of every B id with 404, exactly like an id that does not exist', async () => {
    const before = await f.recordingsOf(f.b);
    const missing = await f.call('GET', `/recordings/${nobody()}`, { token: tokenA });
    expect(missing.statusCode).toBe(404);
    for (const id of bIds) {
      const answers = [
        await f.call('GET', `/recordings/${id}`, { token: tokenA }),
        await f.call('PATCH', `/recordings/${id}`, { token: tokenA, payload: { title: 'pwned', durationSeconds: 0 } }),
        await f.call('DELETE', `/recordings/${id}`, { token: tokenA }),
      ];
      for (const res of answers) {
        expect(res.statusCode).toBe(404);
        expect(res.body).toBe(missing.body);
      }
    }
    expect(await f.recordingsOf(f.b)).toEqual(before);
  });

  it('never lists a B recording', async () => {
    const res = await f.call('GET', '/recordings?limit=100', { token: tokenA });
    expect(res.statusCode).toBe(200);
    const ids = (res.json() as { items: Array<{ id: string }> }).items.map((r) => r.id);
    expect(ids.sort()).toEqual([...aIds].sort());
    for (const id of bIds) expect(ids).not.toContain(id);
  });

  it('refuses a body that names a tenant (400) and creates nothing in B', async () => {
    const before = await f.recordingsOf(f.b);
    for (const extra of [{ tenantId: f.b.id }, { tenant_id: f.b.id }, { ownerId: f.users.carol.id }]) {
      const res = await f.call('POST', '/recordings', {
        token: tokenA,
        payload: { title: 'sneaky', durationSeconds: 1, mimeType: 'audio/ogg', ...extra },
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'VALIDATION_FAILED', field: Object.keys(extra)[0] });
    }
    expect(await f.recordingsOf(f.b)).toEqual(before);
  });

  it("stores what A creates in A, owned by the caller, whatever B's state", async () => {
    const res = await f.call('POST', '/recordings', {
      token: tokenA,
      payload: { title: 'mine', durationSeconds: 3, mimeType: 'audio/ogg' },
    });
    expect(res.statusCode).toBe(201);
    const { id } = res.json() as { id: string };
    const { rows } = await f.db.admin.query('select tenant_id, owner_id from recordings where id = $1', [id]);
    expect(rows).toEqual([{ tenant_id: f.a.id, owner_id: f.users.alice.id }]);
    const fromB = await f.call('GET', `/recordings/${id}`, { token: await f.token(f.users.carol, f.b) });
    expect(fromB.statusCode).toBe(404);
  });

  it('shows a person of two tenants only the tenant of the token', async () => {
    const samA = await f.call('GET', '/recordings?limit=100', { token: await f.token(f.users.sam, f.a) });
    const samB = await f.call('GET', '/recordings?limit=100', { token: await f.token(f.users.sam, f.b) });
    const idsA = (samA.json() as { items: Array<{ id: string }> }).items.map((r) => r.id);
    const idsB = (samB.json() as { items: Array<{ id: string }> }).items.map((r) => r.id);
    expect(idsB.sort()).toEqual([...bIds].sort());
    for (const id of idsA) expect(bIds).not.toContain(id);
    const meB = await f.call('GET', '/me', { token: await f.token(f.users.sam, f.b) });
    expect(meB.json()).toMatchObject({ role: 'member', tenant: { id: f.b.id, slug: 'bravo' } });
  });
});

describe('the database refuses what the API would never send', () => {
  it('rejects, as the app role in tenant A, writing or moving rows into tenant B', async () => {
    const before = await f.recordingsOf(f.b);
    await expect(
      runAs(f.a.id, () =>
        f.appPool.query(
          `insert into recordings (tenant_id, owner_id, title, duration_seconds, mime_type) values ($1, $2, 'x', 1, 'audio/ogg')`,
          [f.b.id, f.users.carol.id],
        ),
      ),
    ).rejects.toMatchObject({ code: '42501' });
    await expect(
      runAs(f.a.id, () => f.appPool.query('update recordings set tenant_id = $1 where id = $2', [f.b.id, aIds[0]])),
    ).rejects.toMatchObject({ code: '42501' });
    const touched = await runAs(f.a.id, () =>
      f.appPool.query(`update recordings set title = 'x' where id = any($1::uuid[])`, [bIds]),
    );
    expect(touched.rowCount).toBe(0);
    expect(await f.recordingsOf(f.b)).toEqual(before);
  });

  it("refuses an owner of another tenant's member (composite foreign key)", async () => {
    // carol is a member of B only: a recording of A cannot name her as its owner
    await expect(
      runAs(f.a.id, () =>
        f.appPool.query(
          `insert into recordings (owner_id, title, duration_seconds, mime_type) values ($1, 'x', 1, 'audio/ogg')`,
          [f.users.carol.id],
        ),
      ),
    ).rejects.toMatchObject({ code: '23503' });
  });
});
