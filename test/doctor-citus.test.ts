// `tenantry doctor --citus`: each defect that would stop a schema from distributing on Citus by
// tenant column is planted on a fresh database, found, fixed with the finding's own fix, and gone.
// No Citus runs here: the checks read the plain PostgreSQL catalog (see docs/citus.md).
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { runAs } from '../src/context/tenant-context.js';
import { runDoctor, type DoctorReport } from '../src/policy/doctor.js';
import { ensureExtensions, migrate } from '../app/migrate.js';
import { ROLE_PASSWORD, type TestDatabase } from './support/test-database.js';
import { createDoctorTestDatabase } from './support/doctor-findings.js';
import { applyFixes, findingOf } from './support/doctor-findings.js';

const exec = promisify(execFile);

/** Every finding as `CODE object`, sorted: asserts what is there and what is not at once. */
function summary(report: DoctorReport): string[] {
  return report.findings.map((f) => `${f.code} ${f.object}`).sort();
}

const CLEAN = { ok: true, findings: [] };
let db: TestDatabase | undefined;

/** A fresh database with `sql` run as the owner (like a migration), after `adminSql` as the superuser; dropped after the test. */
async function plant(sql: string, adminSql?: string): Promise<TestDatabase> {
  db = await createDoctorTestDatabase();
  if (adminSql) await db.admin.query(adminSql);
  await db.owner.query(sql);
  return db;
}

