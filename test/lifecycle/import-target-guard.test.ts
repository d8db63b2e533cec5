// Import and move refuse, before changing anything, a target that is not the tenant's alone: the
// home database (the catalog), a shared data schema (`public`), a system schema, another tenant's
// schema or database. Asserted from the other tenants' side: their rows, routes and schema claims
// are unchanged, and they still read and write through the app role.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { exportTenant, importTenant } from '../../src/lifecycle/index.js';
import { Placements, type PlacementTarget } from '../../src/tiers/placements.js';
import { TenantMover } from '../../src/tiers/move/tenant-mover.js';
import { dropDatabase } from '../support/drop-database.js';
import {
  exportFixture,
  othersChecksum,
  seedTenant,
  tenantDatabase,
  tenantSchema,
  type ExportFixture,
} from './support/export-fixture.js';

let f: ExportFixture;
let dir: string;
let archive: string;
let home: string;
let other: string;
let acme: string;
const HOME = { tier: 'shared' as const, cluster: 'home' };
const OTHER_SCHEMA = { tier: 'schema' as const, cluster: 'home', schema: 't_other' };
const OTHER_DB = { tier: 'database' as const, cluster: 'home', database: 'tg_other_db' };

beforeAll(async () => {
  f = await exportFixture();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-target-guard-'));
  acme = await seedTenant(f, 'acme', 20, 2);
  other = await seedTenant(f, 'other', 10, 2);
  await tenantSchema(f, 't_other');
  await seedTenant(f, 'other-schema', 5, 1, OTHER_SCHEMA);
  await tenantDatabase(f, 'tg_other_db');
  await seedTenant(f, 'other-db', 5, 1, OTHER_DB);
  archive = path.join(dir, 'acme.tenant');
  await exportTenant({ catalog: f.db.owner, placements: f.placements, tenant: 'acme', out: archive });
  home = (await f.db.owner.query<{ d: string }>('select current_database() as d')).rows[0]!.d;
});
afterAll(async () => {
  await f?.end();
  await rm(dir, { recursive: true, force: true });
});

/** Everything another tenant depends on, in every place: rows, routes, claims, constraints, placements. */
async function othersState(): Promise<unknown> {
  const places = [HOME, OTHER_SCHEMA, OTHER_DB];
  const q = async (where: PlacementTarget, sql: string) => (await f.placements.ownerPool(where).query(sql)).rows;
  return {
    rows: await othersChecksum(f, [], [HOME, OTHER_SCHEMA]),
    tenantDb: await q(
      OTHER_DB,
      `select (select md5(string_agg(t::text, '|' order by t::text)) from projects t) as p,
              (select md5(string_agg(t::text, '|' order by t::text)) from tasks t) as t`,
    ),
    routes: await Promise.all(
      places.map((p) => q(p, 'select tenant_key, state, epoch, schema from tenantry.local_tenants order by 1')),
    ),
    serves: await Promise.all(places.map((p) => q(p, 'select serves_default from tenantry.local_route'))),
    claims: await Promise.all(
      places.map((p) => q(p, 'select schema, tenant_id from tenantry.tenant_schemas order by 1')),
    ),
    checks: await q(
      HOME,
      `select conrelid::regclass::text as t, conname from pg_constraint where contype = 'c'
        and connamespace = 'public'::regnamespace order by 1, 2`,
    ),
    placements: (
      await f.db.owner.query(
        'select tenant_id, tier, cluster, database, schema, epoch from tenantry.placements order by 1',
      )
    ).rows,
    tenants: (await f.db.owner.query('select id, slug, status from tenantry.tenants order by slug')).rows,
    // this file's databases only: other test files create and drop theirs on the same server meanwhile
    // (CI run 20 saw one go between the two reads)
    databases: (await f.db.owner.query(`select datname from pg_database where datname like 'tg\\_%' order by 1`)).rows,
  };
}

/** The shared tenant `other` still reads and writes its rows through the app role. */
async function otherStillWorks(): Promise<void> {
  const pool = f.db.appPool();
  const n = await runAs(other, () => pool.query<{ n: number }>('select count(*)::int as n from projects'));
  expect(n.rows[0]!.n).toBeGreaterThan(0);
  const written = await runAs(other, () =>
    pool.query<{ id: string }>(`insert into projects (name) values ('still writable') returning id`),
  );
  await runAs(other, () => pool.query('delete from projects where id = $1', [written.rows[0]!.id]));
}

const IMPORT_TARGETS: Array<[string, () => PlacementTarget, string]> = [
  [
    'the home database (the catalog)',
    () => ({ tier: 'database', cluster: 'home', database: home }),
    'catalog_database',
  ],
  ["another tenant's database", () => OTHER_DB, 'tenant_database'],
  ['the shared data schema public', () => ({ tier: 'schema', cluster: 'home', schema: 'public' }), 'data_schema'],
  ["Tenantry's own schema", () => ({ tier: 'schema', cluster: 'home', schema: 'tenantry' }), 'reserved_schema'],
  ['pg_catalog', () => ({ tier: 'schema', cluster: 'home', schema: 'pg_catalog' }), 'reserved_schema'],
  ["another tenant's schema", () => OTHER_SCHEMA, 'tenant_schema'],
  // every database created later copies a template (try-out of issue 11: rows spread that way)
  ['template1', () => ({ tier: 'database', cluster: 'home', database: 'template1' }), 'system_database'],
  [
    'template0 (takes no connections)',
    () => ({ tier: 'database', cluster: 'home', database: 'template0' }),
    'system_database',
  ],
  [
    'the maintenance database postgres',
    () => ({ tier: 'database', cluster: 'home', database: 'postgres' }),
    'system_database',
  ],
];

