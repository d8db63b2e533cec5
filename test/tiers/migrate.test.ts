import { cp, mkdtemp, rm, writeFile, appendFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDoctor } from '../../src/policy/doctor.js';
import { Placements } from '../../src/tiers/placements.js';
import { createTenantDatabase, createTenantSchema, withDatabase } from '../../src/tiers/provision.js';
import { migrateEverywhere, type MigrationReport } from '../../src/tiers/migrate/migrate-everywhere.js';
import { migrationStatus } from '../../src/tiers/migrate/migration-status.js';
import { doctorEverywhere } from '../../src/tiers/migrate/doctor-everywhere.js';
import { ROLE_PASSWORD, createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { dropDatabase } from '../support/drop-database.js';

// One server: the shared database (public), three schema-tier tenants (t_a, t_b, t_c) in it,
// and one database-tier tenant in a database of its own.
const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'migrations');
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCHEMAS = ['t_a', 't_b', 't_c'];
const AUDIT = `alter table notes add column archived boolean not null default false;
create table audit_events (
  tenant_id uuid not null default tenantry.current_tenant_id(),
  id bigint generated always as identity,
  what text not null,
  primary key (tenant_id, id)
);
select tenantry.register_tenant_table('audit_events');`;
const PINS = `create table note_pins (
  tenant_id uuid not null default tenantry.current_tenant_id(),
  note_id uuid not null,
  primary key (tenant_id, note_id)
);
select tenantry.register_tenant_table('note_pins');`;

let db: TestDatabase;
let placements: Placements;
let dDatabase: string;
let dAdmin: pg.Pool;
let clusters: Record<string, string>;
const dirs: string[] = [];

/** A copy of the fixture migrations plus `extra` files (`tenant/004_x.sql`: sql). */
async function migrationsWith(extra: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-migrations-'));
  dirs.push(dir);
  await cp(FIXTURES, dir, { recursive: true });
  for (const [file, sql] of Object.entries(extra)) await writeFile(path.join(dir, file), sql);
  return dir;
}

const migrate = (migrations: string, concurrency = 4): Promise<MigrationReport> =>
  migrateEverywhere({ catalog: db.owner, clusters, migrations, concurrency });
const byKey = (report: MigrationReport) => Object.fromEntries(report.results.map((r) => [r.target.key, r]));
const keys = () => ({
  shared: `home/${db.name}`,
  database: `home/${dDatabase}`,
  schemas: SCHEMAS.map((s) => `home/${db.name}/${s}`),
});

/** Versions applied per tracking target, in the shared database and the tenant database. */
async function versions(): Promise<Record<string, number[]>> {
  const q = 'select target, array_agg(version order by version) as v from tenantry.schema_migrations group by target';
  const shared = (await db.admin.query<{ target: string; v: number[] }>(q)).rows;
  const own = (await dAdmin.query<{ target: string; v: number[] }>(q)).rows;
  return Object.fromEntries([...shared.map((r) => [r.target, r.v]), ...own.map((r) => [`db:${r.target}`, r.v])]);
}

beforeAll(async () => {
  db = await createTestDatabase();
  clusters = { home: db.ownerUrl };
  placements = new Placements({ catalog: db.owner, owners: clusters });
  for (const [i, schema] of SCHEMAS.entries()) {
    const { rows } = await db.owner.query<{ id: string }>(
      `insert into tenantry.tenants (slug, name) values ($1, $1) returning id`,
      [`mig-${i}`],
    );
    await createTenantSchema(db.owner, schema, 'select 1');
    await placements.assign(rows[0]!.id, { tier: 'schema', cluster: 'home', schema });
  }
  dDatabase = `${db.name}_d`;
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
  const { rows } = await db.owner.query<{ id: string }>(
    `insert into tenantry.tenants (slug, name) values ('mig-d', 'mig-d') returning id`,
  );
  await placements.assign(rows[0]!.id, { tier: 'database', cluster: 'home', database: dDatabase });
  dAdmin = new pg.Pool({ connectionString: withDatabase(db.adminUrl, dDatabase), max: 2 });
  // its sockets may still be closing when the database is dropped WITH (FORCE) below (57P01): expected
  dAdmin.on('error', () => undefined);
});

