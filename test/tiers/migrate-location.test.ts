import { appendFile, cp, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Placements } from '../../src/tiers/placements.js';
import { createTenantDatabase, createTenantSchema, withDatabase } from '../../src/tiers/provision.js';
import { migrateEverywhere } from '../../src/tiers/migrate/migrate-everywhere.js';
import { migrateLocation, type MigrateLocationOptions } from '../../src/tiers/migrate/migrate-location.js';
import { loadMigrations } from '../../src/tiers/migrate/migration-files.js';
import { codeOf } from '../support/refusal-code.js';
import { ROLE_PASSWORD, createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { dropDatabase } from '../support/drop-database.js';

// One server: the shared database (public) with tenant schemas provisioned in it, and tenant
// databases created empty (or with an older tool's objects) and then provisioned.
const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'migrations');
const AUDIT = `create table audit_events (
  tenant_id uuid not null default tenantry.current_tenant_id(),
  id bigint generated always as identity,
  primary key (tenant_id, id)
);
select tenantry.register_tenant_table('audit_events');`;

let db: TestDatabase;
let clusters: Record<string, string>;
let placements: Placements;
const databases: string[] = [];
const pools: pg.Pool[] = [];
const dirs: string[] = [];

const provision = (options: Partial<MigrateLocationOptions> = {}) =>
  migrateLocation({ clusters, cluster: 'home', migrations: FIXTURES, ...options });
const fixture = (file: string) => readFile(path.join(FIXTURES, file), 'utf8');

/** A copy of the fixture migrations plus `extra` files (`tenant/004_x.sql`: sql). */
async function migrationsWith(extra: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-migrate-location-'));
  dirs.push(dir);
  await cp(FIXTURES, dir, { recursive: true });
  for (const [file, sql] of Object.entries(extra)) await writeFile(path.join(dir, file), sql);
  return dir;
}

/** A tenant database `<test db>_<suffix>` with Tenantry installed and `ddl` run as the owner; its superuser pool. */
async function tenantDatabase(
  suffix: string,
  ddl: string,
  dataSchemas?: string[],
): Promise<{ name: string; admin: pg.Pool }> {
  const name = `${db.name}_${suffix}`;
  databases.push(name);
  await createTenantDatabase({
    adminUrl: db.adminUrl,
    ownerUrl: db.ownerUrl,
    database: name,
    ddl,
    appRole: db.appRole,
    ownerRole: db.ownerRole,
    appPassword: ROLE_PASSWORD,
    ownerPassword: ROLE_PASSWORD,
    contextSecret: db.contextSecret,
    ...(dataSchemas ? { dataSchemas } : {}),
  });
  const admin = new pg.Pool({ connectionString: withDatabase(db.adminUrl, name), max: 2 });
  // its sockets may still be closing when the database is dropped WITH (FORCE) below (57P01): expected
  admin.on('error', () => undefined);
  pools.push(admin);
  return { name, admin };
}

/** `tenantry.schema_migrations` of a database: versions per tracking target. */
async function versions(admin: pg.Pool): Promise<Record<string, number[]>> {
  const { rows } = await admin.query<{ target: string; v: number[] }>(
    'select target, array_agg(version order by version) as v from tenantry.schema_migrations group by target',
  );
  return Object.fromEntries(rows.map((r) => [r.target, r.v]));
}

/** The tables of `schema`: RLS forced and registered as a tenant table. */
async function tables(admin: pg.Pool, schema: string): Promise<Array<[string, boolean, boolean]>> {
  const { rows } = await admin.query<{ table: string; forced: boolean; registered: boolean }>(
    `select c.relname as table, c.relrowsecurity and c.relforcerowsecurity as forced,
            exists (select from tenantry.registered_tables r where r.relid = c.oid and r.kind = 'tenant') as registered
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind = 'r' and n.nspname = $1 order by 1`,
    [schema],
  );
  return rows.map((r) => [r.table, r.forced, r.registered]);
}

beforeAll(async () => {
  db = await createTestDatabase();
  clusters = { home: db.ownerUrl };
  placements = new Placements({ catalog: db.owner, owners: clusters });
});

