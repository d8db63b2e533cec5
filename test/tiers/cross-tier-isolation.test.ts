// The cross-tenant attacks, in every tier: tenant B (and code with no tenant) tries every way it
// has to reach tenant A's rows, whether A lives in the shared tables, in its own schema or in its
// own database, and the superuser confirms nothing of A's changed.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { TenantPool } from '../../src/data/tenant-pool.js';
import { Placements, type PlacementTarget } from '../../src/tiers/placements.js';
import { createTenantDatabase, createTenantSchema, withDatabase } from '../../src/tiers/provision.js';
import { RoutedTenantPool } from '../../src/tiers/routed-tenant-pool.js';
import { TenantRouter } from '../../src/tiers/tenant-router.js';
import { NOTES_DDL } from '../support/notes-table.js';
import { ROLE_PASSWORD, createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { dropDatabase } from '../support/drop-database.js';

type Tier = PlacementTarget['tier'];
const TIERS: Tier[] = ['shared', 'schema', 'database'];

let db: TestDatabase;
let placements: Placements;
let router: TenantRouter;
let pool: RoutedTenantPool;
const extra: Array<{ end(): Promise<void> }> = [];
const databases: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(NOTES_DDL);
  placements = new Placements({ catalog: db.owner, owners: { home: db.ownerUrl } });
  const home = new pg.Pool({ connectionString: db.routerUrl, max: 2 });
  extra.push(home);
  router = new TenantRouter({ pool: home });
  pool = new RoutedTenantPool({ router, clusters: { home: db.appUrl }, contextSecret: db.contextSecret });
});

afterAll(async () => {
  await pool?.end();
  await placements?.end();
  for (const p of extra) await p.end();
  for (const name of databases) await dropDatabase(db.admin, name).catch(() => undefined);
  await db?.drop();
});

/** A tenant placed in `tier`, with one note; returns where its rows can be read as the superuser. */
async function placedTenant(
  slug: string,
  tier: Tier,
): Promise<{ id: string; schema: string | null; database: string | null }> {
  const id = (
    await db.owner.query<{ id: string }>(`insert into tenantry.tenants (slug, name) values ($1, $1) returning id`, [
      slug,
    ])
  ).rows[0]!.id;
  const name = slug.replaceAll('-', '_');
  if (tier === 'schema') {
    await createTenantSchema(db.owner, `t_${name}`, NOTES_DDL);
    await placements.assign(id, { tier, cluster: 'home', schema: `t_${name}` });
  } else if (tier === 'database') {
    const database = `${db.name}_${name}`;
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
  await runAs(id, () => pool.query(`insert into notes (body) values ($1)`, [`secret of ${slug}`]));
  return {
    id,
    schema: tier === 'schema' ? `t_${name}` : null,
    database: tier === 'database' ? `${db.name}_${name}` : null,
  };
}

/** A's notes, read as the superuser where A lives. */
async function truth(a: { id: string; schema: string | null; database: string | null }): Promise<unknown[]> {
  if (a.database) {
    const c = new pg.Client({ connectionString: withDatabase(db.adminUrl, a.database) });
    await c.connect();
    try {
      return (await c.query('select * from notes order by id')).rows;
    } finally {
      await c.end();
    }
  }
  return (await db.admin.query(`select * from ${a.schema ?? 'public'}.notes where tenant_id = $1 order by id`, [a.id]))
    .rows;
}

describe.each(TIERS.flatMap((a) => TIERS.map((b) => [a, b] as const)))(
  'A in the %s tier, B in the %s tier',
  (tierA, tierB) => {
    let a: Awaited<ReturnType<typeof placedTenant>>;
    let b: Awaited<ReturnType<typeof placedTenant>>;
    let before: unknown[];

    beforeAll(async () => {
      a = await placedTenant(`a-${tierA}-${tierB}`, tierA);
      b = await placedTenant(`b-${tierA}-${tierB}`, tierB);
      before = await truth(a);
      expect(before).toHaveLength(1);
    });

    it("B's own view holds only B's rows", async () => {
      const { rows } = await runAs(b.id, () =>
        pool.query<{ tenant_id: string; body: string }>('select tenant_id, body from notes'),
      );
      expect(rows).toEqual([{ tenant_id: b.id, body: `secret of b-${tierA}-${tierB}` }]);
    });

    it("B naming A's schema by hand reads nothing and writes nothing", async () => {
      const table = `${a.schema ?? 'public'}.notes`;
      if (a.schema !== null && b.database !== null) {
        // B's statements run in B's own database, where A's schema does not even exist
        await expect(runAs(b.id, () => pool.query(`select count(*) from ${table}`))).rejects.toMatchObject({
          code: '42P01',
        });
        expect(await truth(a)).toEqual(before);
        return;
      }
      const read = await runAs(b.id, () =>
        pool.query<{ n: number }>(`select count(*)::int as n from ${table} where tenant_id = $1`, [a.id]),
      );
      expect(read.rows[0]!.n).toBe(0);
      const update = await runAs(b.id, () =>
        pool.query(`update ${table} set body = 'pwned' where tenant_id = $1`, [a.id]),
      );
      expect(update.rowCount).toBe(0);
      const del = await runAs(b.id, () => pool.query(`delete from ${table} where tenant_id = $1`, [a.id]));
      expect(del.rowCount).toBe(0);
      await expect(
        runAs(b.id, () => pool.query(`insert into ${table} (tenant_id, body) values ($1, 'planted')`, [a.id])),
      ).rejects.toMatchObject({ code: '42501' });
      expect(await truth(a)).toEqual(before);
    });

    it("B connecting straight to A's database is refused there before any row is read", async () => {
      if (a.database === null && b.database === null) {
        // same database: the route check lets B in only on B's own route, where RLS shows B's rows
        const direct = new TenantPool({ connectionString: db.appUrl, contextSecret: db.contextSecret, max: 1 });
        extra.push(direct);
        if (tierB === 'shared') {
          const { rows } = await runAs(b.id, () => direct.query<{ tenant_id: string }>('select tenant_id from notes'));
          expect(rows.every((r) => r.tenant_id === b.id)).toBe(true);
        } else {
          await expect(runAs(b.id, () => direct.query('select 1 from notes'))).rejects.toMatchObject({ code: 'TR003' });
        }
      } else {
        const target = a.database ?? db.name;
        const direct = new TenantPool({
          connectionString: withDatabase(db.appUrl, target),
          contextSecret: db.contextSecret,
          max: 1,
        });
        extra.push(direct);
        await expect(runAs(b.id, () => direct.query('select count(*) from notes'))).rejects.toMatchObject({
          code: 'TR003',
        });
        await expect(
          runAs(b.id, () => direct.query(`insert into notes (tenant_id, body) values ($1, 'planted')`, [a.id])),
        ).rejects.toMatchObject({ code: 'TR003' });
      }
      expect(await truth(a)).toEqual(before);
    });

    it('with no tenant, nothing of A is visible in any tier', async () => {
      const { rows } = await pool.query<{ n: number }>(`select count(*)::int as n from ${a.schema ?? 'public'}.notes`);
      expect(rows[0]!.n).toBe(0);
      await expect(
        pool.query(`insert into ${a.schema ?? 'public'}.notes (tenant_id, body) values ($1, 'planted')`, [a.id]),
      ).rejects.toMatchObject({ code: '42501' });
      expect(await truth(a)).toEqual(before);
    });
  },
);
