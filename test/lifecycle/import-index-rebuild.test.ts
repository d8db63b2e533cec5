// The pg_restore way of an import into a new tenant's own schema or database: the empty tables'
// indexes and keys dropped in the load's transaction and built again after the COPY, the same
// definitions afterwards; a refusal or a crash leaves the target as it was; anything not provably
// the tenant's own (the shared tier, pinned tables, a table with rows, a key referenced from
// outside…) keeps the per-row path.
import { createHash, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportTenant, importTenant, type ArchiveManifest, type ImportResult } from '../../src/lifecycle/index.js';
import { beginIndexRebuild } from '../../src/lifecycle/export/index-rebuild.js';
import { registeredTenantTables } from '../../src/lifecycle/export/tenant-tables.js';
import type { PlacementTarget } from '../../src/tiers/placements.js';
import { rewriteArchive } from './support/archive-edit.js';
import {
  exportFixture,
  othersChecksum,
  seedTenant,
  tenantDatabase,
  tenantSchema,
  type ExportFixture,
} from './support/export-fixture.js';

const exec = promisify(execFile);
const HOME: PlacementTarget = { tier: 'shared', cluster: 'home' };
const OTHER: PlacementTarget = { tier: 'schema', cluster: 'home', schema: 't_other' };
/** Secondary indexes (an expression and a predicate among them) and a deferrable unique key, to be rebuilt the same. */
const MORE_DDL = `create index tasks_project_idx on tasks (tenant_id, project_id);
  create index tasks_title_lower on tasks (lower(title) text_pattern_ops) where assignee is not null;
  alter table projects add constraint projects_name_key unique (tenant_id, name) deferrable initially deferred`;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let f: ExportFixture;
let dir: string;
let archive: string;
let manifest: ArchiveManifest;

beforeAll(async () => {
  f = await exportFixture();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-import-rebuild-'));
  await seedTenant(f, 'acme', 40, 5);
  // another tenant in a schema of its own: its tables and definitions must not change
  await tenantSchema(f, 't_other');
  await seedTenant(f, 'other', 6, 2, OTHER);
  archive = path.join(dir, 'acme.tenant');
  manifest = (await exportTenant({ catalog: f.db.owner, placements: f.placements, tenant: 'acme', out: archive }))
    .manifest;
});
afterAll(async () => {
  await f?.end();
  await rm(dir, { recursive: true, force: true });
});

/** Every index and constraint of a schema's tables (names and definitions), the schema guard's CHECK aside. */
async function definitions(pool: pg.Pool, schema: string): Promise<string[]> {
  const { rows } = await pool.query<{ d: string }>(
    `select format('index %s %s: %s', tablename, indexname, indexdef) as d from pg_indexes where schemaname = $1
     union all
     select format('constraint %s %s %s: %s valid=%s deferrable=%s', conrelid::regclass, conname, contype,
                   pg_get_constraintdef(oid), convalidated, condeferrable)
       from pg_constraint where connamespace = $1::regnamespace and conname <> 'tenantry_schema_tenant'
     order by 1`,
    [schema],
  );
  return rows.map((r) => r.d);
}

/** The copy holds acme's rows, every task joined to its project, nothing else in the target. */
async function intact(where: PlacementTarget, tenantId: string): Promise<void> {
  const pool = f.placements.ownerPool(where);
  const s = where.schema ?? 'public';
  const { rows } = await pool.query<{ projects: number; tasks: number; orphans: number; others: number }>(
    `select (select count(*)::int from "${s}".projects where tenant_id = $1) as projects,
            (select count(*)::int from "${s}".tasks where tenant_id = $1) as tasks,
            (select count(*)::int from "${s}".tasks t where not exists
               (select from "${s}".projects p where p.tenant_id = t.tenant_id and p.id = t.project_id)) as orphans,
            (select count(*)::int from "${s}".tasks where tenant_id <> $1) as others`,
    [tenantId],
  );
  expect(rows[0]).toEqual({ projects: 40, tasks: 200, orphans: 0, others: 0 });
}

async function emptyTarget(where: PlacementTarget): Promise<void> {
  const pool = f.placements.ownerPool(where);
  const s = where.schema ?? 'public';
  const { rows } = await pool.query<{ n: number }>(
    `select (select count(*) from "${s}".projects)::int + (select count(*) from "${s}".tasks)::int as n`,
  );
  expect(rows[0]!.n).toBe(0);
}

const paths = (r: ImportResult) => Object.fromEntries(r.tables.map((t) => [t.name, t.indexes]));