afterAll(async () => {
  await placements?.end();
  await dAdmin?.end();
  if (db) {
    await dropDatabase(db.admin, dDatabase).catch(() => undefined);
    await db.drop();
  }
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('tenantry migrate', () => {
  it('migrates the shared database, every tenant schema and every tenant database to the latest version, RLS forced everywhere', async () => {
    const progress: number[] = [];
    const report = await migrateEverywhere({
      catalog: db.owner,
      clusters,
      migrations: FIXTURES,
      concurrency: 2,
      onProgress: (p) => progress.push(p.done),
    });
    const k = keys();
    expect(report.ok).toBe(true);
    expect(report.results.map((r) => r.target.key)).toEqual([k.shared, k.database, ...k.schemas]);
    const results = byKey(report);
    expect(results[k.shared]!.applied).toEqual(['001_plans.sql', '002_notes.sql', '003_note_tags.sql']);
    expect(results[k.database]!.applied).toEqual(['001_plans.sql', '002_notes.sql', '003_note_tags.sql']);
    for (const s of k.schemas)
      expect(results[s]).toMatchObject({
        status: 'applied',
        applied: ['002_notes.sql', '003_note_tags.sql'],
        version: 3,
      });
    expect(progress).toEqual([1, 2, 3, 4, 5]);
    expect(await versions()).toEqual({
      public: [1, 2, 3],
      t_a: [2, 3],
      t_b: [2, 3],
      t_c: [2, 3],
      'db:public': [1, 2, 3],
    });

    // the tenant tables of every location: RLS enabled and forced, registered; global tables only per database
    const tables = `select n.nspname as schema, c.relname as table, c.relrowsecurity and c.relforcerowsecurity as forced,
                           exists (select from tenantry.registered_tables r where r.relid = c.oid and r.kind = 'tenant') as registered
                      from pg_class c join pg_namespace n on n.oid = c.relnamespace
                     where c.relkind = 'r' and n.nspname in ('public', 't_a', 't_b', 't_c') order by 1, 2`;
    const shared = (await db.admin.query(tables)).rows;
    const tenantTables = shared.filter((r) => r.table !== 'plans');
    expect(tenantTables).toHaveLength(8);
    expect(tenantTables.every((r) => r.forced && r.registered)).toBe(true);
    expect(shared.filter((r) => r.table === 'plans').map((r) => r.schema)).toEqual(['public']);
    const own = (await dAdmin.query(tables)).rows;
    expect(own.map((r) => [r.table, r.forced, r.registered])).toEqual([
      ['note_tags', true, true],
      ['notes', true, true],
      ['plans', true, false],
    ]);

    const doctor = await runDoctor(db.adminUrl, { schemas: ['public', ...SCHEMAS] });
    expect(doctor.findings.filter((f) => f.severity === 'error')).toEqual([]);
    const doctorD = await runDoctor(withDatabase(db.adminUrl, dDatabase));
    expect(doctorD.findings.filter((f) => f.severity === 'error')).toEqual([]);

    // the same audit driven by the catalog, every placement at once; and it sees a defect in one schema
    const audit = await doctorEverywhere({ catalog: db.owner, clusters: { home: db.adminUrl } });
    expect(audit.databases.map((d) => [d.database, d.schemas, d.report?.ok])).toEqual([
      [db.name, ['public', ...SCHEMAS], true],
      [dDatabase, ['public'], true],
    ]);
    await db.admin.query('alter table t_c.notes no force row level security');
    try {
      const broken = await doctorEverywhere({ catalog: db.owner, clusters: { home: db.adminUrl } });
      expect(broken.ok).toBe(false);
      expect(
        broken.databases[0]!.report!.findings.filter((f) => f.severity === 'error').map((f) => f.object),
      ).toContain('t_c.notes');
    } finally {
      await db.admin.query('alter table t_c.notes force row level security');
    }
  });

  it("the bookkeeping is out of the application role's reach", async () => {
    const app = new pg.Client({ connectionString: db.appUrl });
    await app.connect();
    try {
      for (const table of ['tenantry.schema_migrations', 'tenantry.migration_failures']) {
        await expect(app.query(`select * from ${table}`)).rejects.toMatchObject({ code: '42501' });
        await expect(app.query(`delete from ${table}`)).rejects.toMatchObject({ code: '42501' });
      }
    } finally {
      await app.end();
    }
    expect((await db.admin.query('select count(*)::int as n from tenantry.schema_migrations')).rows[0]!.n).toBe(9);
  });

  it('a second run is a no-op', async () => {
    const before = (
      await db.admin.query('select target, version, applied_at from tenantry.schema_migrations order by 1, 2')
    ).rows;
    const report = await migrate(FIXTURES);
    expect(report.ok).toBe(true);
    expect(report.results.map((r) => [r.status, r.applied])).toEqual(report.results.map(() => ['current', []]));
    expect(
      (await db.admin.query('select target, version, applied_at from tenantry.schema_migrations order by 1, 2')).rows,
    ).toEqual(before);
  });

  it('a migration failing in one target is reported, leaves that target unchanged, and the others complete; a re-run after the fix completes it', async () => {
    const dir = await migrationsWith({ 'tenant/004_audit_events.sql': AUDIT });
    await db.admin.query('create table t_b.audit_events (planted int)'); // a conflicting object in one tenant's schema
    const report = await migrate(dir);
    const k = keys();
    expect(report.ok).toBe(false);
    const failed = report.results.filter((r) => r.status !== 'applied');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      target: { key: k.schemas[1], kind: 'schema', schema: 't_b' },
      status: 'failed',
      version: 3,
      failure: { migration: '004_audit_events.sql', version: 4, sqlstate: '42P07' },
    });
    expect(failed[0]!.failure!.message).toContain('audit_events');
    // unchanged: not even the migration's first statement stayed
    const cols = await db.admin.query(
      `select table_schema from information_schema.columns where column_name = 'archived' order by 1`,
    );
    expect(cols.rows.map((r) => r.table_schema)).toEqual(['public', 't_a', 't_c']);
    expect((await versions()).t_b).toEqual([2, 3]);

    const status = await migrationStatus({ catalog: db.owner, clusters, migrations: dir });
    expect(status.latest).toBe(4);
    expect(status.byVersion).toEqual([
      { version: 4, targets: 4 },
      { version: 3, targets: 1 },
    ]);
    const tb = status.targets.find((t) => t.target.schema === 't_b')!;
    expect(tb).toMatchObject({
      version: 3,
      latestApplied: '003_note_tags.sql',
      pending: 1,
      lastFailure: { migration: '004_audit_events.sql', sqlstate: '42P07' },
    });
    expect(
      status.targets.filter((t) => t !== tb).every((t) => t.version === 4 && t.pending === 0 && t.lastFailure === null),
    ).toBe(true);

    await db.admin.query('drop table t_b.audit_events');
    const again = await migrate(dir);
    expect(again.ok).toBe(true);
    expect(again.results.filter((r) => r.status === 'applied').map((r) => [r.target.key, r.applied])).toEqual([
      [k.schemas[1], ['004_audit_events.sql']],
    ]);
    const after = await migrationStatus({ catalog: db.owner, clusters, migrations: dir });
    expect(after.byVersion).toEqual([{ version: 4, targets: 5 }]);
    expect(after.targets.every((t) => t.lastFailure === null)).toBe(true);
  });

  it('refuses to run when an applied migration changed, before applying anything anywhere', async () => {
    const dir = await migrationsWith({ 'tenant/004_audit_events.sql': AUDIT, 'tenant/005_note_pins.sql': PINS });
    await appendFile(path.join(dir, 'tenant', '002_notes.sql'), '-- edited after the fact\n');
    await expect(migrate(dir)).rejects.toMatchObject({
      name: 'MigrationError',
      code: 'MIGRATION_CHANGED',
      details: { migration: '002_notes.sql' },
    });
    const dropped = await migrationsWith({}); // 004 was applied everywhere: a directory without it is refused too
    await expect(migrate(dropped)).rejects.toMatchObject({ code: 'MIGRATION_UNKNOWN' });
    expect(Object.values(await versions()).every((v) => !v.includes(5))).toBe(true);
  });

  it('two concurrent runs apply each migration once', async () => {
    const dir = await migrationsWith({ 'tenant/004_audit_events.sql': AUDIT, 'tenant/005_note_pins.sql': PINS });
    const [one, two] = await Promise.all([migrate(dir, 3), migrate(dir, 2)]);
    expect(one.ok && two.ok).toBe(true);
    for (const [i, r] of one.results.entries()) {
      const other = two.results[i]!;
      expect([r.applied, other.applied].sort()).toEqual([[], ['005_note_pins.sql']]);
    }
    const rows = await db.admin.query('select count(*)::int as n from tenantry.schema_migrations where version = 5');
    expect(rows.rows[0]!.n).toBe(4);
    expect((await versions())['db:public']).toEqual([1, 2, 3, 4, 5]);
  });

  it('behind a failed database, its schemas are blocked, not migrated ahead of it', async () => {
    const dir = await migrationsWith({
      'tenant/004_audit_events.sql': AUDIT,
      'tenant/005_note_pins.sql': PINS,
      'global/006_plan_limits.sql': 'create table plan_limits (plan text primary key references plans (code));',
      'tenant/007_note_plan.sql': 'alter table notes add column plan text;',
    });
    await db.admin.query('create table public.plan_limits (planted int)');
    try {
      const report = await migrate(dir);
      const k = keys();
      const results = byKey(report);
      expect(report.ok).toBe(false);
      expect(results[k.shared]).toMatchObject({
        status: 'failed',
        version: 5,
        failure: { migration: '006_plan_limits.sql', sqlstate: '42P07' },
      });
      expect(results[k.database]).toMatchObject({ status: 'applied', version: 7 });
      for (const s of k.schemas) expect(results[s]).toMatchObject({ status: 'blocked', version: 5 });
    } finally {
      await db.admin.query('drop table public.plan_limits');
    }
  });

  it('the CLI migrates and reports status (subprocess)', async () => {
    const dir = await migrationsWith({
      'tenant/004_audit_events.sql': AUDIT,
      'tenant/005_note_pins.sql': PINS,
      'global/006_plan_limits.sql': 'create table plan_limits (plan text primary key references plans (code));',
      'tenant/007_note_plan.sql': 'alter table notes add column plan text;',
    });
    const env = { ...process.env, TENANTRY_OWNER_DATABASE_URL: db.ownerUrl, TENANTRY_CLUSTERS: '' };
    const cli = (...args: string[]) =>
      promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', 'src/cli/main.ts', '--database-url', db.adminUrl, ...args],
        { cwd: ROOT, env },
      ).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    const behind = await cli('migrate', 'status', '--migrations', dir, '--behind');
    expect(behind.stderr).toBe('');
    expect(behind.code).toBe(1);
    expect(behind.stdout).toMatch(new RegExp(`\\nhome/${db.name}/t_a +schema +5 +1\\n`));
    expect(behind.stdout).toMatch(
      new RegExp(
        `\\nhome/${db.name} +shared +5 +2 +006_plan_limits.sql 42P07 relation "plan_limits" already exists\\n`,
      ),
    );
    expect(behind.stdout).not.toContain(`home/${dDatabase} `); // at the latest version: not listed with --behind
    expect(behind.stdout).toContain('latest version 7; targets by version: 7: 1, 5: 4');
    const run = await cli('migrate', '--migrations', dir, '--concurrency', '2');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /5 targets in .* 4 migrated, 1 already current, 0 failed, 0 blocked; latest version 7\./,
    );
    expect(run.stderr).toContain('5/5 targets');
    const status = await cli('migrate', 'status', '--migrations', dir);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('latest version 7; targets by version: 7: 5');
  });

  it('with a lock timeout, a target whose table the application holds fails fast (55P03) and the others go on', async () => {
    const dir = await migrationsWith({
      'tenant/004_audit_events.sql': AUDIT,
      'tenant/005_note_pins.sql': PINS,
      'global/006_plan_limits.sql': 'create table plan_limits (plan text primary key references plans (code));',
      'tenant/007_note_plan.sql': 'alter table notes add column plan text;',
      'tenant/008_notes_pinned.sql': 'alter table notes add column pinned boolean not null default false;',
    });
    const holder = await db.admin.connect();
    try {
      await holder.query('begin');
      await holder.query('lock table t_a.notes in access share mode'); // a long read in tenant A's schema (the CLI test above left every target at 7)
      const report = await migrateEverywhere({
        catalog: db.owner,
        clusters,
        migrations: dir,
        concurrency: 2,
        lockTimeoutMs: 200,
      });
      expect(
        report.results
          .filter((r) => r.status !== 'applied')
          .map((r) => [r.target.schema, r.status, r.failure?.sqlstate, r.failure?.migration]),
      ).toEqual([['t_a', 'failed', '55P03', '008_notes_pinned.sql']]);
    } finally {
      await holder.query('rollback');
      holder.release();
    }
    const again = await migrate(dir);
    expect(again.results.filter((r) => r.status === 'applied').map((r) => r.target.schema)).toEqual(['t_a']);
  });
});
