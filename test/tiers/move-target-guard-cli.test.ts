// `tenantry tenants move` as a subprocess: the home database and the shared schema `public` are
// refused (MOVE_TARGET_TAKEN) before anything changes, `--ddl` included (its SQL never runs
// there). From the other tenants' side: the home database still serves the default route, no
// schema is claimed, no constraint added, and the shared tenant still reads and writes.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantCatalog } from '../../src/catalog/tenant-catalog.js';
import { runAs } from '../../src/context/tenant-context.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { APP_DDL, seedTenant } from '../lifecycle/support/purge-fixtures.js';

const exec = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
let db: TestDatabase;
let dir: string;
let home: string;
let other: string;

async function tenantry(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = ['--import', 'tsx', 'src/cli/main.ts', '--database-url', db.adminUrl, '--dir', dir, ...args];
  try {
    const { stdout, stderr } = await exec(process.execPath, argv, {
      cwd: ROOT,
      env: { ...process.env, TENANTRY_OWNER_DATABASE_URL: db.ownerUrl },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(APP_DDL);
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-move-guard-'));
  const catalog = new TenantCatalog(db.owner);
  await catalog.create({ slug: 'acme', name: 'acme' });
  other = (await catalog.create({ slug: 'other', name: 'other' })).id;
  await seedTenant(db.owner, other, 10);
  home = (await db.owner.query<{ d: string }>('select current_database() as d')).rows[0]!.d;
});
afterAll(async () => {
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

async function state(): Promise<unknown> {
  const q = async (sql: string) => (await db.owner.query(sql)).rows;
  return {
    serves: await q('select serves_default from tenantry.local_route'),
    routes: await q('select tenant_key, state, epoch from tenantry.local_tenants order by 1'),
    claims: await q('select schema, tenant_id from tenantry.tenant_schemas order by 1'),
    checks: await q(
      `select conrelid::regclass::text as t, conname from pg_constraint where contype = 'c' order by 1, 2`,
    ),
    moves: await q('select id from tenantry.moves'),
    tables: await q(`select relname from pg_class where relname = 'ddl_marker'`),
  };
}

describe('tenants move refuses shared targets (MOVE_TARGET_TAKEN), changing nothing', () => {
  it.each([
    ['the home database', () => ['--to', 'database', '--database', home]],
    [
      'the home database, with --ddl',
      () => ['--to', 'database', '--database', home, '--ddl', path.join(dir, 'ddl.sql')],
    ],
    ['the shared schema public', () => ['--to', 'schema', '--schema', 'public']],
    [
      'the shared schema public, with --ddl',
      () => ['--to', 'schema', '--schema', 'public', '--ddl', path.join(dir, 'ddl.sql')],
    ],
  ])('%s', async (_, args) => {
    await writeFile(path.join(dir, 'ddl.sql'), 'create table ddl_marker (id int);');
    const before = await state();
    const r = await tenantry('tenants', 'move', 'acme', ...args());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/MOVE_TARGET_TAKEN/);
    expect(await state()).toEqual(before);
    expect((before as { serves: unknown }).serves).toEqual([{ serves_default: true }]);
    // the shared tenant still reads and writes its rows
    const pool = db.appPool();
    const n = await runAs(other, () => pool.query<{ n: number }>('select count(*)::int as n from notes'));
    expect(n.rows[0]!.n).toBeGreaterThan(0);
    await runAs(other, () => pool.query(`insert into notes (body) values ('still writable')`));
    await runAs(other, () => pool.query(`delete from notes where body = 'still writable'`));
  });
});