describe('doctor --citus', () => {
  afterEach(async () => {
    const current = db;
    db = undefined;
    await current?.drop();
  });

  it('finds nothing on a schema that distributes: tenant-led keys, tenant-paired foreign keys, a global table referenced by tenant tables', async () => {
    const d = await plant(`
      create table plans (id text primary key, price int not null);
      create table accounts (tenant_id uuid not null, id uuid not null default gen_random_uuid(), email text not null, plan text references plans (id),
                             primary key (tenant_id, id), unique (tenant_id, email));
      create table notes (tenant_id uuid not null, id bigint generated always as identity, account_id uuid not null, body text,
                          primary key (tenant_id, id), foreign key (tenant_id, account_id) references accounts (tenant_id, id) on delete cascade);
      create index on accounts (plan);
      select tenantry.register_global_table('plans');
      select tenantry.register_tenant_table('accounts');
      select tenantry.register_tenant_table('notes');`);
    expect(await runDoctor(d.adminUrl, { citus: true })).toEqual(CLEAN);
  });

  it('makes keys without the tenant column errors, since create_distributed_table refuses them; the key fixes clear them', async () => {
    const d = await plant(`
      create table orders (tenant_id uuid not null, id uuid primary key default gen_random_uuid(), code text unique);
      create table lines (tenant_id uuid not null, order_id uuid not null references orders (id), n int not null, primary key (tenant_id, order_id, n));
      create index on lines (order_id);
      select tenantry.register_tenant_table('orders');
      select tenantry.register_tenant_table('lines');`);
    const plain = await runDoctor(d.adminUrl);
    const citus = await runDoctor(d.adminUrl, { citus: true });
    const keys = [
      'FOREIGN_KEY_WITHOUT_TENANT lines_order_id_fkey on public.lines',
      'PRIMARY_KEY_WITHOUT_TENANT orders_pkey on public.orders',
      'UNIQUE_WITHOUT_TENANT orders_code_key on public.orders',
    ];
    expect(summary(plain)).toEqual(keys);
    expect(summary(citus)).toEqual(keys);
    expect(plain.findings.map((f) => f.severity).sort()).toEqual(['error', 'warning', 'warning']);
    expect(citus.findings.map((f) => f.severity)).toEqual(['error', 'error', 'error']);
    expect(findingOf(citus, 'PRIMARY_KEY_WITHOUT_TENANT', 'orders_pkey on public.orders').message).toContain(
      'On Citus, create_distributed_table refuses it',
    );
    // the same fixes as without Citus, same order: the referenced side first gets a key with the tenant
    await d.admin.query('alter table orders add unique (tenant_id, id)');
    expect(
      await applyFixes(d, citus, ['FOREIGN_KEY_WITHOUT_TENANT', 'UNIQUE_WITHOUT_TENANT', 'PRIMARY_KEY_WITHOUT_TENANT']),
    ).toBe(3);
    // the unique key added for the foreign key now duplicates the primary key: one goes
    await applyFixes(d, await runDoctor(d.adminUrl, { citus: true }), ['DUPLICATE_INDEX']);
    expect(await runDoctor(d.adminUrl, { citus: true })).toEqual(CLEAN);
  });

  it('flags an exclusion constraint that does not compare the tenant column with =, and its fix scopes it to one tenant', async () => {
    const d = await plant(
      `
      create table bookings (tenant_id uuid not null default tenantry.current_tenant_id(), id uuid not null default gen_random_uuid(),
                             room text not null, during tstzrange not null, primary key (tenant_id, id),
                             exclude using gist (room with =, during with &&));
      select tenantry.register_tenant_table('bookings');`,
      // GiST compares text and uuid with = only through btree_gist, as the finding's message says
      'create extension btree_gist',
    );
    expect(await runDoctor(d.adminUrl)).toEqual(CLEAN); // a Citus-only check
    const report = await runDoctor(d.adminUrl, { citus: true });
    expect(summary(report)).toEqual(['CITUS_EXCLUSION_WITHOUT_TENANT bookings_room_during_excl on public.bookings']);
    expect(report.ok).toBe(false);
    const finding = findingOf(report, 'CITUS_EXCLUSION_WITHOUT_TENANT', 'bookings_room_during_excl on public.bookings');
    expect(finding.fix).toBe(
      'ALTER TABLE public.bookings DROP CONSTRAINT bookings_room_during_excl, ADD CONSTRAINT bookings_room_during_excl EXCLUDE USING gist (tenant_id WITH =, room WITH =, during WITH &&);',
    );
    await applyFixes(d, report, ['CITUS_EXCLUSION_WITHOUT_TENANT']);
    expect(await runDoctor(d.adminUrl, { citus: true })).toEqual(CLEAN);
    // the constraint now holds within a tenant only: B books what A booked, A cannot book it twice
    const pool = d.appPool();
    const insert = `insert into bookings (room, during) values ('blue', tstzrange('2030-01-01 10:00+00', '2030-01-01 11:00+00'))`;
    await runAs(randomUUID(), () => pool.query(insert));
    const a = randomUUID();
    await runAs(a, () => pool.query(insert));
    await expect(runAs(a, () => pool.query(insert))).rejects.toMatchObject({ code: '23P01' });
  });

  it('flags a foreign key from a tenant table to a table that would stay local; registering it as global (a reference table) clears it', async () => {
    const d = await plant(`
      create table warehouses (id int primary key, city text not null);
      create table stock (tenant_id uuid not null, warehouse int not null references warehouses (id), n int not null, primary key (tenant_id, warehouse));
      create index on stock (warehouse);
      select tenantry.register_tenant_table('stock');`);
    expect(await runDoctor(d.adminUrl)).toEqual(CLEAN);
    const report = await runDoctor(d.adminUrl, { citus: true });
    expect(summary(report)).toEqual(['CITUS_FOREIGN_KEY_TO_LOCAL_TABLE stock_warehouse_fkey on public.stock']);
    const finding = findingOf(report, 'CITUS_FOREIGN_KEY_TO_LOCAL_TABLE', 'stock_warehouse_fkey on public.stock');
    expect(finding.severity).toBe('error');
    // the fix proper runs on Citus; here, the message's alternative for a table the app may read
    // in the order that works on a coordinator (the plain policies first: create_reference_table
    // makes a Citus local table of stock, which refuses the InitPlan policy)
    expect(finding.fix).toBe(
      [
        `SELECT tenantry.citus_policies('public.stock'); -- first, as the owner role: the policies in the form Citus accepts`,
        `SELECT create_reference_table('public.warehouses'); -- public.stock becomes a Citus local table`,
        `SELECT tenantry.citus_tenant_table('public.stock'); -- then distributed`,
      ].join('\n'),
    );
    expect(finding.message).toContain('register it as a global table');
    await d.owner.query(`select tenantry.register_global_table('warehouses')`);
    expect(await runDoctor(d.adminUrl, { citus: true })).toEqual(CLEAN);
  });

  it('flags foreign key actions Citus refuses on the tenant column; the fix keeps the key and its allowed actions', async () => {
    const d = await plant(`
      create table folders (tenant_id uuid not null, id uuid not null, parent uuid, primary key (tenant_id, id),
                            foreign key (tenant_id, parent) references folders (tenant_id, id) on delete set null (parent));
      create table files (tenant_id uuid not null, id uuid not null, folder uuid not null, primary key (tenant_id, id),
                          foreign key (tenant_id, folder) references folders (tenant_id, id) on update cascade on delete cascade);
      select tenantry.register_tenant_table('folders');
      select tenantry.register_tenant_table('files');`);
    expect(await runDoctor(d.adminUrl)).toEqual(CLEAN);
    const report = await runDoctor(d.adminUrl, { citus: true });
    expect(summary(report)).toEqual([
      'CITUS_FOREIGN_KEY_ACTION files_tenant_id_folder_fkey on public.files',
      'CITUS_FOREIGN_KEY_ACTION folders_tenant_id_parent_fkey on public.folders',
    ]);
    expect(
      findingOf(report, 'CITUS_FOREIGN_KEY_ACTION', 'folders_tenant_id_parent_fkey on public.folders').message,
    ).toContain('ON DELETE SET NULL (parent)');
    await applyFixes(d, report, ['CITUS_FOREIGN_KEY_ACTION']);
    expect(await runDoctor(d.adminUrl, { citus: true })).toEqual(CLEAN);
    const defs = await d.admin.query(
      `select pg_get_constraintdef(oid) as def from pg_constraint where contype = 'f' and conrelid in ('files'::regclass, 'folders'::regclass) order by conname`,
    );
    expect(defs.rows.map((r) => r.def)).toEqual([
      'FOREIGN KEY (tenant_id, folder) REFERENCES folders(tenant_id, id) ON DELETE CASCADE',
      'FOREIGN KEY (tenant_id, parent) REFERENCES folders(tenant_id, id)',
    ]);
  });

  it('flags a global table with a foreign key to a tenant table; dropping it clears the finding', async () => {
    const d = await plant(`
      create table accounts (tenant_id uuid not null, id uuid not null, primary key (tenant_id, id));
      create table featured (slot int primary key, tenant_id uuid not null, account_id uuid not null,
                             foreign key (tenant_id, account_id) references accounts (tenant_id, id));
      select tenantry.register_tenant_table('accounts');
      select tenantry.register_global_table('featured');`);
    const report = await runDoctor(d.adminUrl, { citus: true });
    expect(summary(report)).toEqual([
      'CITUS_GLOBAL_TABLE_REFERENCES_TENANT featured_tenant_id_account_id_fkey on public.featured',
    ]);
    expect(
      findingOf(report, 'CITUS_GLOBAL_TABLE_REFERENCES_TENANT', 'featured_tenant_id_account_id_fkey on public.featured')
        .fix,
    ).toBe('ALTER TABLE public.featured DROP CONSTRAINT featured_tenant_id_account_id_fkey;');
    await applyFixes(d, report, ['CITUS_GLOBAL_TABLE_REFERENCES_TENANT']);
    expect(await runDoctor(d.adminUrl, { citus: true })).toEqual(CLEAN);
  });

  it('warns about tenant tables without a primary key: a unique index with the tenant becomes it, else whole rows identify them', async () => {
    const d = await plant(`
      create table events (tenant_id uuid not null, at timestamptz not null default now(), what text);
      create table tags (tenant_id uuid not null, name text not null);
      create unique index tags_tenant_name on tags (tenant_id, name);
      create table logged (tenant_id uuid not null, line text);
      alter table logged replica identity full;
      select tenantry.register_tenant_table('events');
      select tenantry.register_tenant_table('tags');
      select tenantry.register_tenant_table('logged');`);
    const report = await runDoctor(d.adminUrl, { citus: true });
    expect(summary(report)).toEqual(['CITUS_NO_PRIMARY_KEY public.events', 'CITUS_NO_PRIMARY_KEY public.tags']);
    expect(report.ok).toBe(true); // it distributes; moving its shards online is what fails
    expect(findingOf(report, 'CITUS_NO_PRIMARY_KEY', 'public.events').fix).toBe(
      'ALTER TABLE public.events REPLICA IDENTITY FULL;',
    );
    expect(findingOf(report, 'CITUS_NO_PRIMARY_KEY', 'public.tags').fix).toBe(
      'ALTER TABLE public.tags ADD PRIMARY KEY USING INDEX tags_tenant_name;',
    );
    await applyFixes(d, report, ['CITUS_NO_PRIMARY_KEY']);
    expect(await runDoctor(d.adminUrl, { citus: true })).toEqual(CLEAN);
    const pk = await d.admin.query(
      `select pg_get_constraintdef(oid) as def from pg_constraint where conrelid = 'tags'::regclass and contype = 'p'`,
    );
    expect(pk.rows).toEqual([{ def: 'PRIMARY KEY (tenant_id, name)' }]);
  });

  it('tenantry doctor --citus exits 1 where plain doctor only warns', async () => {
    const d = await plant(`
      create table orders (tenant_id uuid not null, id uuid primary key);
      select tenantry.register_tenant_table('orders');`);
    const cli = async (...args: string[]) => {
      try {
        const { stdout } = await exec(
          path.resolve('node_modules/.bin/tsx'),
          [path.resolve('src/cli/main.ts'), '--database-url', d.adminUrl, 'doctor', ...args],
          {
            env: { ...process.env, TENANTRY_APP_PASSWORD: ROLE_PASSWORD },
          },
        );
        return { code: 0, stdout };
      } catch (error) {
        const e = error as { code: number; stdout: string };
        return { code: e.code, stdout: e.stdout };
      }
    };
    const plain = await cli('--json');
    const citus = await cli('--citus', '--json');
    expect([plain.code, citus.code]).toEqual([0, 1]);
    expect(JSON.parse(citus.stdout)).toMatchObject({
      ok: false,
      findings: [{ code: 'PRIMARY_KEY_WITHOUT_TENANT', severity: 'error' }],
    });
  });
});

