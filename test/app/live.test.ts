import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import { PostgresLiveTransport, TenantEventBus, type LiveTransport } from '../../src/live/index.js';
import type { QueryGuard } from '../../src/guard/index.js';
import { buildServer } from '../../app/server.js';
import { createQueryGuard } from '../../app/query-guard.js';
import { TOKEN_AUDIENCE, TOKEN_ISSUER } from '../../app/auth/token-service.js';
import { createAppFixture, PASSWORD, type AppFixture } from './support/app-fixture.js';
import { SseClient } from '../live/support/sse-client.js';
import { dropRole, listenAsStranger } from '../live/support/live-helpers.js';

// Two server instances (two buildServer, each with its own pool, bus and listener connection)
// on one database, as two processes behind a load balancer would be.
let f: AppFixture;
let guard: QueryGuard;
const servers: Array<{ app: FastifyInstance; bus: TenantEventBus; url: string }> = [];
const clients: SseClient[] = [];
let spy: Awaited<ReturnType<typeof listenAsStranger>>;
let tokenA: string;
let tokenB: string;

async function startServer(
  transport: LiveTransport,
  options: { heartbeatMs?: number; maxStreamMs?: number; recheckMs?: number } = {},
) {
  const pool = f.db.appPool({ guard });
  const bus = new TenantEventBus({ pool, transport });
  const app = buildServer({ appPool: pool, jwtSecret: f.jwtSecret, events: { bus, ...options } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const server = { app, bus, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
  servers.push(server);
  return server;
}

async function stream(
  server: { url: string },
  options: ConstructorParameters<typeof SseClient>[1],
): Promise<SseClient> {
  const client = new SseClient(server.url, options);
  clients.push(client);
  await client.response;
  return client;
}

async function call(
  server: { app: FastifyInstance },
  method: 'POST' | 'PATCH' | 'DELETE',
  url: string,
  token: string,
  payload?: unknown,
) {
  const res = await server.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}` },
    ...(payload ? { payload: payload as object } : {}),
  });
  expect(res.statusCode).toBeLessThan(300);
  return res;
}

beforeAll(async () => {
  f = await createAppFixture();
  guard = await createQueryGuard(f.db.owner, { mode: 'enforce' });
  tokenA = await f.token(f.users.alice, f.a);
  tokenB = await f.token(f.users.carol, f.b);
  spy = await listenAsStranger(f.db, 'tenantry_live');
});

afterAll(async () => {
  for (const client of clients) client.close();
  for (const server of servers) {
    await server.app.close();
    await server.bus.close();
  }
  await spy?.close();
  await f?.close();
  if (spy) await dropRole(inject('adminUrl'), spy.role);
});

describe('GET /events on two instances, two tenants', () => {
  let one: Awaited<ReturnType<typeof startServer>>;
  let two: Awaited<ReturnType<typeof startServer>>;
  const aIds: string[] = [];
  const bIds: string[] = [];
  const titles = ['A secret plan', 'A budget', 'A merger', 'B roadmap', 'B salaries', 'B layoffs'];
  let s: Record<'a1' | 'a2' | 'b1' | 'b2', SseClient>;

  beforeAll(async () => {
    one = await startServer(new PostgresLiveTransport({ connectionString: f.db.appUrl }), { heartbeatMs: 20 });
    two = await startServer(new PostgresLiveTransport({ connectionString: f.db.appUrl }));
    s = {
      a1: await stream(one, { token: tokenA }),
      a2: await stream(two, { token: tokenA }),
      b1: await stream(one, { token: tokenB }),
      b2: await stream(two, { token: tokenB }),
    };
  });

  it('streams text/event-stream to a member', () => {
    for (const c of Object.values(s)) {
      expect(c.status).toBe(200);
      expect(c.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect(c.headers['cache-control']).toContain('no-cache');
    }
    expect(one.bus.stats()).toEqual({ tenants: 2, subscribers: 2 });
  });

  it("delivers A's recording events to A's streams on both instances and never to B's", async () => {
    for (const title of titles.slice(0, 3))
      aIds.push(
        (await call(one, 'POST', '/recordings', tokenA, { title, durationSeconds: 5, mimeType: 'audio/ogg' })).json()
          .id,
      );
    await call(two, 'PATCH', `/recordings/${aIds[0]}`, tokenA, { durationSeconds: 6 });
    await call(one, 'DELETE', `/recordings/${aIds[1]}`, tokenA);
    for (const title of titles.slice(3))
      bIds.push(
        (await call(two, 'POST', '/recordings', tokenB, { title, durationSeconds: 5, mimeType: 'audio/ogg' })).json()
          .id,
      );
    // sync point: B's last write comes after all of A's; then wait for each stream's own last event
    await Promise.all([s.a1, s.a2].map((c) => c.until(() => c.events.some((e) => e.event === 'recording.deleted'))));
    await Promise.all([s.b1, s.b2].map((c) => c.until(() => c.events.some((e) => e.data.data.id === bIds[2]))));

    for (const c of [s.a1, s.a2]) {
      expect(c.events.map((e) => [e.id, e.event, e.data.data.id])).toEqual([
        ['1', 'recording.created', aIds[0]],
        ['2', 'recording.created', aIds[1]],
        ['3', 'recording.created', aIds[2]],
        ['4', 'recording.updated', aIds[0]],
        ['5', 'recording.deleted', aIds[1]],
      ]);
      for (const e of c.events) expect(Object.keys(e.data.data).sort()).toEqual(['id', 'ownerId']);
      expect(c.events.every((e) => e.data.data.ownerId === f.users.alice.id)).toBe(true);
    }
    for (const c of [s.b1, s.b2]) {
      expect(c.events.map((e) => [e.id, e.event, e.data.data.id])).toEqual(
        bIds.map((id, i) => [String(i + 1), 'recording.created', id]),
      );
      for (const secret of [f.a.id, f.users.alice.id, ...aIds]) expect(c.body).not.toContain(secret);
    }
    for (const c of Object.values(s)) for (const title of titles) expect(c.body).not.toContain(title);
  });

  it('puts neither tenant ids nor data in what a stranger hears on the channel', async () => {
    await spy.client.query('select 1');
    expect(spy.seen.length).toBeGreaterThanOrEqual(2);
    expect(new Set(spy.seen.map((n) => n.payload)).size).toBe(2);
    for (const n of spy.seen) {
      expect(n.channel).toBe('tenantry_live');
      expect(n.payload).toMatch(/^[0-9a-f]{32}$/);
      for (const secret of [f.a.id, f.b.id, f.users.alice.id, f.users.carol.id, ...aIds, ...bIds]) {
        expect(n.payload).not.toContain(secret.replace(/-/g, ''));
        expect(n.payload).not.toContain(secret.slice(0, 8));
      }
    }
  });

  it('resumes after Last-Event-ID, on either instance', async () => {
    const resumed = await stream(two, { token: tokenA, lastEventId: '2' });
    await resumed.until(() => resumed.events.length >= 3);
    expect(resumed.events.map((e) => e.id)).toEqual(['3', '4', '5']);
    resumed.close();
    const bad = await stream(one, { token: tokenA, lastEventId: 'abc' });
    await bad.until(() => bad.ended);
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toMatchObject({ code: 'VALIDATION_FAILED', field: 'last-event-id' });
  });

  it('sends heartbeats', async () => {
    await s.a1.until(() => s.a1.comments >= 2);
    expect(s.a1.comments).toBeGreaterThanOrEqual(2);
  });

  it('refuses an absent, forged or foreign token before opening a stream', async () => {
    const before = one.bus.stats();
    const forged = await new SignJWT({ tid: f.a.id })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(f.users.alice.id)
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('x'.repeat(40)));
    const cases: Array<[string | undefined, number]> = [
      [undefined, 401],
      [forged, 401],
      [`${tokenA}x`, 401],
      [await f.token(f.users.alice, f.b), 403], // a genuine token for a tenant alice is not a member of
    ];
    for (const [token, status] of cases) {
      const c = await stream(one, token === undefined ? {} : { token });
      await c.until(() => c.ended);
      expect(c.status).toBe(status);
      expect(c.headers['content-type']).toContain('application/json');
      expect(c.frames).toEqual([]);
    }
    expect(one.bus.stats()).toEqual(before);
  });

  it('refuses an unknown query parameter with 400 before opening a stream (review finding 5)', async () => {
    const before = one.bus.stats();
    for (const query of ['tenant=' + f.b.slug, 'lastEventId=1', 'x', 'after=0&tenant=bravo']) {
      const res = await one.app.inject({
        method: 'GET',
        url: `/events?${query}`,
        headers: { authorization: `Bearer ${tokenA}` },
      });
      expect(res.statusCode, `${query}: ${res.body}`).toBe(400);
      const { error } = res.json() as { error: { code: string; message: string; field: string } };
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(error.message).toMatch(/is not a field of the query string|query string has a field/);
      expect(res.headers['content-type']).toContain('application/json');
    }
    expect(one.bus.stats()).toEqual(before);
  });

  it('ends a stream after maxStreamMs, so that the client reconnects and is authenticated again', async () => {
    const short = await startServer(new PostgresLiveTransport({ connectionString: f.db.appUrl }), { maxStreamMs: 30 });
    const c = await stream(short, { token: tokenA });
    expect(c.status).toBe(200);
    await c.until(() => c.ended);
    expect(short.bus.stats().subscribers).toBe(0);
    // the client comes back with its Last-Event-ID (here on the other instance) and gets nothing twice
    const again = await stream(two, { token: tokenA, lastEventId: '5' });
    expect(again.status).toBe(200);
    await call(one, 'PATCH', `/recordings/${aIds[2]}`, tokenA, { durationSeconds: 9 });
    await again.until(() => again.events.length >= 1);
    expect(again.events.map((e) => [e.id, e.event, e.data.data.id])).toEqual([['6', 'recording.updated', aIds[2]]]);
  });

  it("ends a signed-out member's stream at the next re-check, with an end frame naming the refusal", async () => {
    const quick = await startServer(new PostgresLiveTransport({ connectionString: f.db.appUrl }), { recheckMs: 25 });
    const signIn = await quick.app.inject({
      method: 'POST',
      url: '/auth/sign-in',
      payload: { email: f.users.bob.email, password: PASSWORD, tenant: f.a.slug },
    });
    const token = signIn.json().token as string;
    const c = await stream(quick, { token });
    expect(c.status).toBe(200);
    // still open across several re-checks while the session lives
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(c.ended).toBe(false);
    expect(
      (await quick.app.inject({ method: 'POST', url: '/auth/sign-out', headers: { authorization: `Bearer ${token}` } }))
        .statusCode,
    ).toBe(204);
    await c.until(() => c.ended);
    expect(c.events.at(-1)).toMatchObject({ event: 'end', data: { code: 'SESSION_REVOKED' } });
    // and a write of A after that reaches nothing of this stream
    expect(quick.bus.stats().subscribers).toBe(0);
  });

  it('ends the streams of a server that closes', async () => {
    const three = await startServer(new PostgresLiveTransport({ connectionString: f.db.appUrl }));
    const c = await stream(three, { token: tokenB });
    expect(three.bus.stats().subscribers).toBe(1);
    await three.app.close();
    await c.until(() => c.ended);
    expect(three.bus.stats().subscribers).toBe(0);
  });
});
