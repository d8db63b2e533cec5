// A purge never drops what is not the tenant's alone: a placement row (crafted, or left by an
// import or move from before the guard) pointing at the home database or the shared schema
// `public` is refused with PURGE_TARGET_SHARED, by the plan and by the run, and nothing of the
// other tenants changes: their rows, the database and schema, their reads and writes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { TenantCatalog } from '../../src/catalog/tenant-catalog.js';
import { TenantPurger } from '../../src/lifecycle/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { APP_DDL, rowsOfTenant, seedTenant } from './support/purge-fixtures.js';

let db: TestDatabase;
let catalog: TenantCatalog;
let home: string;
let other: string;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(APP_DDL);
  catalog = new TenantCatalog(db.owner);
  other = (await catalog.create({ slug: 'other', name: 'other' })).id;
  await seedTenant(db.owner, other, 20);
  home = (await db.owner.query<{ d: string }>('select current_database() as d')).rows[0]!.d;
});
afterAll(async () => {
  await db?.drop();
});

function purger(): TenantPurger {
  // a superuser URL is given: without the guard, the database drop would run
  return new TenantPurger({ catalog: db.owner, owners: { home: db.ownerUrl }, admins: { home: db.adminUrl } });
}

async function crafted(slug: string, where: { tier: string; database: string | null; schema: string | null }) {
  const t = await catalog.create({ slug, name: slug });
  await seedTenant(db.owner, t.id, 5);
  await catalog.softDelete(t.id);
  // crafted after the delete: the catalog's status change would otherwise look for that place
  await db.owner.query(
    `insert into tenantry.placements (tenant_id, tier, cluster, database, schema, epoch) values ($1, $2, 'home', $3, $4, 7)`,
    [t.id, where.tier, where.database, where.schema],
  );
  return t.id;
}

async function othersState(): Promise<unknown> {
  return {
    rows: await rowsOfTenant(db.owner, other),
    databases: (await db.admin.query('select datname from pg_database order by 1')).rows,
    schemas: (await db.owner.query('select nspname from pg_namespace order by 1')).rows,
    purges: (await db.owner.query(`select id from tenantry.purges`)).rowCount,
  };
}

async function otherStillWorks(): Promise<void> {
  const pool = db.appPool();
  const tables = await db.owner.query<{ t: string }>(
    `select c.relname as t from tenantry.registered_tables r join pg_class c on c.oid = r.relid
      join pg_namespace n on n.oid = c.relnamespace where r.kind = 'tenant' and n.nspname = 'public' order by 1 limit 1`,
  );
  const n = await runAs(other, () => pool.query(`select count(*)::int as n from ${tables.rows[0]!.t}`));
  expect(n.rows[0]!.n).toBeGreaterThan(0);
}

describe('a purge refuses to drop a shared place (PURGE_TARGET_SHARED) and drops nothing', () => {
  it.each([
    ['the home database', () => ({ tier: 'database', database: home, schema: null }), 'catalog_database'],
    ['the shared schema public', () => ({ tier: 'schema', database: null, schema: 'public' }), 'data_schema'],
  ])('%s', async (name, where, reason) => {
    const slug = name.includes('database') ? 'evil-db' : 'evil-schema';
    const id = await crafted(slug, where());
    const p = purger();
    try {
      const before = await othersState();
      await expect(p.plan(slug, { ignoreRetention: true })).rejects.toMatchObject({
        code: 'PURGE_TARGET_SHARED',
        details: { reason },
      });
      await expect(p.run(slug, { confirm: slug, operator: 'test', ignoreRetention: true })).rejects.toMatchObject({
        code: 'PURGE_TARGET_SHARED',
        details: { reason },
      });
      expect(await othersState()).toEqual(before);
      expect((await db.owner.query('select status from tenantry.tenants where id = $1', [id])).rows).toEqual([
        { status: 'deleted' },
      ]);
      await otherStillWorks();
    } finally {
      await p.end();
    }
  });
});
