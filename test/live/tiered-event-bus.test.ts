import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { Placements } from '../../src/tiers/placements.js';
import { createTenantDatabase, createTenantSchema, withDatabase } from '../../src/tiers/provision.js';
import { RoutedTenantPool } from '../../src/tiers/routed-tenant-pool.js';
import { TenantRouter } from '../../src/tiers/tenant-router.js';
import {
  liveEmitFunctionSql,
  liveSchemaSql,
  liveTablesSql,
  PostgresLiveTransport,
  RedisLiveTransport,
  TenantEventBus,
  TenantEventLog,
  type LiveTransport,
} from '../../src/live/index.js';
import { ROLE_PASSWORD, createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { Collector, dropRole, listenAsStranger } from './support/live-helpers.js';
import { connect, quitAll, redisReachable } from './support/redis.js';
import { dropDatabase } from '../support/drop-database.js';

// One server, three tenants where their data lives: S in the shared tables, C in its own schema
// (t_c, the tables of liveTablesSql; the function of public follows the search path), D in its own
// database (the event tables and a function of its own). Buses read and append through a
// RoutedTenantPool with unqualified names; the listener is on the home database only, so the
// writers' instances ring (databaseRings: false).

const reachable = await redisReachable();

let db: TestDatabase;
let placements: Placements;
let router: TenantRouter;
let dDatabase: string;
const t: Record<'s' | 'c' | 'd', string> = { s: '', c: '', d: '' };
const home: pg.Pool[] = [];
const pools: RoutedTenantPool[] = [];
const buses: TenantEventBus[] = [];
const unsubscribes: Array<() => void> = [];

async function tenant(slug: string): Promise<string> {
  const { rows } = await db.owner.query<{ id: string }>(
    `insert into tenantry.tenants (slug, name) values ($1, $1) returning id`,
    [slug],
  );
  return rows[0]!.id;
}

function routedPool(maxConnections = 4): RoutedTenantPool {
  const pool = new RoutedTenantPool({
    router,
    clusters: { home: db.appUrl },
    contextSecret: db.contextSecret,
    maxConnections,
  });
  pools.push(pool);
  return pool;
}

function instance(transport: LiveTransport) {
  const pool = routedPool();
  const errors: unknown[] = [];
  const bus = new TenantEventBus({ pool, transport, schema: null, onError: (error) => errors.push(error) });
  buses.push(bus);
  return { pool, bus, errors };
}

async function subscribe(
  bus: TenantEventBus,
  tenantId: string,
  options: Parameters<TenantEventBus['subscribe']>[2] = {},
): Promise<Collector> {
  const collector = new Collector();
  unsubscribes.push(await bus.subscribe(tenantId, collector.handle, options));
  return collector;
}

/** Rows of tenant_events (or tenant_event_streams) per tenant at a location, read as the superuser: the ground truth. */
async function countsAt(where: 'public' | 't_c' | 'd_db', table = 'tenant_events'): Promise<Record<string, number>> {
  const sql = `select tenant_id, count(*)::int as n from ${where === 't_c' ? 't_c' : 'public'}.${table} group by tenant_id`;
  let rows: Array<{ tenant_id: string; n: number }>;
  if (where === 'd_db') {
    const c = new pg.Client({ connectionString: withDatabase(db.adminUrl, dDatabase) });
    await c.connect();
    try {
      rows = (await c.query(sql)).rows;
    } finally {
      await c.end();
    }
  } else rows = (await db.admin.query(sql)).rows;
  return Object.fromEntries(rows.map((r) => [r.tenant_id, r.n]));
}

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(liveSchemaSql({ appRole: db.appRole, followSearchPath: true }));
  t.s = await tenant('live-shared');
  t.c = await tenant('live-schema');
  t.d = await tenant('live-database');
  placements = new Placements({ catalog: db.owner, owners: { home: db.ownerUrl } });
  await createTenantSchema(db.owner, 't_c', liveTablesSql());
  await placements.assign(t.c, { tier: 'schema', cluster: 'home', schema: 't_c' });
  dDatabase = `${db.name}_d`;
  await createTenantDatabase({
    adminUrl: db.adminUrl,
    ownerUrl: db.ownerUrl,
    database: dDatabase,
    ddl: liveSchemaSql({ appRole: db.appRole }),
    appRole: db.appRole,
    ownerRole: db.ownerRole,
    appPassword: ROLE_PASSWORD,
    ownerPassword: ROLE_PASSWORD,
    contextSecret: db.contextSecret,
  });
  await placements.assign(t.d, { tier: 'database', cluster: 'home', database: dDatabase });
  const homePool = new pg.Pool({ connectionString: db.routerUrl, max: 2 });
  home.push(homePool);
  router = new TenantRouter({ pool: homePool });
  await router.start();
});

