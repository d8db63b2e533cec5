// RoutedTenantPool's routeCheck (issue 15): in signed mode, while its router hears every route
// change, the prefix is the plain one (plus a schema tier's search path) and the route is checked
// by the tenant tables' policy alone (the signed check: route epoch and hold). These tests pin what
// that must still refuse, from the other tenants' side too: a statement on a stale route after a
// move (retried at the new place, nothing changed at the old one), a schema-tier tenant whose old
// schema now belongs to another tenant, and which prefix 'auto' sends when.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { Placements } from '../../src/tiers/placements.js';
import { createTenantSchema } from '../../src/tiers/provision.js';
import { RoutedTenantPool, isRetryableRouteError } from '../../src/tiers/routed-tenant-pool.js';
import { TenantRouter } from '../../src/tiers/tenant-router.js';
import { NOTES_DDL } from '../support/notes-table.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { insertInTransaction } from './support/insert-in-transaction.js';

let db: TestDatabase;
let placements: Placements;
let home: pg.Pool;
const ends: Array<{ end(): Promise<void> } | { close(): Promise<void> }> = [];

async function tenant(slug: string): Promise<string> {
  const { rows } = await db.owner.query<{ id: string }>(
    `insert into tenantry.tenants (slug, name) values ($1, $1) returning id`,
    [slug],
  );
  return rows[0]!.id;
}

/** A router that hears nothing (its cache goes stale) and a pool that leaves the route to the policy. */
function staleInstance(): { router: TenantRouter; pool: RoutedTenantPool } {
  const router = new TenantRouter({ pool: home });
  const pool = new RoutedTenantPool({
    router,
    clusters: { home: db.appUrl },
    contextSecret: db.contextSecret,
    routeCheck: 'policy',
  });
  ends.push(pool);
  return { router, pool };
}

/** Every note, per schema, read as the superuser: the ground truth. */
async function notes(schema: string): Promise<Array<{ tenant_id: string; body: string }>> {
  return (await db.admin.query(`select tenant_id, body from ${schema}.notes order by tenant_id, body`)).rows;
}

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(NOTES_DDL);
  placements = new Placements({ catalog: db.owner, owners: { home: db.ownerUrl } });
  home = new pg.Pool({ connectionString: db.routerUrl, max: 4 });
});

afterAll(async () => {
  for (const e of ends.reverse()) await ('end' in e ? e.end() : e.close()).catch(() => undefined);
  await placements?.end();
  await home?.end();
  await db?.drop();
});

