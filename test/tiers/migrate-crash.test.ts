import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { migrateEverywhere } from '../../src/tiers/migrate/migrate-everywhere.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

// `tenantry migrate` killed (SIGKILL) in the middle of a run over 40 tenant schemas: every target
// is either fully at the new version or untouched, and the next run completes the rest.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCHEMAS = 40;
const NOTES = `create table notes (
  tenant_id uuid not null default tenantry.current_tenant_id(),
  id uuid not null default gen_random_uuid(),
  body text not null,
  primary key (tenant_id, id)
);
select tenantry.register_tenant_table('notes');`;
// slow enough that the kill lands while targets are in flight
const SECOND = `alter table notes add column title text;
select pg_sleep(0.05);
create table comments (
  tenant_id uuid not null default tenantry.current_tenant_id(),
  id uuid not null default gen_random_uuid(),
  body text not null,
  primary key (tenant_id, id)
);
select tenantry.register_tenant_table('comments');`;

let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin.query(
    `insert into tenantry.tenants (slug, name) select 'crash-' || i, 'crash' from generate_series(1, ${SCHEMAS}) i`,
  );
  await db.admin.query(`do $do$ declare i int; begin
    for i in 1..${SCHEMAS} loop
      execute format('create schema %I authorization %I', 't_crash_' || i, '${db.ownerRole}');
    end loop; end $do$`);
  await db.admin.query(`insert into tenantry.placements (tenant_id, tier, cluster, schema)
    select id, 'schema', 'home', 't_crash_' || substr(slug, 7) from tenantry.tenants where slug like 'crash-%'`);
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-crash-'));
  await mkdir(path.join(dir, 'tenant'));
  await writeFile(path.join(dir, 'tenant', '001_notes.sql'), NOTES);
  const first = await migrateEverywhere({ catalog: db.owner, clusters: { home: db.ownerUrl }, migrations: dir });
  if (!first.ok) throw new Error('the initial migration failed');
  await writeFile(path.join(dir, 'tenant', '002_comments.sql'), SECOND);
});

afterAll(async () => {
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('a run killed mid-way leaves each target at a version or untouched; the next run completes the rest', async () => {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      '--database-url',
      db.adminUrl,
      'migrate',
      '--migrations',
      dir,
      '--concurrency',
      '2',
    ],
    {
      cwd: ROOT,
      env: { ...process.env, TENANTRY_OWNER_DATABASE_URL: db.ownerUrl, TENANTRY_CLUSTERS: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  // kill once about a third of the targets are at the new version (their comments table committed)
  const ended = new Promise<never>((_resolve, reject) =>
    child.on('exit', () => reject(new Error('the run ended before it was killed'))),
  );
  ended.catch(() => undefined);
  const third = (async () => {
    for (;;) {
      const { rows } = await db.admin.query(
        `select count(*)::int as n from pg_tables where tablename = 'comments' and schemaname like 't_crash_%'`,
      );
      if (rows[0]!.n >= 13) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  await Promise.race([third, ended]);
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  // the server rolls back the killed run's open transactions as their backends notice the lost client
  for (let i = 0; i < 100; i++) {
    const { rows } = await db.admin.query(
      `select count(*)::int as n from pg_stat_activity where application_name = 'tenantry migrate' and datname = current_database()`,
    );
    if (rows[0]!.n === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  const state = async () =>
    (
      await db.admin.query<{ schema: string; recorded: boolean; title: boolean; comments: boolean }>(
        `select s.nspname as schema,
                exists (select from tenantry.schema_migrations m where m.target = s.nspname and m.version = 2) as recorded,
                exists (select from information_schema.columns c where c.table_schema = s.nspname and c.table_name = 'notes' and c.column_name = 'title') as title,
                to_regclass(quote_ident(s.nspname) || '.comments') is not null as comments
           from pg_namespace s where s.nspname like 't_crash_%' or s.nspname = 'public'`,
      )
    ).rows;
  const after = await state();
  expect(after).toHaveLength(SCHEMAS + 1);
  // all or nothing per target: the bookkeeping, the column and the table agree everywhere
  expect(after.filter((r) => !(r.recorded === r.title && r.title === r.comments))).toEqual([]);
  const migrated = after.filter((r) => r.recorded).length;
  expect(migrated).toBeGreaterThanOrEqual(13);
  expect(migrated).toBeLessThan(SCHEMAS + 1);

  const rerun = await migrateEverywhere({
    catalog: db.owner,
    clusters: { home: db.ownerUrl },
    migrations: dir,
    concurrency: 4,
  });
  expect(rerun.ok).toBe(true);
  expect(rerun.results.filter((r) => r.status === 'applied')).toHaveLength(SCHEMAS + 1 - migrated);
  expect((await state()).every((r) => r.recorded && r.title && r.comments)).toBe(true);
});