/** The archive with its first line of `table` edited by `edit` (lines in, lines out); manifest fixed and re-signed. */
async function edited(table: string, name: string, edit: (lines: string[]) => string[]): Promise<string> {
  const step = path.join(dir, `${name}-step.tenant`);
  const file = path.join(dir, `${name}.tenant`);
  let body: Buffer | undefined;
  let rows = 0;
  await rewriteArchive(archive, step, (entry, b) => {
    if (!entry.endsWith(`${table}.copy.gz`)) return b;
    const lines = edit(gunzipSync(b).toString('utf8').split('\n').slice(0, -1));
    rows = lines.length;
    body = Buffer.from(`${lines.join('\n')}\n`);
    return gzipSync(body);
  });
  const fixed = {
    ...manifest,
    tables: manifest.tables.map((t) =>
      t.name === table ? { ...t, rows, sha256: sha(body!), bytes: body!.length } : t,
    ),
  };
  await rewriteArchive(
    step,
    file,
    (entry, b) => (entry === 'manifest.json' ? Buffer.from(JSON.stringify(fixed)) : b),
    f.db.owner,
  );
  return file;
}

describe('a new tenant database or schema: indexes and keys rebuilt after the COPY', () => {
  it('--to database: rebuilt, definitions identical, rows intact, others untouched', async () => {
    const database = `${f.db.name}_rb_d`;
    const where: PlacementTarget = { tier: 'database', cluster: 'home', database };
    const before = await othersChecksum(f, [], [HOME, OTHER]);
    const otherDefinitions = await definitions(f.db.owner, 't_other');
    let prepared: string[] = [];
    const r = await importTenant({
      file: archive,
      catalog: f.db.owner,
      placements: f.placements,
      as: 'acme-db',
      to: { tier: 'database', database },
      prepareTarget: async () => {
        await tenantDatabase(f, database);
        await f.placements.ownerPool(where).query(MORE_DDL);
        prepared = await definitions(f.placements.ownerPool(where), 'public');
      },
    });
    // members is pinned at home (shared): loaded the per-row way
    expect(paths(r)).toEqual({ members: 'per-row', projects: 'rebuilt', tasks: 'rebuilt' });
    expect(r.indexes).toBe('mixed');
    // the tenant database's keys checked by ADD CONSTRAINT; members' (home, no grant) per row
    expect(r.foreignKeyChecks).toBe('mixed');
    expect(prepared.length).toBeGreaterThanOrEqual(5);
    expect(await definitions(f.placements.ownerPool(where), 'public')).toEqual(prepared);
    await intact(where, r.tenant.id);
    expect(await othersChecksum(f, [r.tenant.id], [HOME, OTHER])).toBe(before);
    expect(await definitions(f.db.owner, 't_other')).toEqual(otherDefinitions);
    // the session settings of the load do not outlive it
    const { rows } = await f.placements.ownerPool(where).query(
      `select bool_and(setting = reset_val) as same from pg_settings
          where name in ('maintenance_work_mem', 'enable_nestloop', 'enable_mergejoin', 'search_path', 'row_security')`,
    );
    expect(rows[0]).toEqual({ same: true });
  });

  it('--to schema: rebuilt (the schema only; pinned members per row), definitions identical', async () => {
    await tenantSchema(f, 't_acme_rb');
    await f.db.owner.query(`set search_path = t_acme_rb; ${MORE_DDL}; reset search_path`);
    const where: PlacementTarget = { tier: 'schema', cluster: 'home', schema: 't_acme_rb' };
    const before = await othersChecksum(f, [], [HOME, OTHER]);
    const prepared = await definitions(f.db.owner, 't_acme_rb');
    const publicBefore = await definitions(f.db.owner, 'public');
    const r = await importTenant({
      file: archive,
      catalog: f.db.owner,
      placements: f.placements,
      as: 'acme-schema',
      to: { tier: 'schema', schema: 't_acme_rb' },
    });
    expect(paths(r)).toEqual({ members: 'per-row', projects: 'rebuilt', tasks: 'rebuilt' });
    expect(await definitions(f.db.owner, 't_acme_rb')).toEqual(prepared);
    expect(await definitions(f.db.owner, 'public')).toEqual(publicBefore);
    await intact(where, r.tenant.id);
    expect(await othersChecksum(f, [r.tenant.id], [HOME, OTHER])).toBe(before);
  });

  it('indexRebuild: false keeps the indexes in place in a schema of its own', async () => {
    await tenantSchema(f, 't_acme_keep');
    const prepared = await definitions(f.db.owner, 't_acme_keep');
    const r = await importTenant({
      file: archive,
      catalog: f.db.owner,
      placements: f.placements,
      as: 'acme-keep',
      to: { tier: 'schema', schema: 't_acme_keep' },
      indexRebuild: false,
    });
    expect(r.indexes).toBe('per-row');
    expect(await definitions(f.db.owner, 't_acme_keep')).toEqual(prepared);
    await intact({ tier: 'schema', cluster: 'home', schema: 't_acme_keep' }, r.tenant.id);
  });

  it('the shared tier keeps the per-row path, and its definitions', async () => {
    const publicBefore = await definitions(f.db.owner, 'public');
    const r = await importTenant({ file: archive, catalog: f.db.owner, placements: f.placements, as: 'acme-shared' });
    expect(r.indexes).toBe('per-row');
    expect(paths(r)).toEqual({ members: 'per-row', projects: 'per-row', tasks: 'per-row' });
    expect(await definitions(f.db.owner, 'public')).toEqual(publicBefore);
  });
});

