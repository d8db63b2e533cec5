import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDoctor, type DoctorReport, type FindingCode } from '../src/policy/doctor.js';
import { Placements } from '../src/tiers/placements.js';
import { createTenantSchema } from '../src/tiers/provision.js';
import { migrateEverywhere } from '../src/tiers/migrate/migrate-everywhere.js';
import { doctorEverywhere } from '../src/tiers/migrate/doctor-everywhere.js';
import { NOTES_DDL } from './support/notes-table.js';
import type { TestDatabase } from './support/test-database.js';
import { applyFixes, createDoctorTestDatabase, findingOf } from './support/doctor-findings.js';

// The tiers' doctor findings: policies that skip (or keep) the route check against the table's
// pinned flag, and schema-tier tenants whose schema lacks a shared tenant table.

const TIER_CODES: FindingCode[] = [
  'POLICY_SKIPS_ROUTE_CHECK',
  'PINNED_TABLE_ROUTE_CHECKED',
  'SCHEMA_TENANT_TABLE_MISSING',
];

/** The objects of every finding with `code`, sorted: asserts presence and absence at once. */
function objectsOf(report: DoctorReport, code: FindingCode): string[] {
  return report.findings
    .filter((f) => f.code === code)
    .map((f) => f.object)
    .sort();
}

/** The isolation policy's USING expression, as PostgreSQL stores it. */
async function isolationUsing(db: TestDatabase, table: string): Promise<string> {
  const { rows } = await db.admin.query<{ expr: string }>(
    `select pg_get_expr(polqual, polrelid) as expr from pg_policy where polrelid = $1::regclass and polname = 'tenantry_isolation'`,
    [table],
  );
  return rows[0]!.expr;
}

const MEMBERS_DDL = `
  create table members (tenant_id uuid not null default tenantry.home_tenant_id(), user_id uuid not null, primary key (tenant_id, user_id));
  select tenantry.register_tenant_table('members');
  select tenantry.pin_tenant_table('members');`;