describe('routeCheck policy: a stale route is still refused where the tenant no longer lives', () => {
  it('after a move: refused at the old place (TR003), retried at the new one; nothing changed at the old place, nor for the tenant next to it', async () => {
    const m = await tenant('policy-m');
    const o = await tenant('policy-o');
    const { router, pool } = staleInstance();
    await runAs(m, () => pool.query(`insert into notes (body) values ('m old')`));
    await runAs(o, () => pool.query(`insert into notes (body) values ('o1')`));
    expect(router.peek(m)?.epoch).toBe(0);
    // a move: M's rows copied to its schema, then the switch; the old place keeps them (grace)
    await createTenantSchema(db.owner, 't_pm', NOTES_DDL);
    await db.owner.query(
      `insert into t_pm.notes (tenant_id, id, body) select tenant_id, id, body from public.notes where tenant_id = $1`,
      [m],
    );
    await placements.assign(m, { tier: 'schema', cluster: 'home', schema: 't_pm' });
    expect(router.peek(m)?.epoch).toBe(0); // still stale
    const done = await runAs(m, () => pool.query(`update notes set body = 'm new'`));
    expect(done.rowCount).toBe(1);
    expect(router.peek(m)?.schema).toBe('t_pm');
    expect(await notes('t_pm')).toEqual([{ tenant_id: m, body: 'm new' }]);
    expect(await notes('public')).toEqual(
      [
        { tenant_id: m, body: 'm old' },
        { tenant_id: o, body: 'o1' },
      ].sort((x, y) => x.tenant_id.localeCompare(y.tenant_id)),
    );
  });

  it('inside a transaction the refusal reaches the caller, retryable, and nothing was written', async () => {
    const n = await tenant('policy-n');
    const { router, pool } = staleInstance();
    await runAs(n, () => pool.query('select count(*) from notes'));
    await createTenantSchema(db.owner, 't_pn', NOTES_DDL);
    await placements.assign(n, { tier: 'schema', cluster: 'home', schema: 't_pn' });
    const transaction = () => insertInTransaction(pool, n, 'in a transaction');
    const first = await transaction().catch((e: unknown) => e);
    expect(isRetryableRouteError(first)).toBe(true);
    expect(router.peek(n)?.schema).toBe('t_pn'); // refreshed for the caller's retry
    expect(
      (await db.admin.query('select count(*)::int as n from public.notes where tenant_id = $1', [n])).rows[0].n,
    ).toBe(0);
    await transaction();
    expect(await notes('t_pn')).toEqual([{ tenant_id: n, body: 'in a transaction' }]);
  });

  it('a schema-tier tenant on a stale route cannot reach the rows of the tenant its old schema now belongs to', async () => {
    const s = await tenant('policy-s');
    const x = await tenant('policy-x');
    await createTenantSchema(db.owner, 't_ph', NOTES_DDL);
    await placements.assign(s, { tier: 'schema', cluster: 'home', schema: 't_ph' });
    // instances whose routers cached S in t_ph, one per statement tried below (each goes stale once)
    const stale = Array.from({ length: 5 }, staleInstance);
    for (const { router } of stale) expect((await router.resolve(s)).schema).toBe('t_ph');
    await runAs(s, () => stale[0]!.pool.query(`insert into notes (body) values ('s1')`));
    // S moves to t_ps2; its old schema is dropped and made again for X, with X's rows
    await createTenantSchema(db.owner, 't_ps2', NOTES_DDL);
    await db.owner.query(`insert into t_ps2.notes (tenant_id, id, body) select tenant_id, id, body from t_ph.notes`);
    await placements.assign(s, { tier: 'schema', cluster: 'home', schema: 't_ps2' });
    await db.admin.query('drop schema t_ph cascade');
    await createTenantSchema(db.owner, 't_ph', NOTES_DDL, { tenant: x });
    await placements.assign(x, { tier: 'schema', cluster: 'home', schema: 't_ph' });
    const xId = (
      await db.owner.query<{ id: string }>(`insert into t_ph.notes (tenant_id, body) values ($1, 'x1') returning id`, [
        x,
      ])
    ).rows[0]!.id;
    const xBefore = await notes('t_ph');
    expect(xBefore).toEqual([{ tenant_id: x, body: 'x1' }]);

    const [read, update, byId, insert, remove] = stale.map((i) => i.pool);
    // each on S's stale search path (t_ph, now X's): refused there by X's table's policy, retried in t_ps2
    const rows = await runAs(s, () => read!.query<{ body: string }>('select body from notes'));
    expect(rows.rows.map((r) => r.body)).toEqual(['s1']);
    expect((await runAs(s, () => update!.query(`update notes set body = 's1 updated'`))).rowCount).toBe(1);
    // X's row found by id at the old place: the policy runs on it and refuses; at S's place no such row
    expect((await runAs(s, () => byId!.query(`update notes set body = 'owned' where id = $1`, [xId]))).rowCount).toBe(
      0,
    );
    await runAs(s, () => insert!.query(`insert into notes (body) values ('s2')`));
    expect((await runAs(s, () => remove!.query(`delete from notes where body = 's2'`))).rowCount).toBe(1);
    expect(await notes('t_ph')).toEqual(xBefore);
    expect(await notes('t_ps2')).toEqual([{ tenant_id: s, body: 's1 updated' }]);
  });

  it('a schema-tier route whose schema was dropped (42P01 there) is refreshed and retried, once the route changed', async () => {
    const d = await tenant('policy-d');
    await createTenantSchema(db.owner, 't_pd', NOTES_DDL);
    await placements.assign(d, { tier: 'schema', cluster: 'home', schema: 't_pd' });
    const { router, pool } = staleInstance();
    await router.resolve(d);
    await placements.assign(d, { tier: 'shared', cluster: 'home' });
    await db.admin.query('drop schema t_pd cascade');
    await runAs(d, () => pool.query(`insert into notes (body) values ('d1')`));
    expect(await runAs(d, () => pool.query<{ body: string }>('select body from notes')).then((r) => r.rows)).toEqual([
      { body: 'd1' },
    ]);
    // a table missing where the tenant does live is the caller's error, as before (no retry loop)
    await expect(runAs(d, () => pool.query('select * from no_such_table'))).rejects.toMatchObject({ code: '42P01' });
  });
});

