import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { runAs, TenantCatalog, type TenantPool } from '../../src/index.js';
import {
  liveSchemaSql,
  PostgresLiveTransport,
  TenantEventBus,
  type SubscriptionEndReason,
} from '../../src/live/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { Collector, dropRole, listenAsStranger } from './support/live-helpers.js';

// Two server instances on one database: each has its own TenantPool, its own LISTEN connection
// and its own bus. Tenants A and B have subscribers on both.
let db: TestDatabase;
let a: string;
let b: string;
const instances: Array<{ pool: TenantPool; transport: PostgresLiveTransport; bus: TenantEventBus; errors: unknown[] }> =
  [];
const unsubscribes: Array<() => void> = [];
let spy: Awaited<ReturnType<typeof listenAsStranger>>;

function instance(options: { minDelayMs?: number; onError?: (error: unknown) => void } = {}) {
  const pool = db.appPool();
  const transport = new PostgresLiveTransport({
    connectionString: db.appUrl,
    ...(options.minDelayMs ? { minDelayMs: options.minDelayMs } : {}),
  });
  const errors: unknown[] = [];
  const bus = new TenantEventBus({
    pool,
    transport,
    onError: (error) => {
      errors.push(error);
      options.onError?.(error);
    },
  });
  const made = { pool, transport, bus, errors };
  instances.push(made);
  return made;
}

async function subscribe(
  bus: TenantEventBus,
  tenant: string,
  options: Parameters<TenantEventBus['subscribe']>[2] = {},
): Promise<Collector> {
  const collector = new Collector();
  unsubscribes.push(await bus.subscribe(tenant, collector.handle, options));
  return collector;
}

// publishes through the instance's own pool, as the tenant
function publish(pool: TenantPool, tenant: string, payload: Record<string, unknown>, topic = 'thing.changed') {
  return runAs(tenant, () => pool.query('select emit_tenant_event($1, $2::jsonb)', [topic, JSON.stringify(payload)]));
}

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(liveSchemaSql({ appRole: db.appRole }));
  const catalog = new TenantCatalog(db.owner);
  a = (await catalog.create({ slug: 'alpha', name: 'Alpha' })).id;
  b = (await catalog.create({ slug: 'bravo', name: 'Bravo' })).id;
  spy = await listenAsStranger(db, 'tenantry_live');
});

afterAll(async () => {
  for (const unsubscribe of unsubscribes) unsubscribe();
  await Promise.all(instances.map((i) => i.bus.close()));
  await spy?.close();
  await db?.drop();
  if (spy) await dropRole(inject('adminUrl'), spy.role);
});

