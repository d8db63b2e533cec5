import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { TenantPool } from '../../src/data/tenant-pool.js';
import { Placements } from '../../src/tiers/placements.js';
import { createTenantDatabase, createTenantSchema, withDatabase } from '../../src/tiers/provision.js';
import { RoutedTenantPool } from '../../src/tiers/routed-tenant-pool.js';
import { TenantRouter } from '../../src/tiers/tenant-router.js';
import { NOTES_DDL } from '../support/notes-table.js';
import { ROLE_PASSWORD, createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { dropDatabase } from '../support/drop-database.js';
import { insertInTransaction } from './support/insert-in-transaction.js';

// Three tiers in one run: A in the shared tables, B in its own schema, C in its own database.

let db: TestDatabase;
let placements: Placements;
let router: TenantRouter;
let pool: RoutedTenantPool;
const tenants: Record<'a' | 'b' | 'c' | 'd', string> = { a: '', b: '', c: '', d: '' };
let cDatabase: string;
const extra: pg.Pool[] = [];

async function tenant(slug: string): Promise<string> {
  const { rows } = await db.owner.query<{ id: string }>(
    `insert into tenantry.tenants (slug, name) values ($1, $1) returning id`,
    [slug],
  );
  return rows[0]!.id;
}

/** Every note body per location, read as the superuser: the ground truth. */
async function notesAt(where: 'public' | 'b_schema' | 'c_db'): Promise<Array<{ tenant_id: string; body: string }>> {
  if (where === 'c_db') {
    const c = new pg.Client({ connectionString: withDatabase(db.adminUrl, cDatabase) });
    await c.connect();
    try {
      return (await c.query('select tenant_id, body from notes order by body')).rows;
    } finally {
      await c.end();
    }
  }
  return (
    await db.admin.query(
      `select tenant_id, body from ${where === 'public' ? 'public.notes' : 't_b.notes'} order by body`,
    )
  ).rows;
}

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(NOTES_DDL);
  tenants.a = await tenant('tier-a');
  tenants.b = await tenant('tier-b');
  tenants.c = await tenant('tier-c');
  tenants.d = await tenant('tier-d');
  placements = new Placements({ catalog: db.owner, owners: { home: db.ownerUrl } });
  await createTenantSchema(db.owner, 't_b', NOTES_DDL);
  await placements.assign(tenants.b, { tier: 'schema', cluster: 'home', schema: 't_b' });
  cDatabase = `${db.name}_c`;
  await createTenantDatabase({
    adminUrl: db.adminUrl,
    ownerUrl: db.ownerUrl,
    database: cDatabase,
    ddl: NOTES_DDL,
    appRole: db.appRole,
    ownerRole: db.ownerRole,
    appPassword: ROLE_PASSWORD,
    ownerPassword: ROLE_PASSWORD,
    contextSecret: db.contextSecret,
  });
  await placements.assign(tenants.c, { tier: 'database', cluster: 'home', database: cDatabase });
  const home = new pg.Pool({ connectionString: db.routerUrl, max: 2 });
  extra.push(home);
  router = new TenantRouter({ pool: home });
  await router.start();
  pool = new RoutedTenantPool({
    router,
    clusters: { home: db.appUrl },
    contextSecret: db.contextSecret,
    maxConnections: 4,
  });
});

afterAll(async () => {
  await pool?.end();
  await router?.close();
  await placements?.end();
  for (const p of extra) await p.end();
  if (db) {
    await dropDatabase(db.admin, cDatabase).catch(() => undefined);
    await db.drop();
  }
});

