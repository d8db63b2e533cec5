import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentTenant, InvalidArgumentError } from '../../src/index.js';
import { createLogger } from '../../app/logger.js';
import { buildServer } from '../../app/server.js';
import { createAppFixture, PASSWORD, type AppFixture } from './support/app-fixture.js';

const lines: string[] = [];
const logger = createLogger({ level: 'trace', destination: { write: (line: string) => void lines.push(line) } });
let f: AppFixture;

beforeAll(async () => {
  f = await createAppFixture({
    logger,
    configure(app) {
      app.get('/test/boom', async () => {
        throw new Error('connection to 10.0.0.7 failed for user admin password hunter2');
      });
      app.get('/test/no-scope', async () => currentTenant());
      app.get('/test/bad-argument', async () => {
        throw new InvalidArgumentError('limit must be positive', 'limit');
      });
    },
  });
});
afterAll(() => f?.close());

describe('unknown errors', () => {
  it('answer a generic 500 with no detail, and are logged', async () => {
    lines.length = 0;
    const res = await f.call('GET', '/test/boom');
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: { code: 'INTERNAL' } });
    expect(res.body).not.toMatch(/hunter2|10\.0\.0\.7|stack/);
    expect(lines.some((l) => l.includes('"msg":"request failed"') && l.includes('hunter2'))).toBe(true);
  });

  it('answer a generic 500 when the database fails under a tenant route', async () => {
    const token = await f.token(f.users.alice, f.a);
    await f.db.admin.query('alter table recordings rename column title to title_gone');
    try {
      const res = await f.call('GET', '/recordings', { token });
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({ error: { code: 'INTERNAL' } });
      expect(res.body).not.toMatch(/title|column|recordings/);
    } finally {
      await f.db.admin.query('alter table recordings rename column title_gone to title');
    }
    expect((await f.call('GET', '/recordings', { token })).statusCode).toBe(200);
  });

  it('fail closed when the pool signs the tenant context with the wrong key', async () => {
    const forged = buildServer({
      appPool: f.db.appPool({ contextSecret: 'a-different-secret-of-at-least-32-chars' }),
      jwtSecret: f.jwtSecret,
    });
    try {
      const res = await forged.inject({
        method: 'GET',
        url: '/recordings',
        headers: { authorization: `Bearer ${await f.token(f.users.alice, f.a)}` },
      });
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({ error: { code: 'INTERNAL' } });
    } finally {
      await forged.close();
    }
  });
});

describe('Tenantry errors', () => {
  it('map a 4xx to its status, code, message and field', async () => {
    const res = await f.call('GET', '/test/bad-argument');
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: { code: 'INVALID_ARGUMENT', message: 'limit must be positive', field: 'limit' },
    });
  });

  it('map a 5xx to its status and code, without the message', async () => {
    const res = await f.call('GET', '/test/no-scope');
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: { code: 'TENANT_SCOPE_MISSING' } });
  });
});

describe('logs', () => {
  it('never contain a password or a token', async () => {
    lines.length = 0;
    const signIn = await f.call('POST', '/auth/sign-in', {
      payload: { email: f.users.alice.email, password: PASSWORD, tenant: 'alpha' },
    });
    expect(signIn.statusCode).toBe(200);
    const { token } = signIn.json() as { token: string };
    await f.call('GET', '/me', { token });
    await f.call('GET', '/recordings/not-a-uuid', { token });
    await f.call('GET', '/me', { token: `${token}x` });
    await f.call('POST', '/auth/sign-in', {
      payload: { email: f.users.alice.email, password: 'the wrong one', tenant: 'alpha' },
    });
    const { key } = (await f.call('POST', '/api-keys', { token, payload: { name: 'log check' } })).json() as {
      key: string;
    };
    expect((await f.call('GET', '/recordings', { headers: { 'x-api-key': key } })).statusCode).toBe(200);
    expect((await f.call('GET', '/recordings', { headers: { 'x-api-key': `${key}x` } })).statusCode).toBe(401);
    const { code } = (
      await f.call('POST', '/invitations', { token, payload: { email: 'logcheck@example.test' } })
    ).json() as { code: string };
    expect(lines.length).toBeGreaterThan(5);
    const all = lines.join('\n');
    expect(all).toContain('incoming request');
    for (const secret of [
      PASSWORD,
      'the wrong one',
      token,
      token.split('.')[2]!,
      'Bearer',
      key.split('_').slice(2).join('_'),
      code,
    ])
      expect(all).not.toContain(secret);
  });

  it('redact secrets even when code logs headers or bodies', () => {
    lines.length = 0;
    logger.info(
      {
        req: { headers: { authorization: 'Bearer abc.def.ghi', cookie: 'sid=s3cr3t', 'x-api-key': 'tnry_abc_def' } },
        body: { email: 'a@b.c', password: 'hunter3' },
        token: 'tok-123',
        created: { key: 'tnry_x_y' },
      },
      'careless',
    );
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a test double of an untyped shape
    const line = JSON.parse(lines[0]!) as Record<string, any>;
    expect(line.req.headers).toEqual({ authorization: '[redacted]', cookie: '[redacted]', 'x-api-key': '[redacted]' });
    expect(line.created).toEqual({ key: '[redacted]' });
    expect(line.body).toEqual({ email: 'a@b.c', password: '[redacted]' });
    expect(line.token).toBe('[redacted]');
  });
});