describe('doctor --citus on the reference server’s schema', () => {
  let ref: TestDatabase;
  afterAll(() => ref?.drop());

  it('reports the foreign key to the private users table and the trigger on recordings, both refused by Citus', async () => {
    ref = await createDoctorTestDatabase();
    await ensureExtensions(ref.adminUrl);
    await migrate(ref.owner, { appRole: ref.appRole });
    expect(await runDoctor(ref.adminUrl)).toEqual(CLEAN);
    const report = await runDoctor(ref.adminUrl, { citus: true });
    // members.user_id references app_private.users: global by design (one person, many tenants),
    // and never granted to the app, so it is not registered as a global table
    // recordings_emit_events: Citus 13.2 refuses triggers on distributed tables (verified, docs/citus.md)
    expect(summary(report)).toEqual([
      'CITUS_FOREIGN_KEY_TO_LOCAL_TABLE members_user_id_fkey on public.members',
      'CITUS_TRIGGER_ON_TENANT_TABLE recordings_emit_events on public.recordings',
      // the usage meter's statement triggers (app/migrations/008_recording_usage.sql): refused too
      'CITUS_TRIGGER_ON_TENANT_TABLE tenantry_meter_delete on public.recordings',
      'CITUS_TRIGGER_ON_TENANT_TABLE tenantry_meter_insert on public.recordings',
      'CITUS_TRIGGER_ON_TENANT_TABLE tenantry_meter_update on public.recordings',
    ]);
    expect(findingOf(report, 'CITUS_FOREIGN_KEY_TO_LOCAL_TABLE', 'members_user_id_fkey on public.members').fix).toBe(
      [
        `SELECT tenantry.citus_policies('public.members'); -- first, as the owner role: the policies in the form Citus accepts`,
        `SELECT create_reference_table('app_private.users'); -- public.members becomes a Citus local table`,
        `SELECT tenantry.citus_tenant_table('public.members'); -- then distributed`,
      ].join('\n'),
    );
  });
});