describe('routing by tier', () => {
  it('sends each tenant to where it lives; application code is the same for every tier', async () => {
    for (const [key, t] of Object.entries(tenants).slice(0, 3)) {
      await runAs(t, () => pool.query('insert into notes (body) values ($1)', [`note of ${key}`]));
    }
    expect(await notesAt('public')).toEqual([{ tenant_id: tenants.a, body: 'note of a' }]);
    expect(await notesAt('b_schema')).toEqual([{ tenant_id: tenants.b, body: 'note of b' }]);
    expect(await notesAt('c_db')).toEqual([{ tenant_id: tenants.c, body: 'note of c' }]);
    for (const [key, t] of Object.entries(tenants).slice(0, 3)) {
      const { rows } = await runAs(t, () => pool.query<{ body: string }>('select body from notes'));
      expect(rows.map((r) => r.body)).toEqual([`note of ${key}`]);
    }
    const routes = await Promise.all([tenants.a, tenants.b, tenants.c].map((t) => router.resolve(t)));
    expect(routes.map((r) => [r.tier, r.location, r.schema])).toEqual([
      ['shared', 'home/', null],
      ['schema', 'home/', 't_b'],
      ['database', `home/${cDatabase}`, null],
    ]);
  });

  it("a schema tenant's search path lives only as long as the statement's transaction", async () => {
    // one connection: B's statement, then a statement without a tenant on the very same session
    const single = new RoutedTenantPool({
      router,
      clusters: { home: db.appUrl },
      contextSecret: db.contextSecret,
      maxConnections: 1,
      // the self-test opens connections of its own in the background: through pgbouncer, the
      // follow-up statement could then get another server connection and prove nothing
      poolerSelfTest: false,
    });
    try {
      const during = await runAs(tenants.b, () =>
        single.query<{ path: string; pid: number }>('select current_setting($1) as path, pg_backend_pid() as pid', [
          'search_path',
        ]),
      );
      expect(during.rows[0]!.path).toContain('t_b');
      const after = await single.query<{ path: string; pid: number }>(
        'select current_setting($1) as path, pg_backend_pid() as pid',
        ['search_path'],
      );
      expect(after.rows[0]!.pid).toBe(during.rows[0]!.pid);
      expect(after.rows[0]!.path).not.toContain('t_b');
    } finally {
      await single.end();
    }
  });

  it('the second wall stands in every tier: a tenant naming another tier by hand reads nothing, writes nothing', async () => {
    const { rows } = await runAs(tenants.a, () => pool.query('select count(*)::int as n from t_b.notes'));
    expect(rows[0]!.n).toBe(0);
    await expect(
      runAs(tenants.a, () => pool.query(`insert into t_b.notes (tenant_id, body) values ($1, 'planted')`, [tenants.b])),
    ).rejects.toMatchObject({ code: '42501' });
    // B's context is only valid on B's route: B on the shared tables (epoch 0) is refused, not served
    const plain = new TenantPool({ connectionString: db.appUrl, contextSecret: db.contextSecret, max: 1 });
    extra.push(plain);
    await expect(runAs(tenants.b, () => plain.query('select count(*) from public.notes'))).rejects.toMatchObject({
      code: 'TR003',
    });
    // and C, who lives elsewhere, is refused in the home database
    await expect(runAs(tenants.c, () => plain.query('select count(*) from public.notes'))).rejects.toMatchObject({
      code: 'TR003',
    });
    expect(await notesAt('b_schema')).toEqual([{ tenant_id: tenants.b, body: 'note of b' }]);
  });

  it('without a tenant, nothing is visible in any tier', async () => {
    expect((await pool.query('select count(*)::int as n from notes')).rows[0].n).toBe(0);
    expect((await pool.query('select count(*)::int as n from t_b.notes')).rows[0].n).toBe(0);
  });
});

