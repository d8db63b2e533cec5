import { randomUUID } from 'node:crypto';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppFixture, PASSWORD, type AppFixture } from './support/app-fixture.js';
import { rawRequest } from './support/raw-http.js';

/*
 * One regression test per finding of the adversarial run (issue 16 item 1): each answered 500,
 * stored something else than was sent, or left the error shape. The fuzz test (fuzz.test.ts)
 * covers the classes; these pin each case with its exact answer.
 */

let f: AppFixture;
let port: number;
let alice: string;

beforeAll(async () => {
  f = await createAppFixture({
    configure(app) {
      // a statement PostgreSQL refuses with a data exception (class 22) that no validation caught
      app.get(
        '/test/data-exception',
        async () => (await f.db.admin.query('select $1::int as n', ['99999999999'])).rows,
      );
    },
  });
  alice = await f.token(f.users.alice, f.a);
  await f.app.listen({ port: 0, host: '127.0.0.1' });
  port = (f.app.server.address() as { port: number }).port;
}, 120_000);
afterAll(() => f?.close());

const NUL = 'a\u0000b';

async function refused(
  method: InjectOptions['method'],
  url: string,
  options: { token?: string; payload?: unknown; headers?: Record<string, string> },
  expected: { status?: number; code: string; field?: string },
): Promise<{ code: string; message: string; field?: string }> {
  const res = await f.call(method, url, options);
  expect(res.statusCode, `${method} ${url} ${res.body}`).toBe(expected.status ?? 400);
  const { error } = res.json() as { error: { code: string; message: string; field?: string } };
  expect(error.code).toBe(expected.code);
  if (expected.field !== undefined) expect(error.field).toBe(expected.field);
  expect(typeof error.message).toBe('string');
  return error;
}

describe('a NUL character in any text field', () => {
  const recording = { title: 'ok', durationSeconds: 1, mimeType: 'audio/ogg' };

  it('is refused with 400 naming the field, and nothing is written (recordings)', async () => {
    const before = await f.recordingsOf(f.a);
    const error = await refused(
      'POST',
      '/recordings',
      { token: alice, payload: { ...recording, title: NUL } },
      { code: 'VALIDATION_FAILED', field: 'title' },
    );
    expect(error.message).toBe('title must be text without NUL characters or unpaired surrogates');
    await refused(
      'POST',
      '/recordings',
      { token: alice, payload: { ...recording, mimeType: 'audio/ogg\u0000' } },
      { code: 'VALIDATION_FAILED', field: 'mimeType' },
    );
    const [id] = await f.insertRecordings(f.a, f.users.alice, 1);
    await refused(
      'PATCH',
      `/recordings/${id}`,
      { token: alice, payload: { title: NUL } },
      { code: 'VALIDATION_FAILED', field: 'title' },
    );
    // an unpaired surrogate (a JSON \ud800 escape) would be stored as U+FFFD: refused too
    await refused(
      'POST',
      '/recordings',
      { token: alice, payload: { ...recording, title: 'x\ud800y' } },
      { code: 'VALIDATION_FAILED', field: 'title' },
    );
    expect((await f.recordingsOf(f.a)).length).toBe(before.length + 1);
    expect((await f.recordingsOf(f.a)).some((r) => String(r.title).includes('\u0000'))).toBe(false);
  });

  it('is refused in tenant settings: API key name, invitation email, domain', async () => {
    await refused(
      'POST',
      '/api-keys',
      { token: alice, payload: { name: NUL } },
      { code: 'VALIDATION_FAILED', field: 'name' },
    );
    await refused(
      'POST',
      '/invitations',
      { token: alice, payload: { email: `a\u0000@example.test` } },
      { code: 'VALIDATION_FAILED', field: 'email' },
    );
    await refused(
      'POST',
      '/domains',
      { token: alice, payload: { domain: `x\u0000.example` } },
      { code: 'VALIDATION_FAILED', field: 'domain' },
    );
    await refused('DELETE', '/domains/x%00.example', { token: alice }, { code: 'VALIDATION_FAILED', field: 'domain' });
  });

  it('is refused before authentication: sign-in, staff sign-in, invitation accept', async () => {
    const signIn = { email: f.users.alice.email, password: PASSWORD, tenant: 'alpha' };
    for (const [name, value] of [
      ['email', `alice\u0000@example.test`],
      ['password', `${PASSWORD}\u0000`],
      ['tenant', 'alp\u0000ha'],
    ] as const)
      await refused(
        'POST',
        '/auth/sign-in',
        { payload: { ...signIn, [name]: value } },
        { code: 'VALIDATION_FAILED', field: name },
      );
    for (const [name, value] of [
      ['email', `staff\u0000@example.test`],
      ['password', NUL],
    ] as const)
      await refused(
        'POST',
        '/staff/sign-in',
        { payload: { email: f.staff.email, password: PASSWORD, [name]: value } },
        { code: 'VALIDATION_FAILED', field: name },
      );
    const accept = { code: 'A'.repeat(22), email: 'new@example.test', password: PASSWORD, displayName: 'New' };
    for (const [name, value] of [
      ['code', `${'A'.repeat(21)}\u0000`],
      ['email', `new\u0000@example.test`],
      ['password', `${PASSWORD}\u0000`],
      ['displayName', NUL],
    ] as const)
      await refused(
        'POST',
        '/invitations/accept',
        { payload: { ...accept, [name]: value } },
        { code: 'VALIDATION_FAILED', field: name },
      );
  });

  it('is refused in staff reasons', async () => {
    const staff = await f.staffToken();
    const reason = `looking into ticket 42 ${NUL}`;
    await refused(
      'POST',
      '/staff/access',
      { token: staff, payload: { tenant: 'alpha', reason } },
      { code: 'VALIDATION_FAILED', field: 'reason' },
    );
    await refused(
      'POST',
      '/staff/tenants/alpha/summary',
      { token: staff, payload: { reason } },
      { code: 'VALIDATION_FAILED', field: 'reason' },
    );
  });
});