describe('doctor: pinned tables and the route check', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createDoctorTestDatabase();
    await db.owner.query(`${MEMBERS_DDL}
      ${NOTES_DDL}
      create table tasks (org_id uuid not null, id bigint generated always as identity, title text not null, primary key (org_id, id));
      select tenantry.register_tenant_table('tasks', 'org_id');`);
  });
  afterAll(() => db?.drop());

  it('finds nothing when the pinned table uses home_tenant_id() and the others current_tenant_id()', async () => {
    expect(await isolationUsing(db, 'members')).toContain('home_tenant_id()');
    expect(await isolationUsing(db, 'notes')).toContain('current_tenant_id()');
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
  });

  it('flags a hand-written home_tenant_id() policy on an unpinned table (error); the fixes restore the route check', async () => {
    await db.owner.query(`
      drop policy tenantry_isolation on notes;
      create policy tenantry_isolation on notes using (tenant_id = (select tenantry.home_tenant_id())) with check (tenant_id = (select tenantry.home_tenant_id()));
      create policy notes_home_read on notes for select using (tenant_id = (select tenantry.home_tenant_id()) and body <> 'tenantry.home_tenant_id()');
      drop policy tenantry_isolation on tasks;
      create policy tenantry_isolation on tasks using (org_id = (select tenantry.home_tenant_id())) with check (org_id = (select tenantry.home_tenant_id()));`);
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'POLICY_SKIPS_ROUTE_CHECK')).toEqual([
      'notes_home_read on public.notes',
      'tenantry_isolation on public.notes',
      'tenantry_isolation on public.tasks',
    ]);
    expect(objectsOf(report, 'PINNED_TABLE_ROUTE_CHECKED')).toEqual([]);
    expect(report.ok).toBe(false);
    const isolation = findingOf(report, 'POLICY_SKIPS_ROUTE_CHECK', 'tenantry_isolation on public.notes');
    expect(isolation.severity).toBe('error');
    expect(isolation.message).toContain('public.notes is not pinned');
    expect(isolation.message).toContain('tenantry.current_tenant_id()');
    expect(isolation.message).toContain(`tenantry.pin_tenant_table('public.notes')`);
    expect(isolation.fix).toBe(`SELECT tenantry.register_tenant_table('public.notes');`);
    expect(findingOf(report, 'POLICY_SKIPS_ROUTE_CHECK', 'tenantry_isolation on public.tasks').fix).toBe(
      `SELECT tenantry.register_tenant_table('public.tasks', 'org_id');`,
    );
    // a policy Tenantry did not write is rewritten in place; the string literal is left alone
    const own = findingOf(report, 'POLICY_SKIPS_ROUTE_CHECK', 'notes_home_read on public.notes');
    expect(own.fix).toMatch(
      /^ALTER POLICY notes_home_read ON public\.notes USING \(.*tenantry\.current_tenant_id\(\).*'tenantry\.home_tenant_id\(\)'.*\);$/,
    );

    expect(await applyFixes(db, report, ['POLICY_SKIPS_ROUTE_CHECK'])).toBe(3);
    expect(await isolationUsing(db, 'notes')).toContain('current_tenant_id()');
    expect(await isolationUsing(db, 'tasks')).toBe(
      '(org_id = ( SELECT tenantry.current_tenant_id() AS current_tenant_id))',
    );
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
    await db.owner.query('drop policy notes_home_read on notes');
  });

  it('flags a table unpinned by hand whose policy still skips the route check', async () => {
    await db.admin.query(
      `update tenantry.registered_tables set pinned = false where relid = 'public.members'::regclass`,
    );
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'POLICY_SKIPS_ROUTE_CHECK')).toEqual(['tenantry_isolation on public.members']);
    expect(report.ok).toBe(false);
    await applyFixes(db, report, ['POLICY_SKIPS_ROUTE_CHECK']);
    expect(await isolationUsing(db, 'members')).toContain('current_tenant_id()');
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
    await db.owner.query(`select tenantry.pin_tenant_table('members')`);
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
  });

  it('warns about a pinned table whose policy still checks the route; pin_tenant_table re-makes it', async () => {
    // the flag set by hand, the policy left as it was: works until a tenant moves away, then TR003 at home
    await db.admin.query(`update tenantry.registered_tables set pinned = true where relid = 'public.notes'::regclass`);
    await db.owner.query(
      `create policy notes_checked_read on notes for select using (tenant_id = (select tenantry.current_tenant_id()))`,
    );
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'PINNED_TABLE_ROUTE_CHECKED')).toEqual([
      'notes_checked_read on public.notes',
      'tenantry_isolation on public.notes',
    ]);
    expect(objectsOf(report, 'POLICY_SKIPS_ROUTE_CHECK')).toEqual([]);
    expect(report.ok).toBe(true);
    const isolation = findingOf(report, 'PINNED_TABLE_ROUTE_CHECKED', 'tenantry_isolation on public.notes');
    expect(isolation.severity).toBe('warning');
    expect(isolation.message).toContain('TR003');
    expect(isolation.fix).toBe(`SELECT tenantry.pin_tenant_table('public.notes');`);
    expect(findingOf(report, 'PINNED_TABLE_ROUTE_CHECKED', 'notes_checked_read on public.notes').fix).toBe(
      'ALTER POLICY notes_checked_read ON public.notes USING ((tenant_id = ( SELECT tenantry.home_tenant_id() AS current_tenant_id)));',
    );

    await applyFixes(db, report, ['PINNED_TABLE_ROUTE_CHECKED']);
    expect(await isolationUsing(db, 'notes')).toContain('home_tenant_id()');
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
  });
});