/** Importing as hdb2 into `to` is refused with `error` (code, details), and the other tenants are as they were. */
async function refusedAt(to: PlacementTarget, error: object, placements = f.placements): Promise<void> {
  const before = await othersState();
  await expect(importTenant({ file: archive, catalog: f.db.owner, placements, as: 'hdb2', to })).rejects.toMatchObject(
    error,
  );
  expect(await othersState()).toEqual(before);
}

const taken = (reason: string) => ({ code: 'IMPORT_TARGET_TAKEN', details: { reason } });

describe("import refuses a target that is not the new tenant's alone (IMPORT_TARGET_TAKEN), changing nothing", () => {
  it.each(IMPORT_TARGETS)('%s', async (_, to, reason) => {
    await refusedAt(to(), taken(reason));
    expect((await f.db.owner.query(`select from tenantry.tenants where slug = 'hdb2'`)).rowCount).toBe(0);
    await otherStillWorks();
  });

  it("a schema holding another tenant's rows (not claimed, not a data schema)", async () => {
    await f.db.owner.query(`create schema loose; create table loose.notes (tenant_id uuid not null, body text)`);
    await f.db.owner.query(`insert into loose.notes values ($1, 'theirs')`, [other]);
    await refusedAt({ tier: 'schema', cluster: 'home', schema: 'loose' }, taken('tenant_rows'));
    expect((await f.db.owner.query('select count(*)::int as n from loose.notes')).rows[0]!.n).toBe(1);
  });

  it("a database serving a tenant the catalog does not know (another deployment's)", async () => {
    await tenantDatabase(f, 'tg_foreign');
    const foreign = f.placements.ownerPool({ tier: 'database', cluster: 'home', database: 'tg_foreign' });
    await foreign.query(
      `insert into tenantry.local_tenants (tenant_key, state, epoch) values (gen_random_uuid(), 'active', 3)`,
    );
    await refusedAt({ tier: 'database', cluster: 'home', database: 'tg_foreign' }, taken('tenant_database'));
  });

  it('the home database reached through another cluster name', async () => {
    const twice = new Placements({ catalog: f.db.owner, owners: { home: f.db.ownerUrl, eu: f.db.ownerUrl } });
    try {
      await refusedAt({ tier: 'database', cluster: 'eu', database: home }, taken('catalog_database'), twice);
      await otherStillWorks();
    } finally {
      await twice.end();
    }
  });

  it('a database without Tenantry: IMPORT_TARGET_NOT_INSTALLED, not a raw 42P01', async () => {
    await f.db.admin.query('create database tg_bare');
    try {
      await refusedAt(
        { tier: 'database', cluster: 'home', database: 'tg_bare' },
        { code: 'IMPORT_TARGET_NOT_INSTALLED' },
      );
    } finally {
      await dropDatabase(f.db.admin, 'tg_bare');
    }
  });

  it('a database that does not exist (no --ddl): IMPORT_TARGET_NOT_INSTALLED, not a raw 3D000', async () => {
    await refusedAt(
      { tier: 'database', cluster: 'home', database: 'tg_nowhere' },
      { code: 'IMPORT_TARGET_NOT_INSTALLED' },
    );
  });

  it('a database of its own is still accepted', async () => {
    await tenantDatabase(f, 'tg_hdb2');
    const result = await importTenant({
      file: archive,
      catalog: f.db.owner,
      placements: f.placements,
      as: 'hdb2',
      to: { tier: 'database', cluster: 'home', database: 'tg_hdb2' },
    });
    expect(result.placement.database).toBe('tg_hdb2');
    await otherStillWorks();
  });
});

describe('move refuses the same targets (MOVE_TARGET_TAKEN), changing nothing', () => {
  it.each(IMPORT_TARGETS)('%s', async (_, to, reason) => {
    const before = await othersState();
    const mover = new TenantMover({ placements: f.placements, catalog: f.db.owner });
    await expect(mover.move(acme, to())).rejects.toMatchObject({ code: 'MOVE_TARGET_TAKEN', details: { reason } });
    expect(await othersState()).toEqual(before);
    expect((await f.db.owner.query('select from tenantry.moves where tenant_id = $1', [acme])).rowCount).toBe(0);
    await otherStillWorks();
  });
});

describe('Placements.assign refuses the same targets (PLACEMENT_TARGET_TAKEN), changing nothing', () => {
  it.each(IMPORT_TARGETS)('%s', async (_, to, reason) => {
    const before = await othersState();
    const route = await f.placements.get(acme);
    await expect(f.placements.assign(acme, to())).rejects.toMatchObject({
      code: reason === 'tenant_schema' ? 'TENANT_SCHEMA_TAKEN' : 'PLACEMENT_TARGET_TAKEN',
      status: 409,
      details: { reason },
    });
    expect(await othersState()).toEqual(before);
    expect(await f.placements.get(acme)).toEqual(route);
    await otherStillWorks();
  });

  it('a place of its own is still accepted (and back to shared)', async () => {
    await tenantSchema(f, 't_acme_own');
    const epoch = await f.placements.assign(acme, { tier: 'schema', cluster: 'home', schema: 't_acme_own' });
    expect((await f.placements.get(acme)).epoch).toBe(epoch);
    await f.placements.assign(acme, HOME);
    expect((await f.placements.get(acme)).tier).toBe('shared');
    await otherStillWorks();
  });
});