describe('numbers past PostgreSQL ranges', () => {
  const cursor = (text: string) => Buffer.from(text).toString('base64url');

  it('the audit log refuses a `before` past bigint, and takes the largest bigint', async () => {
    const error = await refused(
      'GET',
      '/audit-log?before=9999999999999999999',
      { token: alice },
      { code: 'VALIDATION_FAILED', field: 'before' },
    );
    expect(error.message).toBe('before must be an id from 1 to 9223372036854775807');
    await refused('GET', '/audit-log?before=0', { token: alice }, { code: 'VALIDATION_FAILED', field: 'before' });
    expect((await f.call('GET', '/audit-log?before=9223372036854775807', { token: alice })).statusCode).toBe(200);
  });

  it('the recordings list refuses cursors whose time is past timestamptz', async () => {
    for (const text of [
      `9223372036854775807.${randomUUID()}`,
      `-9223372036854775808.${randomUUID()}`,
      `-99999999999999999.${randomUUID()}`,
    ])
      await refused(
        'GET',
        `/recordings?cursor=${cursor(text)}`,
        { token: alice },
        { code: 'VALIDATION_FAILED', field: 'cursor' },
      );
    expect(
      (await f.call('GET', `/recordings?cursor=${cursor(`1700000000000000.${randomUUID()}`)}`, { token: alice }))
        .statusCode,
    ).toBe(200);
  });

  it('body integers past int4 and query integers that are not digits', async () => {
    await refused(
      'POST',
      '/recordings',
      { token: alice, payload: { title: 'x', durationSeconds: 2 ** 31, mimeType: 'audio/ogg' } },
      { code: 'VALIDATION_FAILED', field: 'durationSeconds' },
    );
    await refused(
      'POST',
      '/staff/access',
      { token: await f.staffToken(), payload: { tenant: 'alpha', reason: 'a long enough reason', minutes: 1e308 } },
      { code: 'VALIDATION_FAILED', field: 'minutes' },
    );
  });
});

