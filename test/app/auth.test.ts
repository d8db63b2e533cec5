import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { TOKEN_AUDIENCE, TOKEN_ISSUER } from '../../app/auth/token-service.js';
import { addMember } from '../../app/identity/users.js';
import {
  createAppFixture,
  PASSWORD,
  tenantRoutes,
  type AppFixture,
  type FixtureTenant,
} from './support/app-fixture.js';

let f: AppFixture;
let suspended: FixtureTenant;
let deleted: FixtureTenant;
let bRecording: string;

beforeAll(async () => {
  f = await createAppFixture();
  // alice is a member of both, so only the tenant's status can refuse her
  const s = await f.catalog.create({ slug: 'sleepy', name: 'Sleepy' });
  const d = await f.catalog.create({ slug: 'gone', name: 'Gone' });
  await addMember(f.db.owner, s.id, f.users.alice.id, 'member');
  await addMember(f.db.owner, d.id, f.users.alice.id, 'member');
  await f.catalog.suspend(s.id);
  await f.catalog.softDelete(d.id);
  suspended = { id: s.id, slug: s.slug };
  deleted = { id: d.id, slug: d.slug };
  bRecording = (await f.insertRecordings(f.b, f.users.carol, 1))[0]!;
});
afterAll(() => f?.close());

const signIn = (payload: unknown) => f.call('POST', '/auth/sign-in', { payload });
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('POST /auth/sign-in', () => {
  it('answers an HS256 token with sub, tid, iss, aud and a one-hour exp', async () => {
    const res = await signIn({ email: f.users.alice.email, password: PASSWORD, tenant: 'alpha' });
    expect(res.statusCode).toBe(200);
    const { token } = res.json() as { token: string };
    expect(decodeProtectedHeader(token).alg).toBe('HS256');
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ sub: f.users.alice.id, tid: f.a.id, iss: TOKEN_ISSUER, aud: TOKEN_AUDIENCE });
    expect(claims.exp! - claims.iat!).toBe(3600);
    const me = await f.call('GET', '/me', { token });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({
      user: { id: f.users.alice.id, email: f.users.alice.email },
      role: 'owner',
      tenant: { id: f.a.id, slug: 'alpha' },
    });
  });

  it('gives a person of two tenants a token for the tenant asked for', async () => {
    const res = await signIn({ email: f.users.sam.email, password: PASSWORD, tenant: 'bravo' });
    expect(res.statusCode).toBe(200);
    expect(decodeJwt((res.json() as { token: string }).token).tid).toBe(f.b.id);
  });

  it('ignores the case and surrounding spaces of the email', async () => {
    const res = await signIn({ email: `  ${f.users.bob.email.toUpperCase()} `, password: PASSWORD, tenant: 'alpha' });
    expect(res.statusCode).toBe(200);
  });

  it('answers wrong password, unknown email, non-member, suspended, deleted and unknown tenant the same', async () => {
    const attempts = [
      { email: f.users.alice.email, password: 'wrong password', tenant: 'alpha' },
      { email: 'nobody@example.test', password: PASSWORD, tenant: 'alpha' },
      { email: f.users.carol.email, password: PASSWORD, tenant: 'alpha' }, // member of bravo only
      { email: f.users.alice.email, password: PASSWORD, tenant: suspended.slug },
      { email: f.users.alice.email, password: PASSWORD, tenant: deleted.slug },
      { email: f.users.alice.email, password: PASSWORD, tenant: 'no-such-tenant' },
      { email: f.users.alice.email, password: PASSWORD.toUpperCase(), tenant: 'alpha' },
    ];
    const answers = await Promise.all(attempts.map(signIn));
    for (const res of answers) {
      expect(res.statusCode).toBe(401);
      expect(res.json()).toEqual({
        error: { code: 'INVALID_CREDENTIALS', message: 'Email, password or tenant is incorrect' },
      });
    }
    expect(new Set(answers.map((r) => r.body)).size).toBe(1);
  });

  it('hashes the password once whether the email is unknown or the password wrong (no timing oracle)', async () => {
    // Counted, not timed: a timed comparison flakes on a loaded machine. With track_functions
    // on, PostgreSQL counts each call of pgcrypto's crypt() in this transaction; bcrypt at
    // cost 8 is what the answer's time is made of, so one call each means the same work.
    const admin = new pg.Client({ connectionString: f.db.adminUrl });
    await admin.connect();
    try {
      await admin.query("SET track_functions = 'all'");
      // the view also holds calls not yet flushed from earlier transactions: count the difference
      const counted = async () =>
        Number(
          (
            await admin.query<{ calls: string }>(
              "SELECT coalesce(sum(calls), 0) AS calls FROM pg_stat_xact_user_functions WHERE funcname = 'crypt'",
            )
          ).rows[0]!.calls,
        );
      const cryptCalls = async (email: string, password: string, tenant: string) => {
        await admin.query('BEGIN');
        try {
          const before = await counted();
          const signedIn = await admin.query('SELECT * FROM app.sign_in($1, $2, $3, 60)', [email, password, tenant]);
          return { rows: signedIn.rowCount, crypt: (await counted()) - before };
        } finally {
          await admin.query('ROLLBACK');
        }
      };
      expect(await cryptCalls(f.users.alice.email, PASSWORD, 'alpha')).toEqual({ rows: 1, crypt: 1 });
      expect(await cryptCalls(f.users.alice.email, 'wrong password', 'alpha')).toEqual({ rows: 0, crypt: 1 });
      expect(await cryptCalls('nobody@example.test', 'wrong password', 'alpha')).toEqual({ rows: 0, crypt: 1 });
      expect(await cryptCalls(f.users.carol.email, PASSWORD, 'alpha')).toEqual({ rows: 0, crypt: 1 });
      expect(await cryptCalls(f.users.alice.email, PASSWORD, 'no-such-tenant')).toEqual({ rows: 0, crypt: 1 });
    } finally {
      await admin.end();
    }
    // and over HTTP both are refused alike
    expect(
      (await signIn({ email: 'nobody@example.test', password: 'wrong password', tenant: 'alpha' })).statusCode,
    ).toBe(401);
  });

  it('answers 400 VALIDATION_FAILED with the field for malformed input', async () => {
    const cases: Array<[unknown, string]> = [
      [{ password: PASSWORD, tenant: 'alpha' }, 'email'],
      [{ email: 'not-an-email', password: PASSWORD, tenant: 'alpha' }, 'email'],
      [{ email: f.users.alice.email, password: '', tenant: 'alpha' }, 'password'],
      [{ email: f.users.alice.email, password: 'x'.repeat(73), tenant: 'alpha' }, 'password'],
      [{ email: f.users.alice.email, password: PASSWORD, tenant: 'Not A Slug' }, 'tenant'],
      [{ email: f.users.alice.email, password: PASSWORD, tenant: 'alpha', tenantId: f.b.id }, 'tenantId'],
      [[], 'body'],
    ];
    for (const [payload, field] of cases) {
      const res = await signIn(payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'VALIDATION_FAILED', field });
    }
  });
});

