// Issue 16, item 4, the tiers' side channels, tried from the attacker's side:
// - routes (where every tenant lives) are the router role's: SQL running as the app role, under
//   any tenant or none, is refused the route functions (42501), and the router still routes;
// - a tenant schema's tables refuse rows of any tenant but the schema's own, whoever writes them;
// - a table missing from a tenant's schema fails (42P01), never falling through to the shared table.
// Each refusal is checked with the superuser's view: nothing changed.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { runDoctor } from '../../src/policy/doctor.js';
import { install } from '../../src/policy/installer.js';
import { Placements } from '../../src/tiers/placements.js';
import { createTenantDatabase, createTenantSchema } from '../../src/tiers/provision.js';
import { RoutedTenantPool } from '../../src/tiers/routed-tenant-pool.js';
import { TenantRouter } from '../../src/tiers/tenant-router.js';
import { findingOf } from '../support/doctor-findings.js';
import { NOTES_DDL } from '../support/notes-table.js';
import { ROLE_PASSWORD, createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { dropDatabase } from '../support/drop-database.js';

const TODOS_DDL = `
  create table todos (
    tenant_id uuid not null default tenantry.current_tenant_id(),
    id bigint generated always as identity,
    title text not null,
    primary key (tenant_id, id)
  );
  select tenantry.register_tenant_table('todos');`;

let db: TestDatabase;
let placements: Placements;
let router: TenantRouter;
let pool: RoutedTenantPool;
let cDatabase: string;
const pools: Array<{ end(): Promise<void> }> = [];
/** a: shared tables; b: schema t_b; c: its own database; d: schema t_d. */
const t: Record<'a' | 'b' | 'c' | 'd', string> = { a: '', b: '', c: '', d: '' };

async function tenant(slug: string): Promise<string> {
  const { rows } = await db.owner.query<{ id: string }>(
    `insert into tenantry.tenants (slug, name) values ($1, $1) returning id`,
    [slug],
  );
  return rows[0]!.id;
}

/** Every row of a table, as the superuser: the ground truth. */
async function truth(table: string): Promise<unknown[]> {
  return (await db.admin.query(`select * from ${table} order by 1, 2`)).rows;
}

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(NOTES_DDL + TODOS_DDL);
  t.a = await tenant('side-a');
  t.b = await tenant('side-b');
  t.c = await tenant('side-c');
  t.d = await tenant('side-d');
  placements = new Placements({ catalog: db.owner, owners: { home: db.ownerUrl } });
  // b's schema is made for b; d's is claimed when d is placed in it
  await createTenantSchema(db.owner, 't_b', NOTES_DDL + TODOS_DDL, { tenant: t.b });
  await placements.assign(t.b, { tier: 'schema', cluster: 'home', schema: 't_b' });
  await createTenantSchema(db.owner, 't_d', NOTES_DDL + TODOS_DDL);
  await placements.assign(t.d, { tier: 'schema', cluster: 'home', schema: 't_d' });
  cDatabase = `${db.name}_c`;
  await createTenantDatabase({
    adminUrl: db.adminUrl,
    ownerUrl: db.ownerUrl,
    database: cDatabase,
    ddl: NOTES_DDL,
    appRole: db.appRole,
    ownerRole: db.ownerRole,
    routerRole: db.routerRole,
    appPassword: ROLE_PASSWORD,
    ownerPassword: ROLE_PASSWORD,
    contextSecret: db.contextSecret,
  });
  await placements.assign(t.c, { tier: 'database', cluster: 'home', database: cDatabase });
  const routes = new pg.Pool({ connectionString: db.routerUrl, max: 2 });
  pools.push(routes);
  router = new TenantRouter({ pool: routes });
  await router.start();
  pool = new RoutedTenantPool({ router, clusters: { home: db.appUrl }, contextSecret: db.contextSecret });
  for (const [key, id] of Object.entries(t))
    await runAs(id, () => pool.query('insert into notes (body) values ($1)', [`note of ${key}`]));
  for (const [key, id] of Object.entries(t).filter(([k]) => k !== 'c'))
    await runAs(id, () => pool.query('insert into todos (title) values ($1)', [`todo of ${key}`]));
});

afterAll(async () => {
  await pool?.end();
  await router?.close();
  await placements?.end();
  for (const p of pools) await p.end();
  if (db) {
    await dropDatabase(db.admin, cDatabase).catch(() => undefined);
    await db.drop();
  }
});