/** Whether the prefix calls tenantry.enter_route: with EXECUTE revoked, it fails 42501. */
async function withoutEnterRoute<T>(fn: () => Promise<T>): Promise<T> {
  await db.admin.query(`revoke execute on function tenantry.enter_route(text, text) from ${db.appRole}`);
  try {
    return await fn();
  } finally {
    await db.admin.query(`grant execute on function tenantry.enter_route(text, text) to ${db.appRole}`);
  }
}

describe("routeCheck 'auto'", () => {
  it('leaves the check to the policy while the router hears every change, and checks in the prefix otherwise', async () => {
    const a = await tenant('auto-a');
    const listening = new TenantRouter({ pool: home, listenConnectionString: db.routerUrl });
    const deaf = new TenantRouter({ pool: home });
    const heard = new RoutedTenantPool({
      router: listening,
      clusters: { home: db.appUrl },
      contextSecret: db.contextSecret,
    });
    const unheard = new RoutedTenantPool({
      router: deaf,
      clusters: { home: db.appUrl },
      contextSecret: db.contextSecret,
    });
    const strict = new RoutedTenantPool({
      router: listening,
      clusters: { home: db.appUrl },
      contextSecret: db.contextSecret,
      routeCheck: 'prefix',
    });
    ends.push(heard, unheard, strict);
    await listening.start();
    ends.push(listening);
    expect(listening.hearing).toBe(true);
    expect(deaf.hearing).toBe(false);
    const count = (pool: RoutedTenantPool) => runAs(a, () => pool.query('select count(*)::int as n from notes'));
    await withoutEnterRoute(async () => {
      await expect(count(heard)).resolves.toMatchObject({ rowCount: 1 });
      await expect(count(unheard)).rejects.toMatchObject({ code: '42501' });
      await expect(count(strict)).rejects.toMatchObject({ code: '42501' });
    });
    await listening.close();
    expect(listening.hearing).toBe(false);
    await withoutEnterRoute(() => expect(count(heard)).rejects.toMatchObject({ code: '42501' }));
    // and each is served once enter_route may run again
    for (const pool of [heard, unheard, strict]) await expect(count(pool)).resolves.toMatchObject({ rowCount: 1 });
  });

  it('a listening router also catches up on a timer (a lost notification is made up for), and hears meanwhile', async () => {
    let reads = 0;
    const counting = {
      query: (text: string, values?: unknown[]) => {
        if (text.includes('routes_since')) reads++;
        return home.query(text, values);
      },
    } as unknown as pg.Pool;
    const router = new TenantRouter({ pool: counting, listenConnectionString: db.routerUrl, catchUpIntervalMs: 40 });
    await router.start();
    try {
      const after = reads;
      await new Promise((resolve) => setTimeout(resolve, 250));
      expect(reads - after).toBeGreaterThanOrEqual(2);
      // false only while a catch-up is being read (one every 40 ms here): true between them
      let heard = false;
      for (let i = 0; i < 200 && !heard; i++) {
        heard = router.hearing;
        if (!heard) await new Promise((resolve) => setTimeout(resolve, 2));
      }
      expect(heard).toBe(true);
    } finally {
      await router.close();
    }
    const closed = reads;
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(reads).toBe(closed);
    expect(() => new TenantRouter({ pool: home, catchUpIntervalMs: 0 })).toThrow(/catchUpIntervalMs/);
  });

  it('routeCheck policy: a schema-tier tenant gets its search path from the prefix without enter_route', async () => {
    const b = await tenant('auto-b');
    await createTenantSchema(db.owner, 't_ab', NOTES_DDL);
    await placements.assign(b, { tier: 'schema', cluster: 'home', schema: 't_ab' });
    const { pool } = staleInstance();
    const path = await withoutEnterRoute(async () => {
      await runAs(b, () => pool.query(`insert into notes (body) values ('b1')`));
      return runAs(b, () => pool.query<{ path: string }>('select current_setting($1) as path', ['search_path']));
    });
    expect(path.rows[0]!.path).toBe('"t_ab"');
    // the named form (parsed once per connection, then bound), with a statement timeout and a tag
    const named = new RoutedTenantPool({
      router: new TenantRouter({ pool: home }),
      clusters: { home: db.appUrl },
      contextSecret: db.contextSecret,
      routeCheck: 'policy',
      prepareContextStatement: true,
      statementTimeoutMs: 4000,
      activityTag: true,
      maxConnections: 1,
    });
    ends.push(named);
    await withoutEnterRoute(async () => {
      for (let i = 0; i < 3; i++) {
        const r = await runAs(b, () =>
          named.query<{ path: string; body: string; timeout: string }>(
            `select current_setting('search_path') as path, current_setting('statement_timeout') as timeout, body from notes`,
          ),
        );
        expect(r.rows).toEqual([{ path: '"t_ab"', timeout: '4s', body: 'b1' }]);
      }
    });
    expect(await notes('t_ab')).toEqual([{ tenant_id: b, body: 'b1' }]);
    // transaction-local: a statement without a tenant on the pool's connections is back on the default
    const after = await pool.query<{ path: string }>('select current_setting($1) as path', ['search_path']);
    expect(after.rows[0]!.path).not.toContain('t_ab');
  });
});