describe('validation errors speak the API language', () => {
  it('limit=abc names the field and its range, not zod', async () => {
    for (const limit of ['abc', '2.5', '1e2', '-1', '0', '101', ' 5', '0x10']) {
      const error = await refused(
        'GET',
        `/recordings?limit=${encodeURIComponent(limit)}`,
        { token: alice },
        { code: 'VALIDATION_FAILED', field: 'limit' },
      );
      expect(error.message).toBe('limit must be an integer from 1 to 100');
    }
  });

  it('missing, mistyped and unknown fields', async () => {
    expect(
      (
        await refused(
          'POST',
          '/recordings',
          { token: alice, payload: { title: 'x', mimeType: 'audio/ogg' } },
          { code: 'VALIDATION_FAILED', field: 'durationSeconds' },
        )
      ).message,
    ).toBe('durationSeconds is required');
    expect(
      (
        await refused(
          'POST',
          '/recordings',
          { token: alice, payload: { title: 5, durationSeconds: 1, mimeType: 'audio/ogg' } },
          { code: 'VALIDATION_FAILED', field: 'title' },
        )
      ).message,
    ).toBe('title must be a string');
    expect(
      (
        await refused(
          'PATCH',
          `/members/${f.users.bob.id}`,
          { token: alice, payload: { role: 'king' } },
          { code: 'VALIDATION_FAILED', field: 'role' },
        )
      ).message,
    ).toBe('role must be one of: owner, admin, member');
    expect(
      (
        await refused(
          'POST',
          '/recordings',
          { token: alice, payload: { title: 'x', durationSeconds: 1, mimeType: 'audio/ogg', tenantId: f.b.id } },
          { code: 'VALIDATION_FAILED', field: 'tenantId' },
        )
      ).message,
    ).toBe('tenantId is not a field of the body');
    // an unknown key that is not a plain name is not echoed
    const odd = await refused(
      'POST',
      '/recordings',
      { token: alice, payload: { title: 'x', durationSeconds: 1, mimeType: 'audio/ogg', '<b>§</b>': 1 } },
      { code: 'VALIDATION_FAILED', field: 'body' },
    );
    expect(JSON.stringify(odd)).not.toContain('§');
  });

  it('a token whose sub is not a UUID says why', async () => {
    const token = await f.tokens.issue({ userId: 'alice', tenantId: f.a.id, sessionId: randomUUID() });
    const error = await refused('GET', '/me', { token }, { status: 401, code: 'TOKEN_INVALID' });
    expect(error.message).toBe('The access token is invalid: its sub claim (the user) must be a UUID');
    expect(error.message).not.toContain('alice');
  });
});

describe('query strings', () => {
  it('a parameter the route does not read is 400 VALIDATION_FAILED naming it, on every route (one layer)', async () => {
    for (const [method, url, field] of [
      ['GET', '/me?tenant=bravo', 'tenant'],
      ['HEAD', '/me?tenant=bravo', 'tenant'],
      ['GET', '/recordings?limit=5&tenantId=x', 'tenantId'],
      ['GET', '/audit-log?limit=5&all=1', 'all'],
      ['GET', '/members?x', 'x'],
      ['GET', '/api-keys?include=revoked', 'include'],
    ] as const) {
      const res = await f.call(method, url, { token: alice });
      expect(res.statusCode, `${method} ${url} ${res.body}`).toBe(400);
      if (method === 'GET') {
        expect(res.json().error).toMatchObject({ code: 'VALIDATION_FAILED', field });
        expect(res.json().error.message).toBe(`${field} is not a field of the query string`);
      }
    }
    // a public route too, before anything is done
    await refused(
      'POST',
      '/auth/sign-in?tenant=bravo',
      { payload: { email: f.users.alice.email, password: PASSWORD, tenant: 'alpha' } },
      { code: 'VALIDATION_FAILED', field: 'tenant' },
    );
    // the parameters a route reads still work, and an unknown route stays 404
    expect((await f.call('GET', '/recordings?limit=5', { token: alice })).statusCode).toBe(200);
    expect((await f.call('GET', '/me', { token: alice })).statusCode).toBe(200);
    expect((await f.call('GET', '/no-such-route?x=1', { token: alice })).statusCode).toBe(404);
  });
});

