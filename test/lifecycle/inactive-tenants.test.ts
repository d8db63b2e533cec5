// An inactive tenant gets nothing, at the data plane (issue 11 §1): once the catalog suspends or
// soft-deletes a tenant, every tenant pool on every instance refuses its context, in every tier,
// because the database's own context check does (core migration 005). Each refusal is checked
// from the bystander's side too: its rows and access unchanged, and nothing of the inactive
// tenant changed (counted as the superuser where its rows live).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantCatalog } from '../../src/catalog/tenant-catalog.js';
import { runAs } from '../../src/context/tenant-context.js';
import { ContextSigner } from '../../src/data/context-signer.js';
import { TenantDeletedError, TenantSuspendedError } from '../../src/errors/tenantry-error.js';
import { Placements, type PlacementTarget } from '../../src/tiers/placements.js';
import { createTenantDatabase, createTenantSchema, withDatabase } from '../../src/tiers/provision.js';
import { RoutedTenantPool } from '../../src/tiers/routed-tenant-pool.js';
import { doctorEverywhere } from '../../src/tiers/migrate/doctor-everywhere.js';
import { reconcileTenantHolds } from '../../src/tiers/tenant-holds.js';
import { TenantRouter } from '../../src/tiers/tenant-router.js';
import { NOTES_DDL } from '../support/notes-table.js';
import { ROLE_PASSWORD, createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { dropDatabase } from '../support/drop-database.js';

type Tier = PlacementTarget['tier'];
type Inactive = 'suspended' | 'deleted';
const TIERS: Tier[] = ['shared', 'schema', 'database'];
const REFUSAL = {
  suspended: { error: TenantSuspendedError, code: 'TENANT_SUSPENDED', state: 'TR005' },
  deleted: { error: TenantDeletedError, code: 'TENANT_DELETED', state: 'TR006' },
} as const;

interface Placed {
  id: string;
  tier: Tier;
  schema: string | null;
  database: string | null;
}

let db: TestDatabase;
let placements: Placements;
let catalog: TenantCatalog;
/** Two app "instances": each its own router (with its own route cache) and routed pool. */
let one: RoutedTenantPool;
let two: RoutedTenantPool;
const extra: Array<{ end(): Promise<void> }> = [];
const databases: string[] = [];
let seq = 0;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(NOTES_DDL);
  placements = new Placements({ catalog: db.owner, owners: { home: db.ownerUrl } });
  catalog = new TenantCatalog(db.owner, { placements });
  // one checks the route in its prefix (its router hears nothing: routeCheck 'auto'), two leaves
  // it to the policy's signed check (issue 15): both refuse an inactive tenant alike
  const instance = (routeCheck?: 'policy') => {
    const home = new pg.Pool({ connectionString: db.routerUrl, max: 2 });
    extra.push(home);
    const pool = new RoutedTenantPool({
      router: new TenantRouter({ pool: home }),
      clusters: { home: db.appUrl },
      contextSecret: db.contextSecret,
      ...(routeCheck ? { routeCheck } : {}),
    });
    extra.push(pool);
    return pool;
  };
  one = instance();
  two = instance('policy');
});

afterAll(async () => {
  for (const p of extra) await p.end().catch(() => undefined);
  await placements?.end();
  for (const name of databases) await dropDatabase(db.admin, name).catch(() => undefined);
  await db?.drop();
});

/** A tenant in `tier` with two notes, written through instance one. */
async function placedTenant(tier: Tier): Promise<Placed> {
  const slug = `t${++seq}-${tier}`;
  const { id } = await catalog.create({ slug, name: slug });
  const name = `${db.name}_t${seq}`;
  let schema: string | null = null;
  let database: string | null = null;
  if (tier === 'schema') {
    schema = `t_${seq}`;
    await createTenantSchema(db.owner, schema, NOTES_DDL);
    await placements.assign(id, { tier, cluster: 'home', schema });
  } else if (tier === 'database') {
    database = name;
    databases.push(database);
    await createTenantDatabase({
      adminUrl: db.adminUrl,
      ownerUrl: db.ownerUrl,
      database,
      ddl: NOTES_DDL,
      appRole: db.appRole,
      ownerRole: db.ownerRole,
      appPassword: ROLE_PASSWORD,
      ownerPassword: ROLE_PASSWORD,
      contextSecret: db.contextSecret,
    });
    await placements.assign(id, { tier, cluster: 'home', database });
  }
  for (const body of ['n1', 'n2'])
    await runAs(id, () => one.query(`insert into notes (body) values ($1)`, [`${body} of ${slug}`]));
  return { id, tier, schema, database };
}