afterAll(async () => {
  await placements?.end();
  await Promise.all(pools.map((p) => p.end()));
  if (db) {
    for (const name of databases) await dropDatabase(db.admin, name).catch(() => undefined);
    await db.drop();
  }
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('migrateLocation', () => {
  it('provisions a new tenant schema (its database first) to the latest version; migrateEverywhere then finds it current', async () => {
    await createTenantSchema(db.owner, 't_new', '');
    const report = await provision({ schema: 't_new' });
    const shared = `home/${db.name}`;
    expect(report).toMatchObject({ ok: true, latest: 3 });
    expect(report.results).toEqual([
      {
        target: {
          key: shared,
          kind: 'shared',
          cluster: 'home',
          database: db.name,
          schema: null,
          scopes: ['global', 'tenant'],
        },
        status: 'applied',
        applied: ['001_plans.sql', '002_notes.sql', '003_note_tags.sql'],
        baselined: [],
        version: 3,
        failure: null,
      },
      {
        target: {
          key: `${shared}/t_new`,
          kind: 'schema',
          cluster: 'home',
          database: db.name,
          schema: 't_new',
          scopes: ['tenant'],
        },
        status: 'applied',
        applied: ['002_notes.sql', '003_note_tags.sql'],
        baselined: [],
        version: 3,
        failure: null,
      },
    ]);
    expect(await tables(db.admin, 't_new')).toEqual([
      ['note_tags', true, true],
      ['notes', true, true],
    ]);
    // the same bookkeeping as migrateEverywhere: names, scopes and checksums of the files
    const files = new Map((await loadMigrations(FIXTURES)).map((m) => [m.version, m]));
    const { rows } = await db.admin.query<{
      target: string;
      version: number;
      name: string;
      scope: string;
      checksum: string;
    }>('select target, version, name, scope, checksum from tenantry.schema_migrations order by target, version');
    expect(rows.map((r) => [r.target, r.version])).toEqual([
      ['public', 1],
      ['public', 2],
      ['public', 3],
      ['t_new', 2],
      ['t_new', 3],
    ]);
    for (const r of rows)
      expect([r.name, r.scope, r.checksum]).toEqual([
        files.get(r.version)!.name,
        files.get(r.version)!.scope,
        files.get(r.version)!.checksum,
      ]);

    // placed there afterwards: the catalog-wide run sees the location, already current
    const { rows: tenant } = await db.owner.query<{ id: string }>(
      `insert into tenantry.tenants (slug, name) values ('loc-new', 'loc-new') returning id`,
    );
    await placements.assign(tenant[0]!.id, { tier: 'schema', cluster: 'home', schema: 't_new' });
    const everywhere = await migrateEverywhere({ catalog: db.owner, clusters, migrations: FIXTURES, concurrency: 2 });
    expect(everywhere.ok).toBe(true);
    expect(everywhere.results.map((r) => [r.target.key, r.status, r.applied, r.baselined])).toEqual([
      [shared, 'current', [], []],
      [`${shared}/t_new`, 'current', [], []],
    ]);
  });

  it("provisions a database-tier tenant's empty database (global + tenant migrations); a re-run applies nothing", async () => {
    const d = await tenantDatabase('new', '', ['public', 'app']);
    const report = await provision({ database: d.name });
    expect(report.results).toMatchObject([
      {
        target: { key: `home/${d.name}`, kind: 'database', database: d.name, schema: null },
        status: 'applied',
        applied: ['001_plans.sql', '002_notes.sql', '003_note_tags.sql'],
        baselined: [],
        version: 3,
      },
    ]);
    expect(await tables(d.admin, 'public')).toEqual([
      ['note_tags', true, true],
      ['notes', true, true],
      ['plans', true, false], // a global table: registered as global, not tenant
    ]);
    expect(await versions(d.admin)).toEqual({ public: [1, 2, 3] });

    const before = (
      await d.admin.query('select target, version, applied_at from tenantry.schema_migrations order by 1, 2')
    ).rows;
    const again = await provision({ database: d.name });
    expect(again.ok).toBe(true);
    expect(again.results.map((r) => [r.status, r.applied, r.baselined, r.version])).toEqual([['current', [], [], 3]]);
    expect(
      (await d.admin.query('select target, version, applied_at from tenantry.schema_migrations order by 1, 2')).rows,
    ).toEqual(before);

    // one of the database's data schemas is not a tenant schema: refused before anything runs
    const refused = await provision({ database: d.name, schema: 'app' }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'schema' } });
    expect((refused as Error).message).toContain('data schema');
    expect(await tables(d.admin, 'app')).toEqual([]);
  });

  it('a baseline records the versions whose objects already exist without running them, then applies the rest', async () => {
    // an older tool created what 001 and 002 create: running 001 again would fail (plans exists, 42P07)
    const d = await tenantDatabase(
      'base',
      `${await fixture('global/001_plans.sql')}\n${await fixture('tenant/002_notes.sql')}`,
    );
    const report = await provision({ database: d.name, baselineThrough: 2 });
    expect(report.results).toMatchObject([
      {
        target: { kind: 'database' },
        status: 'applied',
        baselined: ['001_plans.sql', '002_notes.sql'],
        applied: ['003_note_tags.sql'],
        version: 3,
      },
    ]);
    expect(await versions(d.admin)).toEqual({ public: [1, 2, 3] });
    expect((await d.admin.query('select count(*)::int as n from public.plans')).rows[0]!.n).toBe(2); // 001's insert did not run twice
    expect(await tables(d.admin, 'public')).toContainEqual(['note_tags', true, true]);
    // only versions not yet recorded: a later baseline changes nothing
    const again = await provision({ database: d.name, baselineThrough: 3 });
    expect(again.results.map((r) => [r.status, r.applied, r.baselined])).toEqual([['current', [], []]]);

    // a tenant schema made by the older tool (002's objects): its database is current, the schema baselines 002 and runs 003
    await provision();
    await createTenantSchema(db.owner, 't_old', await fixture('tenant/002_notes.sql'));
    const schema = await provision({ schema: 't_old', baselineThrough: 2 });
    expect(schema.results.map((r) => [r.target.kind, r.status, r.baselined, r.applied])).toEqual([
      ['shared', 'current', [], []],
      ['schema', 'applied', ['002_notes.sql'], ['003_note_tags.sql']],
    ]);
    expect((await versions(db.admin)).t_old).toEqual([2, 3]);
    expect(await tables(db.admin, 't_old')).toEqual([
      ['note_tags', true, true],
      ['notes', true, true],
    ]);
  });

  it('a failing migration throws MIGRATION_FAILED, leaves the location untouched (its schema too: never ahead of its database) and records the failure', async () => {
    const d = await tenantDatabase('fail', 'create table audit_events (planted int)'); // a conflicting object
    const owner = new pg.Pool({ connectionString: withDatabase(db.ownerUrl, d.name), max: 1 });
    pools.push(owner);
    await createTenantSchema(owner, 't_f', '');
    const dir = await migrationsWith({ 'tenant/004_audit_events.sql': AUDIT });

    const error = await provision({ database: d.name, schema: 't_f', migrations: dir }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      name: 'MigrationError',
      code: 'MIGRATION_FAILED',
      details: { target: `home/${d.name}`, migration: '004_audit_events.sql', version: null, sqlstate: '42P07' },
    });
    const message = (error as Error).message;
    for (const part of [`home/${d.name}`, '004_audit_events.sql', '42P07', 'relation "audit_events" already exists'])
      expect(message).toContain(part);
    // one transaction: 001-003 of the same run rolled back too; the schema was never started
    expect(await versions(d.admin)).toEqual({});
    expect(
      (await d.admin.query(`select to_regclass('public.plans') as plans, to_regclass('public.notes') as notes`))
        .rows[0],
    ).toEqual({ plans: null, notes: null });
    expect(await tables(d.admin, 't_f')).toEqual([]);
    const failures = await d.admin.query('select target, version, name, sqlstate from tenantry.migration_failures');
    expect(failures.rows).toEqual([{ target: 'public', version: 4, name: '004_audit_events.sql', sqlstate: '42P07' }]);

    // fixed: the re-run completes both, and clears the failure
    await d.admin.query('drop table public.audit_events');
    const report = await provision({ database: d.name, schema: 't_f', migrations: dir });
    expect(report.results.map((r) => [r.target.key, r.status, r.applied])).toEqual([
      [`home/${d.name}`, 'applied', ['001_plans.sql', '002_notes.sql', '003_note_tags.sql', '004_audit_events.sql']],
      [`home/${d.name}/t_f`, 'applied', ['002_notes.sql', '003_note_tags.sql', '004_audit_events.sql']],
    ]);
    expect((await d.admin.query('select count(*)::int as n from tenantry.migration_failures')).rows[0]!.n).toBe(0);
  });

  it('refuses drift (a changed or unknown applied migration) before applying anything', async () => {
    await provision(); // the shared database at 3, whatever ran before
    await createTenantSchema(db.owner, 't_drift', '');
    const changed = await migrationsWith({ 'tenant/004_audit_events.sql': AUDIT });
    await appendFile(path.join(changed, 'tenant', '002_notes.sql'), '-- edited after the fact\n');
    await expect(provision({ schema: 't_drift', migrations: changed })).rejects.toMatchObject({
      name: 'MigrationError',
      code: 'MIGRATION_CHANGED',
      details: { migration: '002_notes.sql' },
    });
    const unknown = await migrationsWith();
    await unlink(path.join(unknown, 'tenant', '003_note_tags.sql'));
    await expect(provision({ schema: 't_drift', migrations: unknown })).rejects.toMatchObject({
      code: 'MIGRATION_UNKNOWN',
      details: { migration: '003_note_tags.sql' },
    });
    const v = await versions(db.admin);
    expect(v.public).toEqual([1, 2, 3]);
    expect(v.t_drift).toBeUndefined();
    expect(await tables(db.admin, 't_drift')).toEqual([]);
  });

  it('refuses bad input with clear errors, before touching anything', async () => {
    expect(await codeOf(provision({ cluster: 'mars' }))).toBe('CLUSTER_UNKNOWN');
    expect(await codeOf(provision({ schema: 'T-Acme' }))).toBe('INVALID_IDENTIFIER');
    expect(await codeOf(provision({ schema: 'tenantry' }))).toBe('INVALID_IDENTIFIER');
    expect(await codeOf(provision({ schema: 'public' }))).toBe('INVALID_IDENTIFIER');
    expect(await codeOf(provision({ database: 'x"; drop database y; --' }))).toBe('INVALID_IDENTIFIER');
    for (const baselineThrough of [-1, 1.5, Number.NaN])
      expect(await codeOf(provision({ baselineThrough }))).toBe('INVALID_ARGUMENT');
    // a schema not created yet: its tables would land in the next schema of the search path
    const missing = await provision({ schema: 't_missing' }).catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: 'INVALID_ARGUMENT', details: { field: 'schema' } });
    expect((missing as Error).message).toContain('createTenantSchema');
    // a database not created yet: the database target fails (3D000)
    const noDatabase = await provision({ database: `${db.name}_nowhere` }).catch((e: unknown) => e);
    expect(noDatabase).toMatchObject({
      code: 'MIGRATION_FAILED',
      details: { target: `home/${db.name}_nowhere`, sqlstate: '3D000' },
    });
  });

  it('migrateEverywhere fails a placement whose schema is missing (3F000) instead of creating its tables in a data schema', async () => {
    const { rows } = await db.owner.query<{ id: string }>(
      `insert into tenantry.tenants (slug, name) values ('loc-ghost', 'loc-ghost') returning id`,
    );
    await placements.assign(rows[0]!.id, { tier: 'schema', cluster: 'home', schema: 't_ghost' });
    try {
      const report = await migrateEverywhere({ catalog: db.owner, clusters, migrations: FIXTURES, concurrency: 2 });
      const ghost = report.results.find((r) => r.target.schema === 't_ghost');
      // not 42P07 (002's notes created in public, which has them): the missing schema stops it first
      expect(ghost).toMatchObject({ status: 'failed', applied: [], baselined: [], failure: { sqlstate: '3F000' } });
      expect(report.results.filter((r) => r !== ghost).every((r) => r.status === 'current')).toBe(true);
      expect((await versions(db.admin)).t_ghost).toBeUndefined();
      expect(
        (await db.admin.query(`select sqlstate from tenantry.migration_failures where target = 't_ghost'`)).rows,
      ).toEqual([{ sqlstate: '3F000' }]);
    } finally {
      await db.admin.query('delete from tenantry.placements where tenant_id = $1', [rows[0]!.id]);
    }
  });
});