describe('access tokens on every tenant route', () => {
  async function variants(): Promise<Array<{ name: string; header?: string; code: string }>> {
    const key = new TextEncoder().encode(f.jwtSecret);
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: f.users.alice.id, tid: f.a.id };
    const sign = (payload: Record<string, unknown>, secret: Uint8Array = key, alg = 'HS256') =>
      new SignJWT(payload).setProtectedHeader({ alg }).sign(secret);
    const valid = await f.token(f.users.alice, f.a);
    const [h, p, s] = valid.split('.');
    return [
      { name: 'no token', code: 'UNAUTHENTICATED' },
      { name: 'empty authorization', header: '', code: 'UNAUTHENTICATED' },
      {
        name: 'not a bearer token',
        header: `Basic ${Buffer.from('alice:pw').toString('base64')}`,
        code: 'UNAUTHENTICATED',
      },
      { name: 'garbage', header: 'Bearer not.a.jwt', code: 'TOKEN_INVALID' },
      { name: 'alg none', header: `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${p}.`, code: 'TOKEN_INVALID' },
      {
        name: 'alg none with the real signature',
        header: `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${p}.${s}`,
        code: 'TOKEN_INVALID',
      },
      {
        name: 'signed with another key',
        header: `Bearer ${await sign({ ...claims, iss: TOKEN_ISSUER, aud: TOKEN_AUDIENCE, iat: now, exp: now + 600 }, randomBytes(32))}`,
        code: 'TOKEN_INVALID',
      },
      {
        name: 'HS512 with the right key',
        header: `Bearer ${await sign({ ...claims, iss: TOKEN_ISSUER, aud: TOKEN_AUDIENCE, iat: now, exp: now + 600 }, key, 'HS512')}`,
        code: 'TOKEN_INVALID',
      },
      {
        name: 'expired',
        header: `Bearer ${await sign({ ...claims, iss: TOKEN_ISSUER, aud: TOKEN_AUDIENCE, iat: now - 7200, exp: now - 3600 })}`,
        code: 'TOKEN_EXPIRED',
      },
      {
        name: 'issued too long ago',
        header: `Bearer ${await sign({ ...claims, iss: TOKEN_ISSUER, aud: TOKEN_AUDIENCE, iat: now - 7200, exp: now + 600 })}`,
        code: 'TOKEN_EXPIRED',
      },
      {
        name: 'wrong audience',
        header: `Bearer ${await sign({ ...claims, iss: TOKEN_ISSUER, aud: 'another-api', iat: now, exp: now + 600 })}`,
        code: 'TOKEN_INVALID',
      },
      {
        name: 'wrong issuer',
        header: `Bearer ${await sign({ ...claims, iss: 'someone-else', aud: TOKEN_AUDIENCE, iat: now, exp: now + 600 })}`,
        code: 'TOKEN_INVALID',
      },
      {
        name: 'no exp',
        header: `Bearer ${await sign({ ...claims, iss: TOKEN_ISSUER, aud: TOKEN_AUDIENCE, iat: now })}`,
        code: 'TOKEN_INVALID',
      },
      {
        name: 'no tid',
        header: `Bearer ${await sign({ sub: f.users.alice.id, iss: TOKEN_ISSUER, aud: TOKEN_AUDIENCE, iat: now, exp: now + 600 })}`,
        code: 'TOKEN_INVALID',
      },
      {
        name: 'tid not a uuid',
        header: `Bearer ${await sign({ ...claims, tid: 'alpha', iss: TOKEN_ISSUER, aud: TOKEN_AUDIENCE, iat: now, exp: now + 600 })}`,
        code: 'TOKEN_INVALID',
      },
      {
        name: 'tid tampered to B',
        header: `Bearer ${h}.${b64({ ...decodeJwt(valid), tid: f.b.id })}.${s}`,
        code: 'TOKEN_INVALID',
      },
      {
        name: 'sub tampered to carol',
        header: `Bearer ${h}.${b64({ ...decodeJwt(valid), sub: f.users.carol.id })}.${s}`,
        code: 'TOKEN_INVALID',
      },
    ];
  }

  it('refuses every bad token with 401 and changes nothing', async () => {
    const before = await f.recordingsOf(f.b);
    const beforeA = await f.recordingsOf(f.a);
    for (const variant of await variants()) {
      for (const route of tenantRoutes(bRecording)) {
        const headers = variant.header === undefined ? {} : { authorization: variant.header };
        const res = await f.app.inject({
          method: route.method,
          url: route.url,
          headers,
          ...(route.payload ? { payload: route.payload as object } : {}),
        });
        expect(res.statusCode, `${variant.name}: ${route.method} ${route.url}`).toBe(401);
        expect(res.json().error.code, `${variant.name}: ${route.method} ${route.url}`).toBe(variant.code);
        expect(res.headers['www-authenticate']).toBe('Bearer');
      }
    }
    expect(await f.recordingsOf(f.b)).toEqual(before);
    expect(await f.recordingsOf(f.a)).toEqual(beforeA);
  });

  it('refuses a genuine token of a user of A minted for tenant B: 403 NOT_A_MEMBER, B unchanged', async () => {
    const token = await f.token(f.users.alice, f.b); // signed with the real key, but alice is no member of B
    const before = await f.recordingsOf(f.b);
    for (const route of tenantRoutes(bRecording)) {
      const res = await f.call(route.method, route.url, { token, payload: route.payload });
      expect(res.statusCode, `${route.method} ${route.url}`).toBe(403);
      expect(res.json()).toEqual({ error: { code: 'NOT_A_MEMBER', message: 'You are not a member of this tenant' } });
    }
    expect(await f.recordingsOf(f.b)).toEqual(before);
  });

  it('carries the tenant of the token into the handler, under concurrency', async () => {
    const tokenA = await f.token(f.users.sam, f.a);
    const tokenB = await f.token(f.users.sam, f.b);
    const calls = Array.from({ length: 40 }, (_, i): ['A' | 'B', string] =>
      i % 2 === 0 ? ['A', tokenA] : ['B', tokenB],
    );
    const answers = await Promise.all(
      calls.map(async ([which, token], i) => {
        const res =
          i % 4 < 2
            ? await f.call('GET', '/me', { token })
            : await f.call('POST', '/recordings', {
                token,
                payload: { title: `c${i}`, durationSeconds: i, mimeType: 'audio/ogg' },
              });
        return { which, res };
      }),
    );
    for (const { which, res } of answers) {
      expect(res.statusCode).toBeLessThan(300);
      const body = res.json();
      if ('tenant' in body) expect(body.tenant.id).toBe(which === 'A' ? f.a.id : f.b.id);
    }
    const { rows } = await f.db.admin.query<{ tenant_id: string; title: string }>(
      `select tenant_id, title from recordings where title ~ '^c[0-9]+$'`,
    );
    expect(rows).toHaveLength(20);
    for (const row of rows) expect(row.tenant_id).toBe(Number(row.title.slice(1)) % 2 === 0 ? f.a.id : f.b.id);
  });
});