describe('refusals while the keys are dropped: nothing visible, the target as it was', () => {
  it('a task whose project is missing: IMPORT_REFERENCE_MISSING from the re-added key; then the good archive loads', async () => {
    const database = `${f.db.name}_rb_fk`;
    const where: PlacementTarget = { tier: 'database', cluster: 'home', database };
    await tenantDatabase(f, database);
    const prepared = await definitions(f.placements.ownerPool(where), 'public');
    const before = await othersChecksum(f, [], [HOME, OTHER]);
    // tasks: tenant_id, id, project_id, …
    const bad = await edited('tasks', 'dangling', (lines) => {
      const fields = lines[0]!.split('\t');
      fields[2] = randomUUID();
      return [fields.join('\t'), ...lines.slice(1)];
    });
    const error = await importTenant({
      file: bad,
      catalog: f.db.owner,
      placements: f.placements,
      as: 'acme-fk',
      to: { tier: 'database', database },
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'IMPORT_REFERENCE_MISSING', details: { table: 'tasks' } });
    // no row value in the message
    expect((error as Error).message).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}/);
    expect((await f.db.owner.query(`select from tenantry.tenants where slug = 'acme-fk'`)).rowCount).toBe(0);
    await emptyTarget(where);
    expect(await definitions(f.placements.ownerPool(where), 'public')).toEqual(prepared);
    expect(await othersChecksum(f, [], [HOME, OTHER])).toBe(before);
    const r = await importTenant({
      file: archive,
      catalog: f.db.owner,
      placements: f.placements,
      as: 'acme-fk',
      to: { tier: 'database', database },
    });
    expect(paths(r).tasks).toBe('rebuilt');
    await intact(where, r.tenant.id);
    expect(await definitions(f.placements.ownerPool(where), 'public')).toEqual(prepared);
  });

  it('a project twice in the archive: IMPORT_CONFLICT from the rebuilt primary key', async () => {
    await tenantSchema(f, 't_acme_dup');
    const where: PlacementTarget = { tier: 'schema', cluster: 'home', schema: 't_acme_dup' };
    const prepared = await definitions(f.db.owner, 't_acme_dup');
    const bad = await edited('projects', 'duplicate', (lines) => [...lines, lines[0]!]);
    await expect(
      importTenant({
        file: bad,
        catalog: f.db.owner,
        placements: f.placements,
        as: 'acme-dup',
        to: { tier: 'schema', schema: 't_acme_dup' },
      }),
    ).rejects.toMatchObject({ code: 'IMPORT_CONFLICT', details: { table: 'projects' } });
    expect((await f.db.owner.query(`select from tenantry.tenants where slug = 'acme-dup'`)).rowCount).toBe(0);
    await emptyTarget(where);
    expect(await definitions(f.db.owner, 't_acme_dup')).toEqual(prepared);
  });

  it(
    'killed (SIGKILL) half-way through the tasks with the keys dropped: nothing visible, definitions as before, the re-run completes',
    {
      timeout: 240_000,
    },
    async () => {
      const database = `${f.db.name}_rb_kill`;
      const where: PlacementTarget = { tier: 'database', cluster: 'home', database };
      await tenantDatabase(f, database);
      const prepared = await definitions(f.placements.ownerPool(where), 'public');
      const before = await othersChecksum(f, [], [HOME, OTHER]);
      const env = {
        ownerUrl: f.db.ownerUrl,
        file: archive,
        as: 'acme-kill',
        crashAt: 'loading',
        to: { tier: 'database', database },
      };
      const error = await exec(process.execPath, ['--import', 'tsx', 'test/lifecycle/support/import-child.ts'], {
        env: { ...process.env, IMPORT_ENV: JSON.stringify(env) },
      }).then(
        () => undefined,
        (e: { signal?: string; stderr?: string }) => e,
      );
      expect(error?.signal, error?.stderr).toBe('SIGKILL');
      expect((await f.db.owner.query(`select from tenantry.tenants where slug = 'acme-kill'`)).rowCount).toBe(0);
      // the backend may still be rolling back: its transaction held the tables' locks
      const pool = f.placements.ownerPool(where);
      for (let i = 0; i < 100; i++) {
        const { rows } = await pool.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()
            and usename = current_user and state <> 'idle'`,
        );
        if (rows[0]!.n === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await emptyTarget(where);
      expect(await definitions(pool, 'public')).toEqual(prepared);
      expect(await othersChecksum(f, [], [HOME, OTHER])).toBe(before);
      const r = await importTenant({
        file: archive,
        catalog: f.db.owner,
        placements: f.placements,
        as: 'acme-kill',
        to: { tier: 'database', database },
      });
      expect(paths(r).tasks).toBe('rebuilt');
      await intact(where, r.tenant.id);
      expect(await definitions(pool, 'public')).toEqual(prepared);
      const { rows: steps } = await f.db.owner.query<{ step: string }>(
        `select step from tenantry.tenant_imports where slug = 'acme-kill' order by created_at`,
      );
      expect(steps.map((s) => s.step)).toEqual(['abandoned', 'done']);
    },
  );
});

describe('not provably safe: the rebuild is not taken, nothing is dropped', () => {
  /** beginIndexRebuild on the tables of a scratch schema, in a transaction rolled back afterwards. */
  async function skipOf(setup: string): Promise<string | undefined> {
    const client = await f.db.owner.connect();
    const schema = `t_probe_${randomUUID().slice(0, 8)}`;
    try {
      await client.query('begin');
      await client.query(`create schema ${schema}; set local search_path = ${schema}, public`);
      await client.query(`
        create table projects (tenant_id uuid not null, id uuid not null, primary key (tenant_id, id));
        select tenantry.register_tenant_table('projects');
        create table tasks (tenant_id uuid not null, id uuid not null, project_id uuid not null,
          primary key (tenant_id, id), foreign key (tenant_id, project_id) references projects (tenant_id, id));
        create index tasks_project_idx on tasks (tenant_id, project_id);
        select tenantry.register_tenant_table('tasks');`);
      await client.query(setup);
      const tables = await registeredTenantTables(client, [schema]);
      const before = await client.query(`select count(*)::int as n from pg_index where indrelid = any($1::oid[])`, [
        tables.map((t) => t.oid),
      ]);
      const r = await beginIndexRebuild(client, tables);
      if ('skipped' in r) {
        const after = await client.query(`select count(*)::int as n from pg_index where indrelid = any($1::oid[])`, [
          tables.map((t) => t.oid),
        ]);
        expect(after.rows).toEqual(before.rows);
        return r.skipped;
      }
      return undefined;
    } finally {
      await client.query('rollback');
      client.release();
    }
  }

  it('takes it for empty tables of their own', async () => {
    expect(await skipOf('select 1')).toBeUndefined();
  });

  it('a table with a row', async () => {
    expect(await skipOf(`insert into projects values (gen_random_uuid(), gen_random_uuid())`)).toBe('not_empty');
  });

  it('a key referenced by a table outside the set', async () => {
    expect(
      await skipOf(
        `create table outside (tenant_id uuid, project_id uuid, foreign key (tenant_id, project_id) references projects (tenant_id, id))`,
      ),
    ).toBe('referenced_from_outside');
  });

  it('a view that depends on a primary key', async () => {
    // project_id is selected through its functional dependency on the primary key
    expect(
      await skipOf(
        `create view per_task as select t.tenant_id, t.id, t.project_id from tasks t group by t.tenant_id, t.id`,
      ),
    ).toBe('dependent_objects');
  });

  it('a comment on an index', async () => {
    expect(await skipOf(`comment on index tasks_project_idx is 'for the foreign key'`)).toBe('dependent_objects');
  });

  it('a clustered index, a NOT VALID key', async () => {
    expect(await skipOf(`alter table tasks cluster on tasks_project_idx`)).toBe('not_recreatable');
    expect(
      await skipOf(
        `alter table tasks add constraint tasks_self foreign key (tenant_id, id) references tasks (tenant_id, id) not valid`,
      ),
    ).toBe('not_recreatable');
  });

  it('a partitioned table', async () => {
    expect(
      await skipOf(
        `create table events (tenant_id uuid not null, at date not null) partition by range (at);
         select tenantry.register_tenant_table('events')`,
      ),
    ).toBe('partitioned');
  });
});