describe('bodies', () => {
  const valid = '{"title":"caf\u00e9","durationSeconds":1,"mimeType":"audio/ogg"}';

  it('invalid UTF-8 in a JSON body is 400, not stored as U+FFFD', async () => {
    const before = (await f.recordingsOf(f.a)).length;
    for (const bad of [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
      const payload = Buffer.concat([
        Buffer.from('{"title":"caf'),
        Buffer.from(bad),
        Buffer.from('","durationSeconds":1,"mimeType":"audio/ogg"}'),
      ]);
      const error = await refused(
        'POST',
        '/recordings',
        { token: alice, payload, headers: { 'content-type': 'application/json' } },
        { code: 'VALIDATION_FAILED', field: 'body' },
      );
      expect(error.message).toBe('The request body is not valid UTF-8');
    }
    expect((await f.recordingsOf(f.a)).length).toBe(before);
    const ok = await f.call('POST', '/recordings', {
      token: alice,
      payload: Buffer.from(valid),
      headers: { 'content-type': 'application/json; charset=UTF-8' },
    });
    expect(ok.statusCode).toBe(201);
    expect(ok.json().title).toBe('caf\u00e9');
  });

  it('a key twice in one object is 400 DUPLICATE_KEY, never "the last one wins"; nothing is written', async () => {
    const json = { 'content-type': 'application/json' };
    const before = await f.recordingsOf(f.a);
    for (const [payload, field] of [
      ['{"title":"first","title":"second","durationSeconds":1,"mimeType":"audio/ogg"}', 'title'],
      // escaped, the same key: JSON.parse reads both as "title"
      ['{"title":"first","\\u0074itle":"second","durationSeconds":1,"mimeType":"audio/ogg"}', 'title'],
      ['{"title":"x","durationSeconds":1,"mimeType":"audio/ogg","meta":{"a":1,"a":2}}', 'meta.a'],
      // a key that is no name of ours is not echoed
      ['{"title":"x","durationSeconds":1,"mimeType":"audio/ogg","<b>x</b>":1,"<b>x</b>":2}', 'body'],
    ] as const) {
      const error = await refused(
        'POST',
        '/recordings',
        { token: alice, payload, headers: json },
        { code: 'DUPLICATE_KEY', field },
      );
      expect(error.message).not.toContain('<b>');
    }
    expect(await f.recordingsOf(f.a)).toEqual(before);

    // a role change smuggled as a second key: refused, the member's role unchanged
    const role = async () =>
      (
        await f.db.admin.query<{ role: string }>(
          'select role from public.members where tenant_id = $1 and user_id = $2',
          [f.a.id, f.users.bob.id],
        )
      ).rows[0]!.role;
    const was = await role();
    await refused(
      'PATCH',
      `/members/${f.users.bob.id}`,
      { token: alice, payload: '{"role":"member","role":"admin"}', headers: json },
      { code: 'DUPLICATE_KEY', field: 'role' },
    );
    expect(await role()).toBe(was);

    // the same key in sibling objects, or once per nesting level, is fine
    const ok = await f.call('POST', '/recordings', {
      token: alice,
      payload: '{"title":"siblings","durationSeconds":1,"mimeType":"audio/ogg"}',
      headers: json,
    });
    expect(ok.statusCode, ok.body).toBe(201);
  });

  it('only JSON in UTF-8 is read', async () => {
    await refused(
      'POST',
      '/recordings',
      { token: alice, payload: valid, headers: { 'content-type': 'application/json; charset=latin1' } },
      { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    );
    await refused(
      'POST',
      '/recordings',
      { token: alice, payload: valid, headers: { 'content-type': 'text/plain' } },
      { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    );
    await refused(
      'POST',
      '/recordings',
      { token: alice, payload: '{"title":', headers: { 'content-type': 'application/json' } },
      { code: 'VALIDATION_FAILED', field: 'body' },
    );
    await refused(
      'POST',
      '/recordings',
      { token: alice, payload: '{"__proto__":{"x":1}}', headers: { 'content-type': 'application/json' } },
      { code: 'VALIDATION_FAILED', field: 'body' },
    );
  });
});

describe('framework errors keep the shape and never echo the input', () => {
  it('a path parameter past its length: 414 URI_TOO_LONG', async () => {
    const long = 'Z'.repeat(150);
    const res = await f.call('GET', `/recordings/${long}`, { token: alice });
    expect(res.statusCode).toBe(414);
    expect(res.json()).toEqual({ error: { code: 'URI_TOO_LONG', message: 'A path segment of the URL is too long' } });
    expect(res.body).not.toContain('ZZZZ');
  });

  it('malformed percent-encoding in the path: 400 BAD_URL', async () => {
    const res = await f.call('GET', '/recordings/%zz<script>', { token: alice });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: { code: 'BAD_URL', message: 'The URL is not valid (malformed percent-encoding)' },
    });
  });

  it('unknown routes and methods: 404 ROUTE_NOT_FOUND', async () => {
    const res = await f.call('PUT', '/recordings/<marker>', { token: alice });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'ROUTE_NOT_FOUND', message: 'No such route' } });
  });

  it('headers too large: 431 in the shape, and no body to a HEAD', async () => {
    const big = `X-Big: ${'a'.repeat(20_000)}\r\n`;
    const get = await rawRequest(port, `GET /me HTTP/1.1\r\nHost: x\r\n${big}Connection: close\r\n\r\n`);
    expect(get.status).toBe(431);
    expect(JSON.parse(get.body)).toEqual({
      error: { code: 'HEADERS_TOO_LARGE', message: 'The request headers are too large' },
    });
    const head = await rawRequest(port, `HEAD /me HTTP/1.1\r\nHost: x\r\n${big}Connection: close\r\n\r\n`);
    expect(head.status).toBe(431);
    expect(head.body).toBe('');
  });

  it('a request the HTTP parser refuses: 400 BAD_REQUEST in the shape', async () => {
    const res = await rawRequest(port, 'GET /me HTTP/1.1\r\nHost: x\r\nBad Header§: 1\r\n\r\n');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toEqual({ error: { code: 'BAD_REQUEST', message: 'The request is malformed' } });
  });

  it('a PostgreSQL data exception that no validation caught is a 400, not a 500', async () => {
    const res = await f.call('GET', '/test/data-exception');
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: { code: 'VALIDATION_FAILED', message: 'A value of the request is out of range or is not storable text' },
    });
  });
});

