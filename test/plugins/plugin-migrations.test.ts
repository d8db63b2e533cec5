import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runAs, TenantPool } from '../../src/index.js';
import { runDoctor } from '../../src/policy/doctor.js';
import { Placements } from '../../src/tiers/placements.js';
import { createTenantDatabase, createTenantSchema, withDatabase } from '../../src/tiers/provision.js';
import { migrateEverywhere } from '../../src/tiers/migrate/migrate-everywhere.js';
import { RoutedTenantPool } from '../../src/tiers/routed-tenant-pool.js';
import { TenantRouter } from '../../src/tiers/tenant-router.js';
import { definePlugin, definePlugins } from '../../src/plugins/index.js';
import type { Migration } from '../../src/tiers/migrate/migration-files.js';
import { ROLE_PASSWORD, createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { dropDatabase } from '../support/drop-database.js';

// The application's own migration (version 1) and a plugin's (1001, 1002): applied by the
// existing migrator to the shared tables, a tenant schema and a tenant database.
const APP: Migration[] = [
  {
    version: 1,
    name: '001_notes.sql',
    scope: 'tenant',
    sql: `create table notes (tenant_id uuid not null default tenantry.current_tenant_id(), id uuid not null default gen_random_uuid(), primary key (tenant_id, id));
select tenantry.register_tenant_table('notes');`,
    checksum: 'app-1',
  },
];
const plugin = definePlugin({
  name: 'transcripts',
  version: '1.0.0',
  migrations: [
    {
      version: 1001,
      name: 'transcripts',
      sql: `create table transcripts (
  tenant_id uuid not null default tenantry.current_tenant_id(),
  id uuid not null default gen_random_uuid(),
  body text not null,
  primary key (tenant_id, id)
);
select tenantry.register_tenant_table('transcripts');`,
    },
    {
      version: 1002,
      name: 'transcripts_lang',
      sql: `alter table transcripts add column language text not null default 'en';`,
    },
  ],
});
const registry = definePlugins({ plugins: [plugin] });

let db: TestDatabase;
let placements: Placements;
let dAdmin: pg.Pool;
let dDatabase: string;
const tenants: Record<'shared' | 'schema' | 'database', string> = { shared: '', schema: '', database: '' };

async function tenant(slug: string): Promise<string> {
  const { rows } = await db.owner.query<{ id: string }>(
    `insert into tenantry.tenants (slug, name) values ($1, $1) returning id`,
    [slug],
  );
  return rows[0]!.id;
}

beforeAll(async () => {
  db = await createTestDatabase();
  placements = new Placements({ catalog: db.owner, owners: { home: db.ownerUrl } });
  tenants.shared = await tenant('in-shared');
  tenants.schema = await tenant('in-schema');
  await createTenantSchema(db.owner, 't_plug', 'select 1');
  await placements.assign(tenants.schema, { tier: 'schema', cluster: 'home', schema: 't_plug' });
  dDatabase = `${db.name}_p`;
  await createTenantDatabase({
    adminUrl: db.adminUrl,
    ownerUrl: db.ownerUrl,
    database: dDatabase,
    ddl: 'select 1',
    appRole: db.appRole,
    ownerRole: db.ownerRole,
    appPassword: ROLE_PASSWORD,
    ownerPassword: ROLE_PASSWORD,
    contextSecret: db.contextSecret,
  });
  tenants.database = await tenant('in-database');
  await placements.assign(tenants.database, { tier: 'database', cluster: 'home', database: dDatabase });
  dAdmin = new pg.Pool({ connectionString: withDatabase(db.adminUrl, dDatabase), max: 2 });
  dAdmin.on('error', () => undefined);
});

afterAll(async () => {
  await placements?.end();
  await dAdmin?.end();
  if (db) {
    await dropDatabase(db.admin, dDatabase).catch(() => undefined);
    await db.drop();
  }
});

describe('plugin migrations through the tenant-aware migrator', () => {
  it('creates the plugin tables in the shared tables, a tenant schema and a tenant database, RLS forced and registered', async () => {
    const report = await migrateEverywhere({
      catalog: db.owner,
      clusters: { home: db.ownerUrl },
      migrations: registry.migrations(APP),
    });
    expect(report.ok).toBe(true);
    for (const r of report.results) expect(r.applied).toContain('1001_transcripts_transcripts.sql');
    const check = `select c.relrowsecurity and c.relforcerowsecurity as forced,
                          (select count(*)::int from pg_policy p where p.polrelid = c.oid) as policies
                     from pg_class c where c.oid = to_regclass($1)`;
    for (const [pool, table] of [
      [db.admin, 'public.transcripts'],
      [db.admin, 't_plug.transcripts'],
      [dAdmin, 'public.transcripts'],
    ] as const) {
      const { rows } = await pool.query<{ forced: boolean; policies: number }>(check, [table]);
      expect(rows[0], table).toMatchObject({ forced: true });
      expect(rows[0]!.policies, table).toBeGreaterThan(0);
    }
    const doctor = await runDoctor(db.adminUrl, { schemas: ['public', 't_plug'] });
    expect(doctor.findings.filter((f) => f.severity === 'error')).toEqual([]);
    // a re-run has nothing to do
    const again = await migrateEverywhere({
      catalog: db.owner,
      clusters: { home: db.ownerUrl },
      migrations: registry.migrations(APP),
    });
    expect(again.results.every((r) => r.status === 'current')).toBe(true);
  });

  it("in every tier a tenant reads and writes only its own plugin rows: the other's refused, nothing changed", async () => {
    const routerPool = new pg.Pool({ connectionString: db.routerUrl, max: 2 });
    const router = new TenantRouter({ pool: routerPool });
    await router.start();
    const routed = new RoutedTenantPool({ router, clusters: { home: db.appUrl }, contextSecret: db.contextSecret });
    try {
      for (const t of Object.values(tenants))
        await runAs(t, () => routed.query(`insert into transcripts (body) values ($1)`, [`of ${t}`]));
      const count = async () =>
        Number((await db.admin.query('select count(*) from public.transcripts')).rows[0].count) +
        Number((await db.admin.query('select count(*) from t_plug.transcripts')).rows[0].count) +
        Number((await dAdmin.query('select count(*) from public.transcripts')).rows[0].count);
      const before = await count();
      expect(before).toBe(3);
      // the shared-tier tenant aims at the shared table's rows of other tenants: none visible, none writable
      const shared = new TenantPool({ connectionString: db.appUrl, contextSecret: db.contextSecret });
      try {
        const other = await runAs(tenants.shared, () =>
          shared.query(`update transcripts set body = 'x' where tenant_id <> $1`, [tenants.shared]),
        );
        expect(other.rowCount).toBe(0);
        await expect(
          runAs(tenants.shared, () =>
            shared.query(`insert into transcripts (tenant_id, body) values ($1, 'forged')`, [tenants.schema]),
          ),
        ).rejects.toMatchObject({ code: '42501' });
        // the schema tier's table named from the shared tier's context: RLS forced there too, no row
        const across = await runAs(tenants.shared, () => shared.query('select * from t_plug.transcripts'));
        expect(across.rows).toEqual([]);
      } finally {
        await shared.end();
      }
      for (const t of Object.values(tenants)) {
        const { rows } = await runAs(t, () => routed.query<{ body: string }>('select body from transcripts'));
        expect(rows.map((r) => r.body)).toEqual([`of ${t}`]);
      }
      expect(await count()).toBe(before);
    } finally {
      await routed.end();
      await router.close();
      await routerPool.end();
    }
  });
});