describe('doctor: schema-tier tenants missing a shared tenant table', () => {
  let db: TestDatabase;
  let placements: Placements;
  let migrations: string;
  const migrate = async () => {
    const report = await migrateEverywhere({ catalog: db.owner, clusters: { home: db.ownerUrl }, migrations });
    expect(report.ok).toBe(true);
  };
  const everywhere = () => doctorEverywhere({ catalog: db.owner, clusters: { home: db.adminUrl } });

  beforeAll(async () => {
    migrations = await mkdtemp(path.join(os.tmpdir(), 'tenantry-doctor-tiers-'));
    await mkdir(path.join(migrations, 'tenant'));
    await writeFile(path.join(migrations, 'tenant', '001_notes.sql'), NOTES_DDL);
    await writeFile(
      path.join(migrations, 'tenant', '002_tasks.sql'),
      `create table tasks (tenant_id uuid not null default tenantry.current_tenant_id(), id bigint generated always as identity, title text not null, primary key (tenant_id, id));
       select tenantry.register_tenant_table('tasks');`,
    );
    db = await createDoctorTestDatabase();
    // pinned: stays in public by design, never in a tenant schema
    await db.owner.query(MEMBERS_DDL);
    placements = new Placements({ catalog: db.owner, owners: { home: db.ownerUrl } });
    const { rows } = await db.owner.query<{ id: string }>(
      `insert into tenantry.tenants (slug, name) values ('acme', 'Acme') returning id`,
    );
    await createTenantSchema(db.owner, 't_acme', 'select 1');
    await placements.assign(rows[0]!.id, { tier: 'schema', cluster: 'home', schema: 't_acme' });
    await migrate();
  });
  afterAll(async () => {
    await placements?.end();
    await db?.drop();
    if (migrations) await rm(migrations, { recursive: true, force: true });
  });

  it('finds nothing when every tenant schema has every unpinned tenant table', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(report.findings.filter((f) => f.severity === 'error' || TIER_CODES.includes(f.code))).toEqual([]);
    const audit = await everywhere();
    expect(audit.ok).toBe(true);
    expect(audit.databases.map((d) => [d.database, d.schemas])).toEqual([[db.name, ['public', 't_acme']]]);
  });

  it('flags a tenant schema a migration did not reach, in doctor and doctor --placements; the re-migration clears it', async () => {
    // a lagging schema: the tenant's table and its bookkeeping gone, as if 002 never ran there
    await db.admin.query(
      `drop table t_acme.tasks; delete from tenantry.schema_migrations where target = 't_acme' and version = 2`,
    );
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'SCHEMA_TENANT_TABLE_MISSING')).toEqual(['t_acme.tasks']);
    expect(report.ok).toBe(false);
    const missing = findingOf(report, 'SCHEMA_TENANT_TABLE_MISSING', 't_acme.tasks');
    expect(missing.severity).toBe('error');
    expect(missing.message).toContain('Tenant schema t_acme has no table tasks');
    // the tenant's search path holds its schema alone: its statements fail, never reaching public.tasks
    expect(missing.message).toContain('fails (42P01; it never reaches the shared table');
    expect(missing.fix).toMatch(/^tenantry migrate\b/);

    const audit = await everywhere();
    expect(audit.ok).toBe(false);
    expect(objectsOf(audit.databases[0]!.report!, 'SCHEMA_TENANT_TABLE_MISSING')).toEqual(['t_acme.tasks']);

    await migrate();
    expect(objectsOf(await runDoctor(db.adminUrl), 'SCHEMA_TENANT_TABLE_MISSING')).toEqual([]);
    expect((await everywhere()).ok).toBe(true);
  });

  it('audits only the schemas of tenants active in this database', async () => {
    await db.admin.query(`drop table t_acme.notes cascade`);
    try {
      expect(objectsOf(await runDoctor(db.adminUrl), 'SCHEMA_TENANT_TABLE_MISSING')).toEqual(['t_acme.notes']);
      await db.admin.query(`update tenantry.local_tenants set state = 'moved' where schema = 't_acme'`);
      expect(objectsOf(await runDoctor(db.adminUrl), 'SCHEMA_TENANT_TABLE_MISSING')).toEqual([]);
    } finally {
      await db.admin.query(`update tenantry.local_tenants set state = 'active' where schema = 't_acme'`);
    }
  });
});
