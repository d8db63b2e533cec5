import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { runAs, TenantCatalog, type TenantPool } from '../../src/index.js';
import { liveSchemaSql, RedisLiveTransport, TenantEventBus } from '../../src/live/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { Collector } from './support/live-helpers.js';
import { connect, quitAll, redisReachable } from './support/redis.js';

// Redis is opt-in for the project (`npm test` must pass without it): these tests skip, with
// this reason, when nothing answers on TENANTRY_TEST_REDIS_URL (default redis://127.0.0.1:6379).
const reachable = await redisReachable();

describe.skipIf(!reachable)('RedisLiveTransport: two instances, two tenants', () => {
  let db: TestDatabase;
  let a: string;
  let b: string;
  const opened: Redis[] = [];
  const buses: TenantEventBus[] = [];
  const unsubscribes: Array<() => void> = [];
  // one channel per test file: test files run at the same time on the same Redis
  const channel = `tenantry:live:test:${randomBytes(4).toString('hex')}`;
  const heard: string[] = [];
  let one: { pool: TenantPool; bus: TenantEventBus };
  let two: { pool: TenantPool; bus: TenantEventBus };

  function instance() {
    const pool = db.appPool();
    const bus = new TenantEventBus({
      pool,
      transport: new RedisLiveTransport({ subscriber: connect(opened), publisher: connect(opened), channel }),
    });
    buses.push(bus);
    return { pool, bus };
  }

  async function subscribe(bus: TenantEventBus, tenant: string): Promise<Collector> {
    const c = new Collector();
    unsubscribes.push(await bus.subscribe(tenant, c.handle));
    return c;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    await db.owner.query(liveSchemaSql({ appRole: db.appRole }));
    const catalog = new TenantCatalog(db.owner);
    a = (await catalog.create({ slug: 'alpha', name: 'Alpha' })).id;
    b = (await catalog.create({ slug: 'bravo', name: 'Bravo' })).id;
    const spy = connect(opened);
    spy.on('message', (_channel: string, message: string) => heard.push(message));
    await spy.subscribe(channel);
    one = instance();
    two = instance();
  });

  afterAll(async () => {
    for (const unsubscribe of unsubscribes) unsubscribe();
    await Promise.all(buses.map((bus) => bus.close()));
    await quitAll(opened);
    await db?.drop();
  });

  it("delivers A's events to A's subscribers on both instances and never to B's; Redis carries only routes", async () => {
    const got = {
      a1: await subscribe(one.bus, a),
      a2: await subscribe(two.bus, a),
      b1: await subscribe(one.bus, b),
      b2: await subscribe(two.bus, b),
    };
    const publish = (inst: typeof one, tenant: string, payload: Record<string, unknown>) =>
      runAs(tenant, () => inst.bus.publish('thing.changed', payload));
    await Promise.all([
      ...Array.from({ length: 8 }, (_, i) => publish(i % 2 ? one : two, a, { tenant: 'A', n: i })),
      ...Array.from({ length: 4 }, (_, i) => publish(i % 2 ? two : one, b, { tenant: 'B', n: i })),
    ]);
    await publish(two, a, { tenant: 'A', mark: 'a-done' });
    await publish(one, b, { tenant: 'B', mark: 'b-done' });
    await Promise.all([
      got.a1.untilMark('a-done'),
      got.a2.untilMark('a-done'),
      got.b1.untilMark('b-done'),
      got.b2.untilMark('b-done'),
    ]);

    for (const c of [got.a1, got.a2]) {
      expect(c.seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(c.events.every((e) => e.payload.tenant === 'A')).toBe(true);
    }
    for (const c of [got.b1, got.b2]) {
      expect(c.seqs).toEqual([1, 2, 3, 4, 5]);
      expect(c.events.every((e) => e.payload.tenant === 'B')).toBe(true);
    }
    expect(new Set(heard).size).toBe(2);
    for (const message of heard) {
      expect(message).toMatch(/^[0-9a-f]{32}$/);
      for (const id of [a, b]) expect(message).not.toContain(id.replace(/-/g, '').slice(0, 12));
    }
  });

  it('delivers nothing on a forged doorbell', async () => {
    const got = await subscribe(one.bus, b);
    const publisher = connect(opened);
    const routeOfB = (await one.bus.log.head(b)).route;
    await publisher.publish(channel, routeOfB);
    await publisher.publish(channel, 'garbage');
    await runAs(b, () => two.bus.publish('thing.changed', { mark: 'after-forgery' }));
    await got.untilMark('after-forgery');
    expect(got.events).toHaveLength(1);
  });
});
