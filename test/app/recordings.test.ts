import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppFixture, nobody, type AppFixture } from './support/app-fixture.js';

let f: AppFixture;
let alice: string;
let bob: string;
let sam: string;

beforeAll(async () => {
  f = await createAppFixture();
  alice = await f.token(f.users.alice, f.a);
  bob = await f.token(f.users.bob, f.a);
  sam = await f.token(f.users.sam, f.a);
});
afterAll(() => f?.close());

interface Page {
  items: Array<{ id: string; createdAt: string }>;
  nextCursor: string | null;
}

describe('recordings CRUD', () => {
  it('creates, reads, updates and deletes a recording', async () => {
    const created = await f.call('POST', '/recordings', {
      token: bob,
      payload: { title: '  Weekly sync ', durationSeconds: 1800, mimeType: 'Audio/MPEG' },
    });
    expect(created.statusCode).toBe(201);
    const recording = created.json();
    expect(recording).toMatchObject({
      ownerId: f.users.bob.id,
      title: 'Weekly sync',
      durationSeconds: 1800,
      mimeType: 'audio/mpeg',
    });
    expect(created.headers.location).toBe(`/recordings/${recording.id}`);
    expect(recording).not.toHaveProperty('tenantId');

    const read = await f.call('GET', `/recordings/${recording.id.toUpperCase()}`, { token: bob });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toEqual(recording);

    const patched = await f.call('PATCH', `/recordings/${recording.id}`, {
      token: bob,
      payload: { title: 'Weekly sync (notes)', durationSeconds: 1700 },
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({
      id: recording.id,
      title: 'Weekly sync (notes)',
      durationSeconds: 1700,
      mimeType: 'audio/mpeg',
      createdAt: recording.createdAt,
    });
    expect(Date.parse(patched.json().updatedAt)).toBeGreaterThanOrEqual(Date.parse(recording.updatedAt));

    const deleted = await f.call('DELETE', `/recordings/${recording.id}`, { token: bob });
    expect(deleted.statusCode).toBe(204);
    expect(deleted.body).toBe('');
    expect((await f.call('GET', `/recordings/${recording.id}`, { token: bob })).statusCode).toBe(404);
    expect((await f.call('DELETE', `/recordings/${recording.id}`, { token: bob })).statusCode).toBe(404);
    const { rows } = await f.db.admin.query('select count(*)::int as n from recordings where id = $1', [recording.id]);
    expect(rows[0].n).toBe(0);
  });

  it('lets a plain member change only their own recordings; owners and admins change any', async () => {
    const [alices] = await f.insertRecordings(f.a, f.users.alice, 1);
    const before = await f.db.admin.query('select * from recordings where id = $1', [alices]);
    const patch = await f.call('PATCH', `/recordings/${alices}`, { token: bob, payload: { title: 'bob was here' } });
    expect(patch.statusCode).toBe(403);
    expect(patch.json().error.code).toBe('FORBIDDEN');
    expect((await f.call('DELETE', `/recordings/${alices}`, { token: bob })).statusCode).toBe(403);
    expect((await f.db.admin.query('select * from recordings where id = $1', [alices])).rows).toEqual(before.rows);

    const [bobs] = await f.insertRecordings(f.a, f.users.bob, 1);
    expect(
      (await f.call('PATCH', `/recordings/${bobs}`, { token: sam, payload: { title: 'edited by an admin' } }))
        .statusCode,
    ).toBe(200);
    expect((await f.call('DELETE', `/recordings/${bobs}`, { token: alice })).statusCode).toBe(204);
    expect((await f.call('DELETE', `/recordings/${alices}`, { token: sam })).statusCode).toBe(204);
  });
});

describe('GET /recordings pagination', () => {
  async function allPages(token: string, limit: number): Promise<{ ids: string[]; pages: number }> {
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const url: string = `/recordings?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const res = await f.call('GET', url, { token });
      expect(res.statusCode).toBe(200);
      const page = res.json() as Page;
      expect(page.items.length).toBeLessThanOrEqual(limit);
      ids.push(...page.items.map((r) => r.id));
      cursor = page.nextCursor;
      pages++;
      expect(pages).toBeLessThan(200);
    } while (cursor);
    return { ids, pages };
  }

  it("returns every row of the tenant exactly once, newest first, and never another tenant's", async () => {
    await f.db.admin.query('delete from recordings');
    // ties on created_at (one statement, one now()) must be broken by id, not skipped or repeated
    const tied = await f.insertRecordings(f.a, f.users.alice, 23, { sameTimestamp: true });
    const spread = await f.insertRecordings(f.a, f.users.bob, 30);
    const other = await f.insertRecordings(f.b, f.users.carol, 40);
    const moreTied = await f.insertRecordings(f.a, f.users.sam, 11, { sameTimestamp: true });
    const expected = await f.db.admin.query<{ id: string }>(
      'select id from recordings where tenant_id = $1 order by created_at desc, id desc',
      [f.a.id],
    );
    expect(expected.rows).toHaveLength(tied.length + spread.length + moreTied.length);

    for (const limit of [1, 7, 20, 64, 100]) {
      const { ids, pages } = await allPages(alice, limit);
      expect(ids).toEqual(expected.rows.map((r) => r.id));
      expect(new Set(ids).size).toBe(ids.length);
      for (const id of other) expect(ids).not.toContain(id);
      expect(pages).toBe(Math.max(1, Math.ceil(ids.length / limit)));
    }
    const { ids: bIds } = await allPages(await f.token(f.users.carol, f.b), 9);
    expect(bIds.sort()).toEqual([...other].sort());
  });

  it('defaults to 20 per page and answers nextCursor null on the last page', async () => {
    const first = (await f.call('GET', '/recordings', { token: alice })).json() as Page;
    expect(first.items).toHaveLength(20);
    expect(first.nextCursor).toEqual(expect.any(String));
    const all = (await f.call('GET', '/recordings?limit=100', { token: alice })).json() as Page;
    expect(all.nextCursor).toBeNull();
  });

  it('does not repeat or skip rows when new rows arrive between pages', async () => {
    const firstPage = (await f.call('GET', '/recordings?limit=10', { token: alice })).json() as Page;
    await f.insertRecordings(f.a, f.users.alice, 3, { prefix: 'late' });
    const seen = firstPage.items.map((r) => r.id);
    let cursor = firstPage.nextCursor;
    while (cursor) {
      const page = (await f.call('GET', `/recordings?limit=10&cursor=${cursor}`, { token: alice })).json() as Page;
      seen.push(...page.items.map((r) => r.id));
      cursor = page.nextCursor;
    }
    const { rows } = await f.db.admin.query<{ id: string }>(
      `select id from recordings where tenant_id = $1 and title not like 'late%' order by created_at desc, id desc`,
      [f.a.id],
    );
    expect(seen).toEqual(rows.map((r) => r.id));
  });

  it('gives nothing of B for a cursor made from a B row', async () => {
    const bPage = (
      await f.call('GET', '/recordings?limit=1', { token: await f.token(f.users.carol, f.b) })
    ).json() as Page;
    const res = await f.call('GET', `/recordings?limit=100&cursor=${bPage.nextCursor}`, { token: alice });
    expect(res.statusCode).toBe(200);
    const { rows } = await f.db.admin.query<{ id: string }>('select id from recordings where tenant_id = $1', [f.b.id]);
    const bIds = new Set(rows.map((r) => r.id));
    for (const item of (res.json() as Page).items) expect(bIds.has(item.id)).toBe(false);
  });
});

describe('400 VALIDATION_FAILED', () => {
  const valid = { title: 'ok', durationSeconds: 10, mimeType: 'audio/ogg' };
  const id = nobody();
  const cases: Array<{
    name: string;
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
    url: string;
    payload?: unknown;
    headers?: Record<string, string>;
    field: string;
  }> = [
    { name: 'limit 0', method: 'GET', url: '/recordings?limit=0', field: 'limit' },
    { name: 'limit 101', method: 'GET', url: '/recordings?limit=101', field: 'limit' },
    { name: 'limit not a number', method: 'GET', url: '/recordings?limit=ten', field: 'limit' },
    { name: 'limit fractional', method: 'GET', url: '/recordings?limit=2.5', field: 'limit' },
    { name: 'limit twice', method: 'GET', url: '/recordings?limit=2&limit=3', field: 'limit' },
    { name: 'cursor garbage', method: 'GET', url: '/recordings?cursor=!!!', field: 'cursor' },
    {
      name: 'cursor of the wrong shape',
      method: 'GET',
      url: `/recordings?cursor=${Buffer.from('12|x').toString('base64url')}`,
      field: 'cursor',
    },
    { name: 'unknown query parameter', method: 'GET', url: '/recordings?tenant=bravo', field: 'tenant' },
    { name: 'malformed id (GET)', method: 'GET', url: '/recordings/123', field: 'id' },
    {
      name: 'malformed id (PATCH)',
      method: 'PATCH',
      url: "/recordings/1'%20or%201=1",
      payload: { title: 'x' },
      field: 'id',
    },
    { name: 'malformed id (DELETE)', method: 'DELETE', url: '/recordings/not-a-uuid', field: 'id' },
    { name: 'no body', method: 'POST', url: '/recordings', field: 'body' },
    {
      name: 'body not JSON',
      method: 'POST',
      url: '/recordings',
      payload: '{"title":',
      headers: { 'content-type': 'application/json' },
      field: 'body',
    },
    { name: 'body an array', method: 'POST', url: '/recordings', payload: [valid], field: 'body' },
    {
      name: 'title missing',
      method: 'POST',
      url: '/recordings',
      payload: { ...valid, title: undefined },
      field: 'title',
    },
    { name: 'title empty', method: 'POST', url: '/recordings', payload: { ...valid, title: '   ' }, field: 'title' },
    {
      name: 'title too long',
      method: 'POST',
      url: '/recordings',
      payload: { ...valid, title: 'x'.repeat(201) },
      field: 'title',
    },
    {
      name: 'negative duration',
      method: 'POST',
      url: '/recordings',
      payload: { ...valid, durationSeconds: -1 },
      field: 'durationSeconds',
    },
    {
      name: 'fractional duration',
      method: 'POST',
      url: '/recordings',
      payload: { ...valid, durationSeconds: 1.5 },
      field: 'durationSeconds',
    },
    {
      name: 'duration as a string',
      method: 'POST',
      url: '/recordings',
      payload: { ...valid, durationSeconds: '10' },
      field: 'durationSeconds',
    },
    {
      name: 'duration beyond int4',
      method: 'POST',
      url: '/recordings',
      payload: { ...valid, durationSeconds: 2 ** 31 },
      field: 'durationSeconds',
    },
    {
      name: 'not audio',
      method: 'POST',
      url: '/recordings',
      payload: { ...valid, mimeType: 'video/mp4' },
      field: 'mimeType',
    },
    { name: 'unknown field', method: 'POST', url: '/recordings', payload: { ...valid, color: 'red' }, field: 'color' },
    { name: 'empty patch', method: 'PATCH', url: `/recordings/${id}`, payload: {}, field: 'body' },
    { name: 'patch with null', method: 'PATCH', url: `/recordings/${id}`, payload: { title: null }, field: 'title' },
    {
      name: 'patch of the owner',
      method: 'PATCH',
      url: `/recordings/${id}`,
      payload: { ownerId: id },
      field: 'ownerId',
    },
  ];

  it.each(cases)('$name', async ({ method, url, payload, headers, field }) => {
    const before = await f.db.admin.query('select count(*)::int as n, max(updated_at) as t from recordings');
    const res = await f.call(method, url, { token: alice, payload, headers });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body).toEqual({ error: { code: 'VALIDATION_FAILED', message: expect.any(String), field } });
    expect((await f.db.admin.query('select count(*)::int as n, max(updated_at) as t from recordings')).rows).toEqual(
      before.rows,
    );
  });

  it('answers 415 for a body that is not JSON at all', async () => {
    const res = await f.call('POST', '/recordings', {
      token: alice,
      payload: 'title=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers 413 for a body over the limit', async () => {
    const res = await f.call('POST', '/recordings', {
      token: alice,
      payload: { title: 'x'.repeat(70_000), durationSeconds: 1, mimeType: 'audio/ogg' },
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('serves HEAD of GET routes inside the tenant scope too', async () => {
    expect((await f.call('HEAD', '/recordings')).statusCode).toBe(401);
    expect((await f.call('HEAD', '/recordings', { token: alice })).statusCode).toBe(200);
    expect((await f.call('HEAD', `/recordings/${nobody()}`, { token: alice })).statusCode).toBe(404);
  });

  it('answers 404 ROUTE_NOT_FOUND for an unknown route', async () => {
    const res = await f.call('GET', '/nope', { token: alice });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('ROUTE_NOT_FOUND');
  });
});