describe('credentials sent twice, or two at once', () => {
  const get = (headers: string) =>
    rawRequest(port, `GET /me HTTP/1.1\r\nHost: x\r\n${headers}Connection: close\r\n\r\n`);
  const errorOf = (body: string) => (JSON.parse(body) as { error: { code: string } }).error.code;

  it('two Authorization headers are refused, even when both are the same token', async () => {
    const same = await get(`Authorization: Bearer ${alice}\r\nAuthorization: Bearer ${alice}\r\n`);
    expect(same.status).toBe(401);
    expect(errorOf(same.body)).toBe('UNAUTHENTICATED');
    const bob = await f.token(f.users.bob, f.a);
    const two = await get(`Authorization: Bearer ${bob}\r\nAuthorization: Bearer ${alice}\r\n`);
    expect(two.status).toBe(401);
    // staff routes read Authorization the same way
    const staff = await f.staffToken();
    const staffTwice = await rawRequest(
      port,
      `POST /staff/sign-out HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${staff}\r\nAuthorization: Bearer ${staff}\r\nConnection: close\r\n\r\n`,
    );
    expect(staffTwice.status).toBe(401);
    expect((await get(`Authorization: Bearer ${alice}\r\n`)).status).toBe(200);
  });

  it('two X-Tenant headers are TENANT_CONFLICT, even naming the same tenant', async () => {
    const staff = await f.staffToken();
    const grant = await f.call('POST', '/staff/access', {
      token: staff,
      payload: { tenant: 'alpha', reason: 'checking duplicate headers' },
    });
    expect(grant.statusCode).toBe(201);
    expect((await get(`Authorization: Bearer ${staff}\r\nX-Tenant: alpha\r\n`)).status).toBe(200);
    for (const second of ['alpha', 'bravo']) {
      const res = await get(`Authorization: Bearer ${staff}\r\nX-Tenant: alpha\r\nx-tenant: ${second}\r\n`);
      expect(res.status).toBe(400);
      expect(errorOf(res.body)).toBe('TENANT_CONFLICT');
    }
  });

  it('the scheme is case-insensitive', async () => {
    for (const scheme of ['bearer', 'BEARER', 'BeArEr'])
      expect((await get(`Authorization: ${scheme} ${alice}\r\n`)).status).toBe(200);
    const staff = await f.staffToken();
    expect(
      (await f.call('POST', '/staff/sign-out', { headers: { authorization: `bearer ${staff}` } })).statusCode,
    ).toBe(204);
  });

  it('an API key in X-Api-Key and in Authorization, or a key with a token, is a conflict', async () => {
    const { key } = (await f.call('POST', '/api-keys', { token: alice, payload: { name: 'twice' } })).json() as {
      key: string;
    };
    expect((await f.call('GET', '/recordings', { headers: { 'x-api-key': key } })).statusCode).toBe(200);
    expect((await f.call('GET', '/recordings', { headers: { authorization: `Bearer ${key}` } })).statusCode).toBe(200);
    await refused(
      'GET',
      '/recordings',
      { headers: { 'x-api-key': key, authorization: `Bearer ${key}` } },
      { code: 'TENANT_CONFLICT' },
    );
    await refused('GET', '/recordings', { token: alice, headers: { 'x-api-key': key } }, { code: 'TENANT_CONFLICT' });
    const twice = await rawRequest(
      port,
      `GET /recordings HTTP/1.1\r\nHost: x\r\nX-Api-Key: ${key}\r\nX-Api-Key: ${key}\r\nConnection: close\r\n\r\n`,
    );
    expect(twice.status).toBe(401);
    expect(errorOf(twice.body)).toBe('API_KEY_INVALID');
  });
});