describe('routes are the router role’s, not the app role’s', () => {
  it('the app role, under a tenant of any tier or none, is refused route_of and routes_since (42501)', async () => {
    const placementsBefore = await truth('tenantry.placements');
    const direct = db.appPool();
    for (const id of [t.a, t.b, t.c, t.d]) {
      // through the routed pool: the tenant's own location (home for a, b, d; c's database)
      await expect(runAs(id, () => pool.query('select * from tenantry.routes_since(0)'))).rejects.toMatchObject({
        code: '42501',
      });
      await expect(
        runAs(id, () => pool.query('select * from tenantry.route_of($1)', [id === t.a ? t.b : t.a])),
      ).rejects.toMatchObject({ code: '42501' });
    }
    // the home database straight, under a shared tenant and with no tenant at all
    await expect(runAs(t.a, () => direct.query('select * from tenantry.routes_since(0)'))).rejects.toMatchObject({
      code: '42501',
    });
    const raw = new pg.Client({ connectionString: db.directAppUrl ?? db.appUrl });
    await raw.connect();
    try {
      await expect(raw.query('select * from tenantry.routes_since(0)')).rejects.toMatchObject({ code: '42501' });
      // nor can it read the tables behind them
      await expect(raw.query('select * from tenantry.placements')).rejects.toMatchObject({ code: '42501' });
      await expect(raw.query('select * from tenantry.tenant_schemas')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await raw.end();
    }
    expect(await truth('tenantry.placements')).toEqual(placementsBefore);
  });

  it('a router given the app role fails to start with CONFIGURATION_ERROR, not a silent default route', async () => {
    const appRoutes = new pg.Pool({ connectionString: db.appUrl, max: 1 });
    pools.push(appRoutes);
    const wrong = new TenantRouter({ pool: appRoutes });
    await expect(wrong.start()).rejects.toMatchObject({ code: 'CONFIGURATION_ERROR' });
    await expect(wrong.resolve(t.b)).rejects.toMatchObject({ code: 'CONFIGURATION_ERROR' });
  });

  it('the router role routes every tier, and can do nothing else', async () => {
    const routes = await Promise.all([t.a, t.b, t.c, t.d].map((id) => router.refresh(id)));
    expect(routes.map((r) => [r.tier, r.schema, r.database])).toEqual([
      ['shared', null, null],
      ['schema', 't_b', null],
      ['database', null, cDatabase],
      ['schema', 't_d', null],
    ]);
    for (const [key, id] of Object.entries(t)) {
      const { rows } = await runAs(id, () => pool.query<{ body: string }>('select body from notes'));
      expect(rows).toEqual([{ body: `note of ${key}` }]);
    }
    const asRouter = new pg.Client({ connectionString: db.routerUrl });
    await asRouter.connect();
    try {
      await expect(asRouter.query('select * from public.notes')).rejects.toMatchObject({ code: '42501' });
      await expect(asRouter.query('select * from tenantry.placements')).rejects.toMatchObject({ code: '42501' });
      await expect(asRouter.query('select * from tenantry.tenants')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await asRouter.end();
    }
  });

  it('doctor reports an app role that can read routes again, with a fix that works', async () => {
    await db.admin.query(`grant execute on function tenantry.routes_since(bigint) to ${db.appRole}`);
    const report = await runDoctor(db.adminUrl);
    const finding = findingOf(report, 'APP_CAN_READ_ROUTES', db.appRole);
    expect(finding.fix).toBe(`REVOKE EXECUTE ON FUNCTION tenantry.routes_since(bigint) FROM ${db.appRole};`);
    await db.admin.query(finding.fix);
    expect((await runDoctor(db.adminUrl)).findings.filter((f) => f.code === 'APP_CAN_READ_ROUTES')).toEqual([]);
  });

  it('an install of before tiers/002 is upgraded: the app role loses the route functions, the router keeps routing', async () => {
    // the database as the previous version left it: tiers/001's grant to the app role, no 002 recorded
    await db.admin
      .query(`grant execute on function tenantry.route_of(uuid), tenantry.routes_since(bigint) to ${db.appRole};
      delete from tenantry.library_migrations where feature = 'tiers' and version = 2`);
    const report = await install(db.adminUrl, {
      appRole: db.appRole,
      ownerRole: db.ownerRole,
      routerRole: db.routerRole,
      contextSecret: db.contextSecret,
    });
    expect(report.applied).toEqual(['tiers/002_router_role']);
    await expect(runAs(t.a, () => db.appPool().query('select * from tenantry.routes_since(0)'))).rejects.toMatchObject({
      code: '42501',
    });
    expect((await router.refresh(t.b)).schema).toBe('t_b');
  });
});

describe("a tenant schema's tables refuse other tenants' rows", () => {
  for (const attacker of ['a', 'd'] as const) {
    it(`${attacker} (${attacker === 'a' ? 'shared tables' : 'schema t_d'}) writing its own rows into b's schema by name is refused (23514)`, async () => {
      const before = await truth('t_b.notes');
      const todosBefore = await truth('t_b.todos');
      await expect(
        runAs(t[attacker], () => pool.query(`insert into t_b.notes (body) values ('planted by ${attacker}')`)),
      ).rejects.toMatchObject({ code: '23514' });
      await expect(
        runAs(t[attacker], () =>
          pool.query(`insert into t_b.todos (tenant_id, title) values ($1, 'planted')`, [t[attacker]]),
        ),
      ).rejects.toMatchObject({ code: '23514' });
      // an upsert path and an INSERT … SELECT too
      await expect(
        runAs(t[attacker], () => pool.query(`insert into t_b.notes (body) select 'copied' from generate_series(1, 3)`)),
      ).rejects.toMatchObject({ code: '23514' });
      // b's own view and the ground truth: unchanged
      const { rows } = await runAs(t.b, () => pool.query<{ n: number }>('select count(*)::int as n from notes'));
      expect(rows[0]!.n).toBe(1);
      expect(await truth('t_b.notes')).toEqual(before);
      expect(await truth('t_b.todos')).toEqual(todosBefore);
    });
  }

  it('b still writes its own schema; the owner cannot put another tenant there either', async () => {
    await runAs(t.b, () => pool.query(`insert into notes (body) values ('second of b')`));
    await expect(
      db.owner.query(`insert into t_b.notes (tenant_id, body) values ($1, 'by the owner')`, [t.a]),
    ).rejects.toMatchObject({ code: '23514' });
    expect(((await truth('t_b.notes')) as Array<{ tenant_id: string }>).every((r) => r.tenant_id === t.b)).toBe(true);
    await db.owner.query(`delete from t_b.notes where body = 'second of b'`);
  });

  it('a schema claimed by one tenant is refused to another (TENANT_SCHEMA_TAKEN), its route unchanged', async () => {
    const before = await truth('tenantry.placements');
    await expect(placements.assign(t.a, { tier: 'schema', cluster: 'home', schema: 't_b' })).rejects.toMatchObject({
      code: 'TENANT_SCHEMA_TAKEN',
    });
    await expect(createTenantSchema(db.owner, 't_b', 'select', { tenant: t.a })).rejects.toMatchObject({
      code: 'TENANT_SCHEMA_TAKEN',
    });
    expect(await truth('tenantry.placements')).toEqual(before);
    const { rows } = await runAs(t.a, () => pool.query<{ body: string }>('select body from notes'));
    expect(rows).toEqual([{ body: 'note of a' }]);
  });

  it('doctor reports a tenant schema table without its guard; the fix restores it', async () => {
    await db.owner.query('alter table t_d.todos drop constraint tenantry_schema_tenant');
    const report = await runDoctor(db.adminUrl);
    const finding = findingOf(report, 'TENANT_SCHEMA_UNGUARDED', 't_d.todos');
    expect(finding.severity).toBe('error');
    expect(report.findings.filter((f) => f.code === 'TENANT_SCHEMA_UNGUARDED').map((f) => f.object)).toEqual([
      't_d.todos',
    ]);
    // unguarded, a's row lands there (what the guard exists for) ...
    await runAs(t.a, () => pool.query(`insert into t_d.todos (title) values ('planted')`));
    // ... and the fix leaves the guard NOT VALID (rows of another tenant), still refusing new ones
    await db.admin.query(finding.fix);
    await expect(runAs(t.a, () => pool.query(`insert into t_d.todos (title) values ('again')`))).rejects.toMatchObject({
      code: '23514',
    });
    const again = findingOf(await runDoctor(db.adminUrl), 'TENANT_SCHEMA_UNGUARDED', 't_d.todos');
    expect(again.message).toContain('holds rows of another tenant');
    expect(again.message).not.toContain('planted');
    await db.owner.query(`delete from t_d.todos where tenant_id <> $1`, [t.d]);
    await db.admin.query(`select tenantry.guard_tenant_schema('t_d')`);
    expect((await runDoctor(db.adminUrl)).findings.filter((f) => f.code === 'TENANT_SCHEMA_UNGUARDED')).toEqual([]);
  });

  it('an install of before tiers/003 is upgraded: the schemas of placed tenants get their guard', async () => {
    // the database as the previous version left it: no guard, no record, no 003 recorded
    await db.owner.query(`alter table t_b.notes drop constraint tenantry_schema_tenant;
      alter table t_b.todos drop constraint tenantry_schema_tenant;
      alter table t_d.notes drop constraint tenantry_schema_tenant;
      alter table t_d.todos drop constraint tenantry_schema_tenant`);
    await db.admin.query(`drop function tenantry.claim_tenant_schema(text, uuid);
      drop function tenantry.guard_tenant_schema(text);
      drop table tenantry.tenant_schemas;
      delete from tenantry.library_migrations where feature = 'tiers' and version = 3`);
    expect(
      (await runDoctor(db.adminUrl)).findings.filter((f) => f.code === 'TENANT_SCHEMA_UNGUARDED').map((f) => f.object),
    ).toEqual(['t_b.notes', 't_b.todos', 't_d.notes', 't_d.todos']);
    const report = await install(db.adminUrl, {
      appRole: db.appRole,
      ownerRole: db.ownerRole,
      routerRole: db.routerRole,
      contextSecret: db.contextSecret,
    });
    expect(report.applied).toEqual(['tiers/003_tenant_schema_guard']);
    expect((await runDoctor(db.adminUrl)).findings.filter((f) => f.code === 'TENANT_SCHEMA_UNGUARDED')).toEqual([]);
    const before = await truth('t_b.notes');
    await expect(
      runAs(t.d, () => pool.query(`insert into t_b.notes (body) values ('after the upgrade')`)),
    ).rejects.toMatchObject({ code: '23514' });
    expect(await truth('t_b.notes')).toEqual(before);
  });
});

describe("a table missing from a tenant's schema does not fall through to the shared table", () => {
  it("b's statements on a table its schema lacks fail (42P01); the shared table is untouched", async () => {
    await db.owner.query('drop table t_b.todos');
    const shared = await truth('public.todos');
    await expect(runAs(t.b, () => pool.query('select * from todos'))).rejects.toMatchObject({ code: '42P01' });
    await expect(runAs(t.b, () => pool.query(`insert into todos (title) values ('lost')`))).rejects.toMatchObject({
      code: '42P01',
    });
    await expect(runAs(t.b, () => pool.query(`update todos set title = 'x'`))).rejects.toMatchObject({
      code: '42P01',
    });
    await expect(runAs(t.b, () => pool.query('delete from todos'))).rejects.toMatchObject({ code: '42P01' });
    // inside a transaction too (connect sets the same search path)
    const client = await runAs(t.b, () => pool.connect());
    try {
      await runAs(t.b, async () => {
        await client.query('begin');
        await expect(client.query(`insert into todos (title) values ('lost')`)).rejects.toMatchObject({
          code: '42P01',
        });
        await client.query('rollback');
      });
    } finally {
      client.release();
    }
    expect(await truth('public.todos')).toEqual(shared);
    // b's other tables, and d's todos, still work
    const { rows } = await runAs(t.b, () => pool.query<{ body: string }>('select body from notes'));
    expect(rows).toEqual([{ body: 'note of b' }]);
    const todos = await runAs(t.d, () => pool.query<{ title: string }>('select title from todos'));
    expect(todos.rows).toEqual([{ title: 'todo of d' }]);
  });

  it("the tenant's search path is its schema alone, and built-ins still resolve", async () => {
    const { rows } = await runAs(t.b, () =>
      pool.query<{ path: string; now: boolean; uuid: boolean }>(
        `select current_setting('search_path') as path, now() is not null as now, gen_random_uuid() is not null as uuid`,
      ),
    );
    expect(rows).toEqual([{ path: '"t_b"', now: true, uuid: true }]);
  });
});