afterAll(async () => {
  for (const unsubscribe of unsubscribes) unsubscribe();
  await Promise.all(buses.map((bus) => bus.close()));
  await Promise.all(pools.map((pool) => pool.end()));
  await router?.close();
  await placements?.end();
  for (const p of home) await p.end();
  if (db) {
    await dropDatabase(db.admin, dDatabase).catch(() => undefined);
    await db.drop();
  }
});

describe('liveSchemaSql', () => {
  it('is unchanged for existing callers (a migration repeats it byte for byte)', () => {
    const sha = (text: string) => createHash('sha256').update(text).digest('hex');
    expect(sha(liveSchemaSql({ appRole: 'tenantry_app' }))).toBe(
      '596fa2d2b88628fcd02429decb4b5fc89c8e9e71eabe9c4583eeb3b0c435abf6',
    );
    expect(sha(liveSchemaSql({ appRole: 'x_app', schema: 'ev', channel: 'chan_x' }))).toBe(
      'd6f44c4cf36dc586831d70ff19526f506fe9c2178fee33c953540386b0a1cfaa',
    );
    expect(liveSchemaSql({ appRole: 'a', followSearchPath: false })).toBe(liveSchemaSql({ appRole: 'a' }));
  });

  it('follows the search path only when asked: unqualified tables, no pinned path, SECURITY INVOKER', () => {
    const follow = liveEmitFunctionSql({ appRole: 'a', followSearchPath: true, orReplace: true });
    expect(follow).toMatch(/^CREATE OR REPLACE FUNCTION "public"\.emit_tenant_event\(/);
    expect(follow).toContain('SECURITY INVOKER');
    expect(follow).not.toContain('SET search_path');
    expect(follow).toContain('INSERT INTO tenant_event_streams AS s');
    expect(follow).toContain('INSERT INTO tenant_events (');
    expect(follow).toContain("PERFORM pg_catalog.pg_notify('tenantry_live', v_route)");
    expect(liveTablesSql()).not.toContain('"public"');
    expect(liveTablesSql()).not.toContain('FUNCTION');
    expect(liveTablesSql({ schema: 'ev' })).toContain('CREATE TABLE "ev".tenant_events (');
  });
});

describe('a PostgreSQL transport that does not rely on the database ringing: three tiers, two instances', () => {
  let one: ReturnType<typeof instance>;
  let two: ReturnType<typeof instance>;
  let spy: Awaited<ReturnType<typeof listenAsStranger>>;
  const got: Record<'s1' | 's2' | 'c1' | 'c2' | 'd1' | 'd2', Collector> = {} as never;
  const label = { s: 'S', c: 'C', d: 'D' } as const;

  beforeAll(async () => {
    one = instance(new PostgresLiveTransport({ connectionString: db.appUrl, databaseRings: false }));
    two = instance(new PostgresLiveTransport({ connectionString: db.appUrl, databaseRings: false }));
    spy = await listenAsStranger(db, 'tenantry_live');
    for (const key of ['s', 'c', 'd'] as const) {
      got[`${key}1`] = await subscribe(one.bus, t[key]);
      got[`${key}2`] = await subscribe(two.bus, t[key]);
    }
  });

  afterAll(async () => {
    await spy?.close();
    if (spy) await dropRole(inject('adminUrl'), spy.role);
  });

  it('defaults to the database ringing, and says so', () => {
    expect(new PostgresLiveTransport({ connectionString: db.appUrl }).databaseRings).toBe(true);
    expect(one.bus.log).toBeInstanceOf(TenantEventLog);
  });

  it("delivers each tenant's events, live and in order, to its subscribers on both instances, and never another's", async () => {
    const publish = (inst: typeof one, key: 's' | 'c' | 'd', payload: Record<string, unknown>) =>
      runAs(t[key], () => inst.bus.publish('thing.changed', { tenant: label[key], ...payload }));
    // interleaved writers of the three tiers on both instances
    await Promise.all(
      (['s', 'c', 'd'] as const).flatMap((key) =>
        Array.from({ length: 6 }, (_, i) => publish(i % 2 ? one : two, key, { n: i })),
      ),
    );
    // sync point: a last event per tenant, written after the others committed
    for (const key of ['s', 'c', 'd'] as const) await publish(key === 'c' ? one : two, key, { mark: `${key}-done` });
    await Promise.all(
      (['s', 'c', 'd'] as const).flatMap((key) => [
        got[`${key}1`].untilMark(`${key}-done`),
        got[`${key}2`].untilMark(`${key}-done`),
      ]),
    );

    for (const key of ['s', 'c', 'd'] as const) {
      for (const c of [got[`${key}1`], got[`${key}2`]]) {
        expect(c.seqs).toEqual([1, 2, 3, 4, 5, 6, 7]);
        expect(c.events.every((e) => e.payload.tenant === label[key])).toBe(true);
        expect(
          c.events
            .map((e) => e.payload.n)
            .filter((n) => n !== undefined)
            .sort(),
        ).toEqual([0, 1, 2, 3, 4, 5]);
      }
    }
    expect(one.errors).toEqual([]);
    expect(two.errors).toEqual([]);
  });

  it("keeps each tenant's events where its data lives: C's in t_c and not in public, D's in its own database", async () => {
    expect(await countsAt('public')).toEqual({ [t.s]: 7 });
    expect(await countsAt('t_c')).toEqual({ [t.c]: 7 });
    expect(await countsAt('d_db')).toEqual({ [t.d]: 7 });
    expect(await countsAt('public', 'tenant_event_streams')).toEqual({ [t.s]: 1 });
    expect(await countsAt('t_c', 'tenant_event_streams')).toEqual({ [t.c]: 1 });
    expect(await countsAt('d_db', 'tenant_event_streams')).toEqual({ [t.d]: 1 });
  });

  it('one pooled session serving a shared and a schema tenant in turn writes each into its own tables', async () => {
    // one connection for both (same database): the function's cached plans follow each statement's search path
    const single = routedPool(1);
    const log = new TenantEventLog(single, { schema: null });
    const pid = async (tenantId: string) =>
      (await runAs(tenantId, () => single.query<{ pid: number }>('select pg_backend_pid() as pid'))).rows[0]!.pid;
    const first = await pid(t.s);
    for (const [i, key] of (['s', 'c', 's', 'c'] as const).entries())
      await runAs(t[key], () => log.append('thing.changed', { tenant: label[key], mark: `single-${key}-${i}` }));
    expect(await pid(t.c)).toBe(first);
    expect(await countsAt('public')).toEqual({ [t.s]: 9 });
    expect(await countsAt('t_c')).toEqual({ [t.c]: 9 });
    // (the home database rang for these two itself: the LISTEN connections are on it)
    await Promise.all([
      got.s1.untilMark('single-s-2'),
      got.s2.untilMark('single-s-2'),
      got.c1.untilMark('single-c-3'),
      got.c2.untilMark('single-c-3'),
    ]);
  });

  it("rings after the caller's own transaction with announce(): a database-tier tenant's event, committed with its change", async () => {
    const before = got.d2.events.length;
    await runAs(t.d, async () => {
      const client = await one.pool.connect();
      try {
        await client.query('begin');
        await one.bus.publish('thing.changed', { tenant: 'D', mark: 'in-transaction' }, client);
        await client.query('commit');
      } finally {
        client.release();
      }
      await one.bus.announce();
    });
    await Promise.all([got.d1.untilMark('in-transaction'), got.d2.untilMark('in-transaction')]);
    expect(got.d2.events.length).toBe(before + 1);
  });

  it("puts only routes on the channel, and a forged doorbell (another tenant's route, garbage) delivers nothing foreign", async () => {
    await spy.client.query('select 1'); // notifications queued before this answer have been read
    expect(spy.seen.length).toBeGreaterThan(0);
    for (const n of spy.seen) {
      expect(n.payload).toMatch(/^[0-9a-f]{32}$/);
      for (const id of Object.values(t)) expect(n.payload).not.toContain(id.replace(/-/g, '').slice(0, 12));
    }
    const routes = await Promise.all(
      (['s', 'c', 'd'] as const).map(async (key) => (await one.bus.log.head(t[key])).route),
    );
    expect(new Set(routes).size).toBe(3);
    const counts = Object.fromEntries(Object.entries(got).map(([k, c]) => [k, c.events.length]));
    for (const payload of [...routes, ...routes, 'not a route', '0'.repeat(32), routes[2]!.toUpperCase()]) {
      await spy.client.query('select pg_notify($1, $2)', ['tenantry_live', payload]);
    }
    // sync point: one more event for S, rung after the forgeries
    await runAs(t.s, () => two.bus.publish('thing.changed', { tenant: 'S', mark: 'after-forgery' }));
    await Promise.all([got.s1.untilMark('after-forgery'), got.s2.untilMark('after-forgery')]);
    for (const [key, c] of Object.entries(got)) {
      expect(c.events.length).toBe(counts[key]! + (key.startsWith('s') ? 1 : 0));
      expect(c.events.every((e) => e.payload.tenant === label[key[0] as 's' | 'c' | 'd'])).toBe(true);
    }
  });

  it('resumes a database-tier tenant after a seq: the missed events first, in order, then live ones', async () => {
    const last = (await two.bus.log.head(t.d)).lastSeq;
    const resumed = await subscribe(two.bus, t.d, { after: 2 });
    await runAs(t.d, () => one.bus.publish('thing.changed', { tenant: 'D', mark: 'after-resume' }));
    await resumed.untilMark('after-resume');
    expect(resumed.seqs).toEqual(Array.from({ length: last - 1 }, (_, i) => i + 3));
    expect(resumed.events.every((e) => e.payload.tenant === 'D')).toBe(true);
  });

  it('follows a tenant re-placed while the routers still hold its old route: refused there (TR003), refreshed, served at the new place', async () => {
    const e = await tenant('live-moved');
    const got1 = await subscribe(one.bus, e);
    await runAs(e, () => two.bus.publish('thing.changed', { tenant: 'E', mark: 'e-before' }));
    await got1.untilMark('e-before');
    expect(router.peek(e)).toMatchObject({ tier: 'shared', epoch: 0 });
    // the data moved by hand (as a move would copy it: route and last_seq come along), then the route switched
    await createTenantSchema(db.owner, 't_e', liveTablesSql());
    for (const table of ['tenant_event_streams', 'tenant_events']) {
      await db.admin.query(`insert into t_e.${table} select * from public.${table} where tenant_id = $1`, [e]);
      await db.admin.query(`delete from public.${table} where tenant_id = $1`, [e]);
    }
    await placements.assign(e, { tier: 'schema', cluster: 'home', schema: 't_e' });
    expect(router.peek(e)).toMatchObject({ tier: 'shared', epoch: 0 }); // this router listens to nothing: still stale
    await runAs(e, () => two.bus.publish('thing.changed', { tenant: 'E', mark: 'e-after' }));
    await got1.untilMark('e-after');
    expect(got1.seqs).toEqual([1, 2]);
    expect(router.peek(e)).toMatchObject({ tier: 'schema', schema: 't_e' });
    expect(await countsAt('public')).not.toHaveProperty(e);
    expect(
      (await db.admin.query('select count(*)::int as n from t_e.tenant_events where tenant_id = $1', [e])).rows[0].n,
    ).toBe(2);
  });

  it("refuses an event for another tenant in every tier, and the other tenant's log is unchanged", async () => {
    const before = [await countsAt('public'), await countsAt('t_c'), await countsAt('d_db')];
    for (const [writer, victim] of [
      ['s', 'c'],
      ['c', 's'],
      ['c', 'd'],
      ['d', 's'],
    ] as const) {
      await expect(
        runAs(t[writer], () =>
          // named qualified: a schema-tier tenant's search path holds its own schema alone
          one.pool.query(`select public.emit_tenant_event('thing.changed', '{}'::jsonb, $1)`, [t[victim]]),
        ),
      ).rejects.toMatchObject({ code: '42501' });
    }
    expect([await countsAt('public'), await countsAt('t_c'), await countsAt('d_db')]).toEqual(before);
  });
});

describe.skipIf(!reachable)('the same over Redis', () => {
  const opened: Redis[] = [];
  const mine: TenantEventBus[] = [];
  // one channel per test file: test files run at the same time on the same Redis
  const channel = `tenantry:live:test:${randomBytes(4).toString('hex')}`;

  afterAll(async () => {
    await Promise.all(mine.map((bus) => bus.close()));
    await quitAll(opened);
  });

  it("delivers each tier's events to its own subscribers only, across instances", async () => {
    const [one, two] = [0, 1].map(() =>
      instance(new RedisLiveTransport({ subscriber: connect(opened), publisher: connect(opened), channel })),
    );
    mine.push(one!.bus, two!.bus);
    const got = {
      s: await subscribe(two!.bus, t.s),
      c: await subscribe(two!.bus, t.c),
      d: await subscribe(two!.bus, t.d),
    };
    const heads = {
      s: (await one!.bus.log.head(t.s)).lastSeq,
      c: (await one!.bus.log.head(t.c)).lastSeq,
      d: (await one!.bus.log.head(t.d)).lastSeq,
    };
    for (let i = 0; i < 3; i++)
      for (const key of ['d', 'c', 's'] as const)
        await runAs(t[key], () =>
          one!.bus.publish('thing.changed', { tenant: key, n: i, ...(i === 2 ? { mark: 'redis-done' } : {}) }),
        );
    await Promise.all(Object.values(got).map((c) => c.untilMark('redis-done')));
    for (const key of ['s', 'c', 'd'] as const) {
      expect(got[key].seqs).toEqual([1, 2, 3].map((n) => heads[key] + n));
      expect(got[key].events.map((e) => e.payload.tenant)).toEqual([key, key, key]);
    }
    expect(one!.errors).toEqual([]);
    expect(two!.errors).toEqual([]);
  });
});