describe('stale routes', () => {
  it('a write on a stale cached route is refused by the database, then retried on the new route: not lost, not misplaced', async () => {
    // the router has D's default route cached, and hears nothing (no LISTEN connection)
    await runAs(tenants.d, () => pool.query(`insert into notes (body) values ('d before')`));
    expect(router.peek(tenants.d)?.epoch).toBe(0);
    await db.admin.query(`delete from public.notes where tenant_id = $1`, [tenants.d]);
    await createTenantSchema(db.owner, 't_d', NOTES_DDL);
    await placements.assign(tenants.d, { tier: 'schema', cluster: 'home', schema: 't_d' });
    expect(router.peek(tenants.d)?.epoch).toBe(0); // still stale
    await runAs(tenants.d, () => pool.query(`insert into notes (body) values ('d after')`));
    expect(router.peek(tenants.d)?.schema).toBe('t_d');
    expect((await db.admin.query('select body from t_d.notes')).rows).toEqual([{ body: 'd after' }]);
    expect(
      (await db.admin.query('select count(*)::int as n from public.notes where tenant_id = $1', [tenants.d])).rows[0].n,
    ).toBe(0);
  });

  it('inside a transaction the refusal reaches the caller, retryable', async () => {
    const { isRetryableRouteError } = await import('../../src/tiers/routed-tenant-pool.js');
    const client = await runAs(tenants.d, () => pool.connect());
    try {
      await placements.assign(tenants.d, { tier: 'schema', cluster: 'home', schema: 't_d' }); // a new epoch, same place
      const error = await runAs(tenants.d, () => client.query('select count(*) from notes')).catch((e: unknown) => e);
      expect(isRetryableRouteError(error)).toBe(true);
    } finally {
      client.release();
    }
    // a retry through the pool refreshes the route
    expect(
      (await runAs(tenants.d, () => pool.query<{ n: number }>('select count(*)::int as n from notes'))).rows[0]!.n,
    ).toBe(1);
  });

  it('a frozen tenant waits, then is served once unfrozen; frozen for too long it fails with TENANT_FROZEN', async () => {
    const route = await router.resolve(tenants.d);
    await placements.setLocalState(
      { tier: 'schema', cluster: 'home', schema: 't_d' },
      tenants.d,
      'frozen',
      route.epoch,
    );
    const waiting = runAs(tenants.d, () => pool.query<{ n: number }>('select count(*)::int as n from notes'));
    setTimeout(
      () =>
        void placements.setLocalState(
          { tier: 'schema', cluster: 'home', schema: 't_d' },
          tenants.d,
          'active',
          route.epoch,
        ),
      150,
    );
    expect((await waiting).rows[0]!.n).toBe(1);

    const short = new RoutedTenantPool({
      router,
      clusters: { home: db.appUrl },
      contextSecret: db.contextSecret,
      freezeWaitMs: 100,
    });
    try {
      await placements.setLocalState(
        { tier: 'schema', cluster: 'home', schema: 't_d' },
        tenants.d,
        'frozen',
        route.epoch,
      );
      await expect(
        runAs(tenants.d, () => short.query(`insert into notes (body) values ('during freeze')`)),
      ).rejects.toMatchObject({ code: 'TENANT_FROZEN', status: 503 });
      expect(
        (await db.admin.query(`select count(*)::int as n from t_d.notes where body = 'during freeze'`)).rows[0].n,
      ).toBe(0);
    } finally {
      await placements.setLocalState(
        { tier: 'schema', cluster: 'home', schema: 't_d' },
        tenants.d,
        'active',
        route.epoch,
      );
      await short.end();
    }
  });

  it('routers hear a move at once through LISTEN/NOTIFY on the catalog', async () => {
    const home = new pg.Pool({ connectionString: db.routerUrl, max: 2 });
    extra.push(home);
    // LISTEN needs a session of its own: straight to the server, also when the pool goes through pgbouncer
    const listening = new TenantRouter({ pool: home, listenConnectionString: db.routerUrl });
    await listening.start();
    try {
      const before = await listening.resolve(tenants.a);
      await createTenantSchema(db.owner, 't_a', NOTES_DDL);
      const epoch = await placements.assign(tenants.a, { tier: 'schema', cluster: 'home', schema: 't_a' });
      for (let i = 0; i < 100 && listening.peek(tenants.a)?.epoch !== epoch; i++)
        await new Promise((resolve) => setTimeout(resolve, 20));
      expect(listening.peek(tenants.a)).toMatchObject({ tier: 'schema', schema: 't_a', epoch });
      expect(before.epoch).toBe(0);
      // no tenant id travels on the channel: the payload is the epoch alone
      const spy = new pg.Client({ connectionString: db.adminUrl });
      await spy.connect();
      const payloads: string[] = [];
      spy.on('notification', (n) => payloads.push(n.payload ?? ''));
      await spy.query('listen tenantry_routes');
      await placements.assign(tenants.a, { tier: 'shared', cluster: 'home' });
      for (let i = 0; i < 100 && payloads.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      await spy.end();
      expect(payloads).toHaveLength(1);
      expect(payloads[0]).toMatch(/^\d+$/);
    } finally {
      await listening.close();
    }
  });
});

describe('review findings, pinned', () => {
  it('a stale route is refused even where the plan never evaluates the policy (update by id, row absent)', async () => {
    await db.owner
      .query(`create table tasks (id uuid primary key default gen_random_uuid(), tenant_id uuid not null default tenantry.current_tenant_id(), title text not null);
      select tenantry.register_tenant_table('tasks');`);
    const e = await tenant('tier-e');
    const stale = new TenantRouter({ pool: extra[0] as pg.Pool });
    const routed = new RoutedTenantPool({
      router: stale,
      clusters: { home: db.appUrl },
      contextSecret: db.contextSecret,
    });
    try {
      // E's route (default) is cached; E then moves to its schema, where its task lives
      await runAs(e, () => routed.query('select count(*) from notes'));
      await createTenantSchema(
        db.owner,
        't_e',
        `${NOTES_DDL}
        create table tasks (id uuid primary key default gen_random_uuid(), tenant_id uuid not null default tenantry.current_tenant_id(), title text not null);
        select tenantry.register_tenant_table('tasks');`,
      );
      const id = (
        await db.owner.query<{ id: string }>(
          `insert into t_e.tasks (tenant_id, title) values ($1, 'todo') returning id`,
          [e],
        )
      ).rows[0]!.id;
      await placements.assign(e, { tier: 'schema', cluster: 'home', schema: 't_e' });
      expect(stale.peek(e)?.epoch).toBe(0);
      // public.tasks has no such id: on the stale route the index finds nothing and the policy never runs
      const done = await runAs(e, () => routed.query(`update tasks set title = 'done' where id = $1`, [id]));
      expect(done.rowCount).toBe(1);
      expect((await db.admin.query('select title from t_e.tasks where id = $1', [id])).rows).toEqual([
        { title: 'done' },
      ]);
    } finally {
      await routed.end();
    }
  });

  it('concurrent assigns of one tenant leave the catalog and the database agreeing', async () => {
    const f = await tenant('tier-f');
    for (const s of ['t_f1', 't_f2']) await createTenantSchema(db.owner, s, NOTES_DDL);
    const epochs = await Promise.all(
      ['t_f1', 't_f2', 't_f1', 't_f2'].map((schema) =>
        placements.assign(f, { tier: 'schema', cluster: 'home', schema }),
      ),
    );
    const placed = await placements.get(f);
    expect(placed.epoch).toBe(Math.max(...epochs));
    const local = await db.admin.query(
      'select state, epoch, schema from tenantry.local_tenants where tenant_key = $1',
      [f],
    );
    expect(local.rows).toEqual([{ state: 'active', epoch: String(placed.epoch), schema: placed.schema }]);
    await expect(runAs(f, () => pool.query('select count(*) from notes'))).resolves.toMatchObject({ rowCount: 1 });
  });

  it('a transaction refused on a stale route is retried at the new place (connect refreshes the route)', async () => {
    const g = await tenant('tier-g');
    const stale = new TenantRouter({ pool: extra[0] as pg.Pool });
    const routed = new RoutedTenantPool({
      router: stale,
      clusters: { home: db.appUrl },
      contextSecret: db.contextSecret,
    });
    try {
      await runAs(g, () => routed.query('select 1'));
      await createTenantSchema(db.owner, 't_g', NOTES_DDL);
      await placements.assign(g, { tier: 'schema', cluster: 'home', schema: 't_g' });
      const transaction = () => insertInTransaction(routed, g, 'in a transaction');
      const { isRetryableRouteError } = await import('../../src/tiers/routed-tenant-pool.js');
      const first = await transaction().catch((e: unknown) => e);
      expect(isRetryableRouteError(first)).toBe(true);
      await transaction();
      expect((await db.admin.query('select body from t_g.notes')).rows).toEqual([{ body: 'in a transaction' }]);
      expect(
        (await db.admin.query('select count(*)::int as n from public.notes where tenant_id = $1', [g])).rows[0].n,
      ).toBe(0);
    } finally {
      await routed.end();
    }
  });

  it('refuses reserved schema names for a tenant', async () => {
    for (const name of ['public', 'tenantry', 'tenantry_private', 'pg_catalog', 'information_schema']) {
      await expect(createTenantSchema(db.owner, name, NOTES_DDL)).rejects.toMatchObject({ code: 'INVALID_IDENTIFIER' });
    }
  });
});

describe('connections', () => {
  it('are bounded in total, whatever the number of tenants and databases', async () => {
    const bounded = new RoutedTenantPool({
      router,
      clusters: { home: db.appUrl },
      contextSecret: db.contextSecret,
      maxConnections: 3,
      maxPools: 1,
    });
    try {
      let peak = 0;
      const sample = setInterval(() => (peak = Math.max(peak, bounded.activeConnections)), 2);
      const work = Array.from({ length: 24 }, (_, i) => {
        const t = [tenants.a, tenants.b, tenants.c, tenants.d][i % 4]!;
        return runAs(t, () => bounded.query('select pg_sleep(0.02)'));
      });
      await Promise.all(work);
      clearInterval(sample);
      expect(peak).toBeLessThanOrEqual(3);
      expect(peak).toBeGreaterThan(0);
      expect(bounded.openPools).toBeLessThanOrEqual(2); // the home pool and at most one more kept idle
    } finally {
      await bounded.end();
    }
  });

  it('a client checked out for one tenant refuses another tenant living elsewhere', async () => {
    const client = await runAs(tenants.a, () => pool.connect());
    try {
      await expect(runAs(tenants.c, () => client.query('select 1'))).rejects.toMatchObject({
        code: 'TENANT_ROUTE_MISMATCH',
      });
    } finally {
      client.release();
    }
  });

  it('refuses an unknown cluster clearly', async () => {
    const ghost = await tenant(`ghost-${randomBytes(3).toString('hex')}`);
    await placements.addCluster('elsewhere');
    await db.owner.query(
      `insert into tenantry.placements (tenant_id, tier, cluster) values ($1, 'shared', 'elsewhere')`,
      [ghost],
    );
    await expect(runAs(ghost, () => pool.query('select 1'))).rejects.toMatchObject({
      code: 'CLUSTER_UNKNOWN',
      status: 503,
    });
    // again with the route cached (query's synchronous path): a rejection, not a throw
    let sent: Promise<unknown> | undefined;
    expect(() => (sent = runAs(ghost, () => pool.query('select 1')))).not.toThrow();
    await expect(sent).rejects.toMatchObject({ code: 'CLUSTER_UNKNOWN', status: 503 });
  });
});

describe('route cache', () => {
  it('keeps at most cacheSize routes; the tenant in use stays, the idle one is read again from the catalog', async () => {
    const home = new pg.Pool({ connectionString: db.routerUrl, max: 1 });
    extra.push(home);
    let reads = 0;
    const counted = { query: (text: string, values?: unknown[]) => (reads++, home.query(text, values)) };
    const small = new TenantRouter({ pool: counted as unknown as pg.Pool, cacheSize: 2 });
    const [busy, idle, late] = [tenants.a, tenants.b, tenants.c] as const;
    await small.resolve(busy);
    await small.resolve(idle);
    // the busy tenant's statements look its route up (only some of the looks mark it as used)
    for (let i = 0; i < 64; i++) expect(small.peek(busy)?.tenantId).toBe(busy);
    await small.resolve(late);
    expect(reads).toBe(3);
    expect(small.peek(busy)?.tenantId).toBe(busy);
    expect(small.peek(idle)).toBeUndefined(); // evicted: the least recently used
    expect((await small.resolve(idle)).schema).toBe('t_b'); // read again, as it is in the catalog
    expect(reads).toBe(4);
    await small.close();
  });
});