describe('two instances, two tenants', () => {
  let one: ReturnType<typeof instance>;
  let two: ReturnType<typeof instance>;
  const got: Record<'a1' | 'a2' | 'b1' | 'b2', Collector> = {} as never;

  beforeAll(async () => {
    one = instance();
    two = instance();
    got.a1 = await subscribe(one.bus, a);
    got.a2 = await subscribe(two.bus, a);
    got.b1 = await subscribe(one.bus, b);
    got.b2 = await subscribe(two.bus, b);
  });

  it("delivers A's events to A's subscribers on both instances, and never to B's", async () => {
    // interleaved writers on both instances
    await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => publish((i % 2 ? one : two).pool, a, { tenant: 'A', n: i })),
      ...Array.from({ length: 6 }, (_, i) => publish((i % 2 ? two : one).pool, b, { tenant: 'B', n: i })),
    ]);
    // sync point: a last event per tenant, written after all the others committed
    await publish(one.pool, a, { tenant: 'A', mark: 'a-done' });
    await publish(two.pool, b, { tenant: 'B', mark: 'b-done' });
    await Promise.all([
      got.a1.untilMark('a-done'),
      got.a2.untilMark('a-done'),
      got.b1.untilMark('b-done'),
      got.b2.untilMark('b-done'),
    ]);

    for (const c of [got.a1, got.a2]) {
      expect(c.events).toHaveLength(11);
      expect(c.seqs).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
      expect(c.events.every((e) => e.payload.tenant === 'A')).toBe(true);
      expect(
        c.events
          .map((e) => e.payload.n)
          .filter((n) => n !== undefined)
          .sort((x, y) => Number(x) - Number(y)),
      ).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
    for (const c of [got.b1, got.b2]) {
      expect(c.events).toHaveLength(7);
      expect(c.seqs).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(c.events.every((e) => e.payload.tenant === 'B')).toBe(true);
    }
    expect(one.bus.stats()).toEqual({ tenants: 2, subscribers: 2 });
  });

  it('puts nothing about a tenant on the wire: one channel, a random route per tenant, no data', async () => {
    // the raw LISTEN session of a stranger role heard every doorbell of the test above
    await spy.client.query('select 1'); // notifications queued before this answer have been read
    expect(spy.seen.length).toBeGreaterThanOrEqual(2);
    const routes = new Set(spy.seen.map((n) => n.payload));
    expect(routes.size).toBe(2);
    for (const n of spy.seen) {
      expect(n.channel).toBe('tenantry_live');
      expect(n.payload).toMatch(/^[0-9a-f]{32}$/);
      for (const id of [a, b]) {
        expect(n.payload).not.toContain(id.replace(/-/g, ''));
        expect(n.payload).not.toContain(id.slice(0, 8));
      }
    }
    // the route-to-tenant map is a tenant table: the stranger cannot read it, the app role only its own row
    await expect(spy.client.query('select * from tenant_event_streams')).rejects.toMatchObject({ code: '42501' });
    await expect(spy.client.query('select * from tenant_events')).rejects.toMatchObject({ code: '42501' });
    const pool = db.appPool();
    expect((await pool.query('select * from tenant_event_streams')).rowCount).toBe(0);
    const { rows } = await runAs(a, () =>
      pool.query<{ tenant_id: string }>('select tenant_id from tenant_event_streams'),
    );
    expect(rows).toEqual([{ tenant_id: a }]);
  });

  it('delivers nothing on forged or garbage doorbells', async () => {
    const routeOfA = (await one.bus.log.head(a)).route;
    const before = { a1: got.a1.events.length, b1: got.b1.events.length };
    for (const payload of [
      routeOfA,
      routeOfA,
      'not a route',
      '0'.repeat(32),
      routeOfA.toUpperCase(),
      'x'.repeat(7000),
    ]) {
      await spy.client.query('select pg_notify($1, $2)', ['tenantry_live', payload]);
    }
    await publish(one.pool, a, { tenant: 'A', mark: 'after-forgery' });
    await got.a1.untilMark('after-forgery');
    expect(got.a1.events.length).toBe(before.a1 + 1);
    expect(got.b1.events.length).toBe(before.b1);
  });

  it("refuses an event for another tenant, or for none, and B's stream is unchanged", async () => {
    const pool = one.pool;
    const before = await db.admin.query('select count(*)::int as n from tenant_events where tenant_id = $1', [b]);
    await expect(
      runAs(a, () => pool.query(`select emit_tenant_event('thing.changed', '{}'::jsonb, $1)`, [b])),
    ).rejects.toMatchObject({ code: '42501' });
    await expect(pool.query(`select emit_tenant_event('thing.changed')`)).rejects.toMatchObject({ code: '42501' });
    await expect(
      runAs(a, () => pool.query('update tenant_events set payload = $2 where tenant_id = $1', [b, '{"x":1}'])),
    ).resolves.toMatchObject({ rowCount: 0 });
    const after = await db.admin.query('select count(*)::int as n from tenant_events where tenant_id = $1', [b]);
    expect(after.rows).toEqual(before.rows);
  });

  it('resumes after a seq (Last-Event-ID): the missed events first, in order, then live ones', async () => {
    const resumed = await subscribe(two.bus, a, { after: 3 });
    const last = (await one.bus.log.head(a)).lastSeq;
    await publish(one.pool, a, { tenant: 'A', mark: 'live-after-resume' });
    await resumed.untilMark('live-after-resume');
    expect(resumed.seqs).toEqual(Array.from({ length: last - 3 + 1 }, (_, i) => i + 4));
    // a client ahead of the log is held at the log's head, not skipped past future events
    const ahead = await subscribe(one.bus, a, { after: 1_000_000 });
    await publish(two.pool, a, { tenant: 'A', mark: 'after-ahead' });
    await ahead.untilMark('after-ahead');
    expect(ahead.seqs).toEqual([last + 2]);
  });

  it('ends a subscriber that falls queueLimit events behind, without holding up the others', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let ended!: (reason: SubscriptionEndReason) => void;
    const endedWith = new Promise<SubscriptionEndReason>((resolve) => (ended = resolve));
    unsubscribes.push(await one.bus.subscribe(b, () => gate, { queueLimit: 2, onEnd: (reason) => ended(reason) }));
    const before = got.b1.events.length;
    for (let i = 0; i < 4; i++) await publish(two.pool, b, { tenant: 'B', n: 100 + i });
    await publish(two.pool, b, { tenant: 'B', mark: 'b-slow' });
    expect(await endedWith).toBe('overflow');
    await got.b1.untilMark('b-slow');
    expect(got.b1.events.length).toBe(before + 5);
    release();
    expect(one.bus.stats().subscribers).toBe(3); // a1, b1 and the one ahead; the slow one is gone
  });

  it('stops delivering after unsubscribe', async () => {
    const gone = new Collector();
    const unsubscribe = await two.bus.subscribe(b, gone.handle);
    await publish(one.pool, b, { tenant: 'B', mark: 'before-unsubscribe' });
    await gone.untilMark('before-unsubscribe');
    unsubscribe();
    unsubscribe();
    await publish(one.pool, b, { tenant: 'B', mark: 'after-unsubscribe' });
    await got.b2.untilMark('after-unsubscribe');
    // (it may also have got events committed just before it subscribed: b-slow)
    expect(gone.events.map((e) => e.payload.mark).at(-1)).toBe('before-unsubscribe');
    expect(gone.events.map((e) => e.payload.mark)).not.toContain('after-unsubscribe');
  });

  it('validates its arguments', async () => {
    await expect(one.bus.subscribe('not-a-uuid', () => undefined)).rejects.toMatchObject({ code: 'INVALID_TENANT_ID' });
    await expect(one.bus.subscribe(a, () => undefined, { after: -1 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(one.bus.subscribe(a, () => undefined, { queueLimit: 0 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});

describe('catch-up, closing and start-up', () => {
  it('replays a resume longer than the queue in batches the subscriber can take, then goes live', async () => {
    const inst = instance();
    const c = await runAs(a, () =>
      inst.pool.query<{ s: string }>('select last_seq::text as s from tenant_event_streams'),
    );
    const head = Number(c.rows[0]!.s);
    let handled = 0;
    const slow = new Collector();
    // a handler that takes its time: each event waits for a turn of the event loop
    const handler = async (event: Parameters<Collector['handle']>[0]) => {
      handled += 1;
      await new Promise<void>((resolve) => setImmediate(resolve));
      slow.handle(event);
    };
    unsubscribes.push(await inst.bus.subscribe(a, handler, { after: 0, queueLimit: 2 }));
    await publish(inst.pool, a, { tenant: 'A', mark: 'after-long-resume' });
    await slow.untilMark('after-long-resume');
    expect(slow.seqs).toEqual(Array.from({ length: head + 1 }, (_, i) => i + 1));
    expect(handled).toBe(head + 1);
  });

  it('ends every subscription when the bus closes, and refuses new ones', async () => {
    const inst = instance();
    const reasons: string[] = [];
    await inst.bus.subscribe(a, () => undefined, { onEnd: (reason) => reasons.push(reason) });
    await inst.bus.subscribe(b, () => undefined, { onEnd: (reason) => reasons.push(reason) });
    await inst.bus.close();
    expect(reasons).toEqual(['bus-closed', 'bus-closed']);
    expect(inst.bus.stats()).toEqual({ tenants: 0, subscribers: 0 });
    await expect(inst.bus.subscribe(a, () => undefined)).rejects.toMatchObject({ code: 'UNSUPPORTED' });
  });

  it('fails start-up when the listener cannot connect', async () => {
    const url = new URL(db.appUrl);
    url.pathname = `/${db.name}_missing`;
    const bus = new TenantEventBus({
      pool: db.appPool(),
      transport: new PostgresLiveTransport({ connectionString: url.toString() }),
    });
    await expect(bus.start()).rejects.toMatchObject({ code: '3D000' });
    await bus.close();
  });
});

describe('the listener connection', () => {
  it('is re-opened after pg_terminate_backend, and the events of the gap arrive, once each, in order', async () => {
    let dropped!: () => void;
    const droppedNow = new Promise<void>((resolve) => (dropped = resolve));
    const listening = instance({
      minDelayMs: 300,
      onError: (error) => (error as { code?: string }).code === '57P01' && dropped(),
    });
    const writer = instance();
    const got = await subscribe(listening.bus, a);
    const oldPid = listening.transport.backendPid;
    expect(oldPid).toBeTypeOf('number');
    const { rows } = await db.admin.query<{ ok: boolean }>('select pg_terminate_backend($1) as ok', [oldPid]);
    expect(rows[0]!.ok).toBe(true);
    await droppedNow;
    // written while the instance has no listener: no NOTIFY reaches it
    for (let i = 0; i < 5; i++) await publish(writer.pool, a, { tenant: 'A', gap: i });
    await publish(writer.pool, a, { tenant: 'A', mark: 'after-gap' });
    await got.untilMark('after-gap');
    expect(got.events.map((e) => e.payload.gap ?? e.payload.mark)).toEqual([0, 1, 2, 3, 4, 'after-gap']);
    const seqs = got.seqs;
    expect(seqs).toEqual(Array.from({ length: 6 }, (_, i) => seqs[0]! + i));
    expect(listening.transport.backendPid).toBeTypeOf('number');
    expect(listening.transport.backendPid).not.toBe(oldPid);
  });
});