/** The tenant's notes, read as the superuser where they live. */
async function truth(t: Placed): Promise<unknown[]> {
  if (t.database) {
    const c = new pg.Client({ connectionString: withDatabase(db.adminUrl, t.database) });
    await c.connect();
    try {
      return (await c.query('select tenant_id, id, body from notes order by id')).rows;
    } finally {
      await c.end();
    }
  }
  return (
    await db.admin.query(
      `select tenant_id, id, body from ${t.schema ?? 'public'}.notes where tenant_id = $1 order by id`,
      [t.id],
    )
  ).rows;
}

/** What both pools offer the app (TenantPool and RoutedTenantPool). */
interface AppPool {
  query(text: string, values?: unknown[]): Promise<pg.QueryResult>;
  connect(): Promise<pg.PoolClient>;
}

const count = (pool: AppPool, t: string) =>
  runAs(t, () => pool.query('select count(*)::int as n from notes')).then((r) => r.rows[0]!.n as number);

/** Every way the app reaches its rows: read, insert, update, delete, a transaction. */
function attempts(pool: AppPool, t: string): Array<[string, () => Promise<unknown>]> {
  return [
    ['select', () => runAs(t, () => pool.query('select * from notes'))],
    ['insert', () => runAs(t, () => pool.query(`insert into notes (body) values ('written while inactive')`))],
    ['update', () => runAs(t, () => pool.query(`update notes set body = 'changed while inactive'`))],
    ['delete', () => runAs(t, () => pool.query('delete from notes'))],
    [
      'transaction',
      () =>
        runAs(t, async () => {
          const client = await pool.connect();
          try {
            await client.query('begin');
            await client.query(`insert into notes (body) values ('in a transaction')`);
            await client.query('commit');
          } finally {
            await client.query('rollback').catch(() => undefined);
            client.release();
          }
        }),
    ],
  ];
}