describe('a hearing router and changes that commit out of epoch order (try-out F1)', () => {
  it('applies a change whose epoch is below one it already read, from its notification, without waiting for the periodic catch-up', async () => {
    const m = await tenant('order-m');
    const y = await tenant('order-y');
    await createTenantSchema(db.owner, 't_om', NOTES_DDL);
    await createTenantSchema(db.owner, 't_oy', NOTES_DDL);
    await placements.assign(m, { tier: 'schema', cluster: 'home', schema: 't_om' });
    await placements.assign(y, { tier: 'schema', cluster: 'home', schema: 't_oy' });
    const router = new TenantRouter({ pool: home, listenConnectionString: db.routerUrl, catchUpIntervalMs: 600_000 });
    ends.push(router);
    await router.start();
    const before = { m: (await router.resolve(m)).epoch, y: (await router.resolve(y)).epoch };
    // M's change takes its epoch first and commits last (a slow switch); Y's commits in between
    const slow = new pg.Client({ connectionString: db.ownerUrl });
    await slow.connect();
    try {
      await slow.query('begin');
      await slow.query('update tenantry.placements set epoch = epoch where tenant_id = $1', [m]);
      await db.owner.query('update tenantry.placements set epoch = epoch where tenant_id = $1', [y]);
      await expect.poll(() => router.peek(y)?.epoch, { timeout: 5_000 }).toBeGreaterThan(before.y);
      await slow.query('commit');
    } finally {
      await slow.end();
    }
    const { rows } = await db.owner.query<{ epoch: string }>(
      'select epoch from tenantry.placements where tenant_id = $1',
      [m],
    );
    const epochOfM = Number(rows[0]!.epoch);
    expect(epochOfM).toBeLessThan(router.peek(y)!.epoch);
    await expect.poll(() => router.peek(m)?.epoch, { timeout: 5_000 }).toBe(epochOfM);
    expect(router.hearing).toBe(true);
  });
});
