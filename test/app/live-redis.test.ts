import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { RedisLiveTransport, TenantEventBus } from '../../src/live/index.js';
import { buildServer } from '../../app/server.js';
import { createQueryGuard } from '../../app/query-guard.js';
import { createAppFixture, type AppFixture } from './support/app-fixture.js';
import { SseClient } from '../live/support/sse-client.js';
import { connect, quitAll, redisReachable } from '../live/support/redis.js';

// Redis is opt-in for the reference server (`npm start` and `npm test` work without it): these
// tests skip, with this reason, when nothing answers on TENANTRY_TEST_REDIS_URL (default
// redis://127.0.0.1:6379).
const reachable = await redisReachable();

describe.skipIf(!reachable)('GET /events with Redis pub/sub between two instances', () => {
  let f: AppFixture;
  const opened: Redis[] = [];
  const servers: Array<{ app: FastifyInstance; bus: TenantEventBus; url: string }> = [];
  const clients: SseClient[] = [];
  const channel = `tenantry:live:test:${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    f = await createAppFixture();
    const guard = await createQueryGuard(f.db.owner, { mode: 'enforce' });
    for (let i = 0; i < 2; i++) {
      const pool = f.db.appPool({ guard });
      const bus = new TenantEventBus({
        pool,
        transport: new RedisLiveTransport({ subscriber: connect(opened), publisher: connect(opened), channel }),
      });
      const app = buildServer({ appPool: pool, jwtSecret: f.jwtSecret, events: { bus } });
      await app.listen({ port: 0, host: '127.0.0.1' });
      servers.push({ app, bus, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` });
    }
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    for (const server of servers) {
      await server.app.close();
      await server.bus.close();
    }
    await quitAll(opened);
    await f?.close();
  });

  it("rings after each write: A's events reach A's streams on both instances, never B's", async () => {
    const tokenA = await f.token(f.users.alice, f.a);
    const tokenB = await f.token(f.users.carol, f.b);
    const open = async (i: number, token: string) => {
      const c = new SseClient(servers[i]!.url, { token });
      clients.push(c);
      await c.response;
      return c;
    };
    const s = {
      a0: await open(0, tokenA),
      a1: await open(1, tokenA),
      b0: await open(0, tokenB),
      b1: await open(1, tokenB),
    };
    const post = async (i: number, token: string, title: string) => {
      const res = await servers[i]!.app.inject({
        method: 'POST',
        url: '/recordings',
        headers: { authorization: `Bearer ${token}` },
        payload: { title, durationSeconds: 1, mimeType: 'audio/ogg' },
      });
      expect(res.statusCode).toBe(201);
      return (res.json() as { id: string }).id;
    };
    const aIds = [await post(0, tokenA, 'a one'), await post(1, tokenA, 'a two')];
    const del = await servers[1]!.app.inject({
      method: 'DELETE',
      url: `/recordings/${aIds[0]}`,
      headers: { authorization: `Bearer ${tokenA}` },
    });
    expect(del.statusCode).toBe(204);
    const bId = await post(0, tokenB, 'b one');
    await Promise.all([s.a0, s.a1].map((c) => c.until(() => c.events.length >= 3)));
    await Promise.all([s.b0, s.b1].map((c) => c.until(() => c.events.length >= 1)));
    for (const c of [s.a0, s.a1]) {
      expect(c.events.map((e) => [e.event, e.data.data.id])).toEqual([
        ['recording.created', aIds[0]],
        ['recording.created', aIds[1]],
        ['recording.deleted', aIds[0]],
      ]);
    }
    for (const c of [s.b0, s.b1]) {
      expect(c.events.map((e) => [e.event, e.data.data.id])).toEqual([['recording.created', bId]]);
      for (const secret of [f.a.id, ...aIds]) expect(c.body).not.toContain(secret);
    }
  });
});