describe.each(TIERS.flatMap((tier) => (['suspended', 'deleted'] as const).map((status) => [tier, status] as const)))(
  'a %s-tier tenant once %s',
  (tier: Tier, status: Inactive) => {
    let t: Placed;
    let bystander: Placed;
    let before: unknown[];
    let bystanderBefore: unknown[];
    const refusal = REFUSAL[status];

    beforeAll(async () => {
      t = await placedTenant(tier);
      bystander = await placedTenant(tier);
      // both instances have served (and cached the route of) the tenant before the change
      expect(await count(one, t.id)).toBe(2);
      expect(await count(two, t.id)).toBe(2);
      if (status === 'suspended') await catalog.suspend(t.id);
      else await catalog.softDelete(t.id);
      before = await truth(t);
      bystanderBefore = await truth(bystander);
      expect(before).toHaveLength(2);
    });

    it('is refused on another instance within 1 s of the change', async () => {
      // the change committed in beforeAll; the other instance's very next statement is refused
      const started = Date.now();
      await expect(count(two, t.id)).rejects.toBeInstanceOf(refusal.error);
      expect(Date.now() - started).toBeLessThan(1000);
    });

    it('refuses every read and write through both routed pools, with the right error class', async () => {
      for (const pool of [one, two])
        for (const [what, attempt] of attempts(pool, t.id)) {
          const error = await attempt().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error, what).toBeInstanceOf(refusal.error);
          expect((error as { code: string }).code, what).toBe(refusal.code);
        }
      expect(await truth(t)).toEqual(before);
    });

    it('refuses raw SQL as the app role with a valid signed context of the tenant', async () => {
      const route = await placements.get(t.id);
      const value = new ContextSigner(db.contextSecret).encode(t.id, route.epoch);
      const client = new pg.Client({
        connectionString: t.database ? withDatabase(db.appUrl, t.database) : db.appUrl,
      });
      await client.connect();
      try {
        for (const sql of [
          `select count(*) from ${t.schema ?? 'public'}.notes`,
          `insert into ${t.schema ?? 'public'}.notes (body) values ('raw')`,
          `insert into ${t.schema ?? 'public'}.notes (tenant_id, body) values ('${t.id}', 'raw')`,
          `delete from ${t.schema ?? 'public'}.notes`,
          `select tenantry.current_tenant_id()`,
        ]) {
          await client.query('begin');
          await client.query(`select set_config('tenantry.context', $1, true)`, [value]);
          await expect(client.query(sql), sql).rejects.toMatchObject({ code: refusal.state });
          await client.query('rollback');
        }
      } finally {
        await client.end();
      }
      expect(await truth(t)).toEqual(before);
    });

    it('leaves the other tenant of the same tier untouched, on both instances', async () => {
      expect(await truth(bystander)).toEqual(bystanderBefore);
      let rows = bystanderBefore.length;
      for (const pool of [one, two]) {
        expect(await count(pool, bystander.id)).toBe(rows);
        await runAs(bystander.id, () => pool.query(`insert into notes (body) values ('still served')`));
        rows++;
      }
      expect(await truth(bystander)).toHaveLength(bystanderBefore.length + 2);
      expect(await truth(t)).toEqual(before);
    });

    it(
      status === 'suspended'
        ? 'serves again once resumed, on both instances'
        : 'stays refused when suspended or resumed again (a deleted tenant is never resumed)',
      async () => {
        if (status === 'suspended') {
          await catalog.resume(t.id);
          for (const pool of [one, two]) expect(await count(pool, t.id)).toBe(2);
          await runAs(t.id, () => two.query(`insert into notes (body) values ('after resume')`));
          expect(await truth(t)).toHaveLength(3);
          return;
        }
        await expect(catalog.resume(t.id)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        await expect(catalog.suspend(t.id)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        await expect(count(one, t.id)).rejects.toBeInstanceOf(TenantDeletedError);
        expect(await truth(t)).toEqual(before);
      },
    );
  },
);

describe('the control plane at home', () => {
  it("keeps a suspended tenant's pinned tables readable (membership answers), refuses a deleted one's", async () => {
    const pool = db.appPool();
    const t = await placedTenant('shared');
    const own = () => runAs(t.id, () => pool.query<{ id: string }>('select id from tenantry.tenants'));
    await catalog.suspend(t.id);
    expect((await own()).rows).toEqual([{ id: t.id }]);
    await expect(count(pool, t.id)).rejects.toBeInstanceOf(TenantSuspendedError);
    await catalog.softDelete(t.id);
    await expect(own()).rejects.toBeInstanceOf(TenantDeletedError);
  });

  it('lets the owner role (lifecycle operations: purge, export, restore) read and write an inactive tenant', async () => {
    const t = await placedTenant('shared');
    await catalog.softDelete(t.id);
    await db.owner.query(`update notes set body = body || ' (exported)' where tenant_id = $1`, [t.id]);
    expect(
      (await db.owner.query<{ n: number }>('select count(*)::int as n from notes where tenant_id = $1', [t.id]))
        .rows[0]!.n,
    ).toBe(2);
  });

  it('refuses the change of a tenant placed in a database it cannot reach, before changing anything', async () => {
    const t = await placedTenant('database');
    const blind = new TenantCatalog(db.owner);
    await expect(blind.suspend(t.id)).rejects.toMatchObject({ code: 'CONFIGURATION_ERROR' });
    expect((await catalog.get(t.id)).status).toBe('active');
    expect(await count(one, t.id)).toBe(2);
  });

  it('holds a suspended tenant at its new place when it moves', async () => {
    const t = await placedTenant('shared');
    await catalog.suspend(t.id);
    const schema = `t_moved_${seq}`;
    await createTenantSchema(db.owner, schema, NOTES_DDL);
    await placements.assign(t.id, { tier: 'schema', cluster: 'home', schema });
    await expect(count(one, t.id)).rejects.toBeInstanceOf(TenantSuspendedError);
  });
});

describe('a transition that stopped half-way', () => {
  it('is repaired by running it again, and by reconcileTenantHolds (install --everywhere)', async () => {
    const t = await placedTenant('database');
    const there = new pg.Pool({ connectionString: withDatabase(db.ownerUrl, t.database!), max: 1 });
    extra.push(there);
    await catalog.suspend(t.id);
    // the placement database lost the hold (say, restored from a backup taken before the suspend)
    await there.query('delete from tenantry.inactive_tenants');
    expect(await count(one, t.id)).toBe(2);
    await catalog.suspend(t.id); // idempotent, and writes the hold again
    await expect(count(one, t.id)).rejects.toBeInstanceOf(TenantSuspendedError);

    await there.query('delete from tenantry.inactive_tenants');
    const audit = await doctorEverywhere({ catalog: db.owner, clusters: { home: db.adminUrl } });
    const findings = audit.databases.find((d) => d.database === t.database)!.report!.findings;
    expect(findings.filter((f) => f.code.startsWith('TENANT_HOLD_'))).toMatchObject([
      { code: 'TENANT_HOLD_MISSING', severity: 'error' },
    ]);
    expect(audit.ok).toBe(false);
    const dry = await reconcileTenantHolds({ catalog: db.owner, clusters: { home: db.ownerUrl }, dryRun: true });
    expect(dry.databases.find((d) => d.database === t.database)).toMatchObject({ written: 1, released: 0 });
    expect(await count(one, t.id)).toBe(2);
    const report = await reconcileTenantHolds({ catalog: db.owner, clusters: { home: db.ownerUrl } });
    expect(report.ok).toBe(true);
    expect(report.databases.find((d) => d.database === t.database)).toMatchObject({ written: 1, released: 0 });
    await expect(count(one, t.id)).rejects.toBeInstanceOf(TenantSuspendedError);

    // resumed in the catalog while the placement database kept the hold: released by the repair
    await db.owner.query(`update tenantry.tenants set status = 'active', suspended_at = null where id = $1`, [t.id]);
    await expect(count(one, t.id)).rejects.toBeInstanceOf(TenantSuspendedError);
    const released = await reconcileTenantHolds({ catalog: db.owner, clusters: { home: db.ownerUrl } });
    expect(released.databases.find((d) => d.database === t.database)).toMatchObject({ written: 0, released: 1 });
    expect(await count(one, t.id)).toBe(2);
  });
});

describe('unsigned context mode', () => {
  let u: TestDatabase;
  beforeAll(async () => {
    u = await createTestDatabase({ contextMode: 'unsigned' });
    await u.owner.query(NOTES_DDL);
  });
  afterAll(() => u?.drop());

  const language = async (fn: string) =>
    (
      await u.admin.query<{ lanname: string }>(
        `select l.lanname from pg_proc p join pg_language l on l.oid = p.prolang where p.oid = $1::regprocedure`,
        [fn],
      )
    ).rows[0]!.lanname;

  it('refuses a suspended and a deleted tenant, and goes back to the inlined functions once none is held', async () => {
    const pool = u.appPool({ contextMode: 'unsigned' });
    const c = new TenantCatalog(u.owner);
    const a = await c.create({ slug: 'ua', name: 'A' });
    const b = await c.create({ slug: 'ub', name: 'B' });
    for (const t of [a, b]) await runAs(t.id, () => pool.query(`insert into notes (body) values ('x')`));
    expect(await language('tenantry.current_tenant_id()')).toBe('sql');

    await c.suspend(a.id);
    expect(await language('tenantry.current_tenant_id()')).toBe('plpgsql');
    await expect(count(pool, a.id)).rejects.toBeInstanceOf(TenantSuspendedError);
    await expect(runAs(a.id, () => pool.query(`insert into notes (body) values ('y')`))).rejects.toBeInstanceOf(
      TenantSuspendedError,
    );
    expect(await count(pool, b.id)).toBe(1);

    await c.resume(a.id);
    expect(await language('tenantry.current_tenant_id()')).toBe('sql');
    expect(await count(pool, a.id)).toBe(1);

    await c.softDelete(b.id);
    expect(await language('tenantry.home_tenant_id()')).toBe('plpgsql');
    await expect(count(pool, b.id)).rejects.toBeInstanceOf(TenantDeletedError);
    await expect(runAs(b.id, () => pool.query('select id from tenantry.tenants'))).rejects.toBeInstanceOf(
      TenantDeletedError,
    );
    expect(await count(pool, a.id)).toBe(1);
    expect(
      (await u.admin.query<{ n: number }>('select count(*)::int as n from notes where tenant_id = $1', [b.id])).rows[0]!
        .n,
    ).toBe(1);
  });
});
