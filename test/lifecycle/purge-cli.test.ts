// `tenantry tenants restore | purge | purge-report` as subprocesses: the dry run, the typed
// confirmation, a purge killed (SIGKILL) midway and run again to the end, the report verified
// and, once edited, refused.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantCatalog } from '../../src/catalog/tenant-catalog.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { APP_DDL, nonEmpty, rowsOfTenant, seedTenant } from './support/purge-fixtures.js';

const exec = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
let db: TestDatabase;
let dir: string;
let catalog: TenantCatalog;

function cliArgs(...args: string[]): string[] {
  return ['--import', 'tsx', 'src/cli/main.ts', '--database-url', db.adminUrl, '--dir', dir, ...args];
}
const env = () => ({ ...process.env, TENANTRY_OWNER_DATABASE_URL: db.ownerUrl });

async function tenantry(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, cliArgs(...args), { cwd: ROOT, env: env() });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(APP_DDL);
  catalog = new TenantCatalog(db.owner);
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-purge-'));
});
afterAll(async () => {
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('tenantry tenants restore / purge / purge-report', () => {
  it('restores a soft-deleted tenant', async () => {
    const t = await catalog.create({ slug: 'back', name: 'back' });
    await catalog.softDelete(t.id);
    const r = await tenantry('tenants', 'restore', 'back');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('back');
    expect((await catalog.get(t.id)).status).toBe('active');
    const missing = await tenantry('tenants', 'restore', 'nobody-here');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('TENANT_NOT_FOUND');
  }, 120_000);

  it('prints the plan on --dry-run, and refuses a run without the typed confirmation, changing nothing', async () => {
    const t = await catalog.create({ slug: 'small', name: 'small' });
    await seedTenant(db.owner, t.id, 7);
    await catalog.softDelete(t.id);
    const before = await rowsOfTenant(db.owner, t.id);
    const dry = await tenantry('tenants', 'purge', 'small', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('purge plan for small');
    expect(dry.stdout).toMatch(/table\s+delete\s+home\/tt_\w+\s+public\.notes\s+7/);
    expect(dry.stdout).toContain('refused now: PURGE_RETENTION');
    const json = JSON.parse(
      (await tenantry('tenants', 'purge', 'small', '--dry-run', '--retention-days', '0', '--json')).stdout,
    );
    expect(json.blockers).toEqual([]);
    const unconfirmed = await tenantry('tenants', 'purge', 'small');
    expect(unconfirmed.code).toBe(1);
    expect(unconfirmed.stderr).toContain('--confirm');
    const wrong = await tenantry('tenants', 'purge', 'small', '--confirm', 'smal', '--ignore-retention');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('PURGE_CONFIRMATION_REQUIRED');
    const badAudit = await tenantry('tenants', 'purge', 'small', '--dry-run', '--audit', 'shred');
    expect(badAudit.code).toBe(1);
    expect(badAudit.stderr).toContain('INVALID_ARGUMENT');
    expect(await rowsOfTenant(db.owner, t.id)).toEqual(before);
  }, 240_000);

  it('a purge killed midway is finished by the next run; the report keeps the counts from before the first run and verifies; an edited one does not', async () => {
    const big = await catalog.create({ slug: 'big', name: 'big' });
    const other = await catalog.create({ slug: 'neighbour', name: 'neighbour' });
    await seedTenant(db.owner, big.id, 20_000);
    await seedTenant(db.owner, other.id, 300);
    await catalog.softDelete(big.id);
    const otherBefore = await rowsOfTenant(db.owner, other.id);

    const args = [
      'tenants',
      'purge',
      'big',
      '--confirm',
      'big',
      '--ignore-retention',
      '--batch-size',
      '50',
      '--operator',
      'ci',
    ];
    const child = spawn(process.execPath, cliArgs(...args), {
      cwd: ROOT,
      env: env(),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    // kill once part of the comments (the first table, children first) are gone
    for (let i = 0; ; i++) {
      const { rows } = await db.owner.query<{ n: number }>(
        'select count(*)::int as n from comments where tenant_id = $1',
        [big.id],
      );
      if (rows[0]!.n < 15_000) break;
      if (i > 3000) throw new Error('the purge did not start');
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    for (let i = 0; i < 100; i++) {
      const { rows } = await db.admin.query(
        `select 1 from pg_stat_activity where application_name = 'tenantry purge' and datname = current_database()`,
      );
      if (rows.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const midway = nonEmpty(await rowsOfTenant(db.owner, big.id));
    expect(midway['public.notes']).toBe(20_000);
    expect(midway['public.comments']).toBeLessThan(20_000);
    // stopped midway: it cannot be restored any more, and the next run finishes it
    const restore = await tenantry('tenants', 'restore', 'big');
    expect(restore.code).toBe(1);
    expect(restore.stderr).toContain('TENANT_PURGING');
    const dry = await tenantry('tenants', 'purge', 'big', '--dry-run');
    expect(dry.stdout).toContain('resumes purge');

    const rerun = await tenantry(...args.filter((a) => a !== '50' && a !== '--batch-size'), '--json');
    expect(rerun.code).toBe(0);
    const report = JSON.parse(rerun.stdout);
    const step = (table: string) => report.steps.find((s: { table: string }) => s.table === table);
    expect(step('public.comments')).toMatchObject({ rowsBefore: 20_000, rowsAfter: 0 });
    expect(step('public.notes')).toMatchObject({ rowsBefore: 20_000, rowsAfter: 0 });
    expect(report.operator).toBe('ci');
    expect(nonEmpty(await rowsOfTenant(db.owner, big.id))).toEqual({});
    expect(await rowsOfTenant(db.owner, other.id)).toEqual(otherBefore);
    expect(
      (await db.owner.query(`select count(*)::int as n from tenantry.purges where tenant_id = $1`, [big.id])).rows[0].n,
    ).toBe(1);

    const verify = await tenantry('tenants', 'purge-report', 'big', '--verify');
    expect(verify.code).toBe(0);
    expect(verify.stdout).toContain('(valid)');
    await db.owner.query(
      `update tenantry.purges set report = replace(report, '"operator": "ci"', '"operator": "someone else"') where tenant_id = $1`,
      [big.id],
    );
    const tampered = await tenantry('tenants', 'purge-report', 'big', '--verify');
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toContain('PURGE_REPORT_INVALID');
    const none = await tenantry('tenants', 'purge-report', 'never-purged', '--verify');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('PURGE_REPORT_NOT_FOUND');
  }, 400_000);
});
