// `tenantry tenants settings get|set|plan|unset|history|rollback` as a subprocess, with the
// reference server's definition module.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantCatalog } from '../../src/catalog/tenant-catalog.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

const exec = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
let db: TestDatabase;
let dir: string;

async function tenantry(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = [
    '--import',
    'tsx',
    '--conditions=tenantry-source',
    'src/cli/main.ts',
    '--database-url',
    db.adminUrl,
    '--dir',
    dir,
  ];
  try {
    const { stdout, stderr } = await exec(process.execPath, [...argv, ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        TENANTRY_OWNER_DATABASE_URL: db.ownerUrl,
        TENANTRY_SETTINGS_MODULE: 'app/settings/definition.ts',
      },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  await new TenantCatalog(db.owner).create({ slug: 'acme', name: 'Acme', settings: { plan: 'business' } });
  await new TenantCatalog(db.owner).create({ slug: 'other', name: 'Other' });
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-settings-'));
});
afterAll(async () => {
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('tenantry tenants settings', () => {
  it('get, set, refuse, history, rollback, unset', async () => {
    const got = await tenantry('tenants', 'settings', 'get', 'acme', '--json');
    expect(got.code).toBe(0);
    expect(JSON.parse(got.stdout).settings.maxRecordingMinutes).toEqual({ value: 240, source: 'plan' });

    const set = await tenantry(
      'tenants',
      'settings',
      'set',
      'acme',
      'maxRecordingMinutes',
      '120',
      '--reason',
      'ticket 12',
    );
    expect(set.code).toBe(0);
    expect(set.stdout).toContain('change 1');

    const bad = await tenantry('tenants', 'settings', 'set', 'acme', 'maxRecordingMinutes', '-5');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('SETTING_INVALID');
    expect(bad.stderr).toContain('maxRecordingMinutes');

    await tenantry('tenants', 'settings', 'set', 'acme', 'welcomeMessage', 'Hi', '--actor', 'staff:ann');
    const history = await tenantry('tenants', 'settings', 'history', 'acme', '--json');
    const rows = JSON.parse(history.stdout) as Array<{ version: number; key: string; actor: string; reason: string }>;
    expect(rows.map((r) => [r.version, r.key])).toEqual([
      [2, 'welcomeMessage'],
      [1, 'maxRecordingMinutes'],
    ]);
    expect(rows[0]!.actor).toBe('staff:ann');
    expect(rows[1]!.reason).toBe('ticket 12');

    const back = await tenantry('tenants', 'settings', 'rollback', 'acme', '1');
    expect(back.code).toBe(0);
    const after = JSON.parse((await tenantry('tenants', 'settings', 'get', 'acme', '--json')).stdout);
    expect(after.settings.welcomeMessage.source).toBe('library');
    expect(after.settings.maxRecordingMinutes).toEqual({ value: 120, source: 'tenant' });
    expect((await tenantry('tenants', 'settings', 'unset', 'acme', 'maxRecordingMinutes')).code).toBe(0);

    // the plan: set, audited, refused when malformed or unknown to the definition's schema
    const moved = await tenantry('tenants', 'settings', 'plan', 'acme', 'free', '--reason', 'downgrade');
    expect(moved.code).toBe(0);
    expect(moved.stdout).toContain('acme: plan free');
    const onFree = JSON.parse((await tenantry('tenants', 'settings', 'get', 'acme', '--json')).stdout);
    expect(onFree.plan).toBe('free');
    const audit = await db.owner.query<{ detail: { from: string; to: string } }>(
      `select detail from tenantry.audit_log where action = 'settings.plan_changed' order by id desc limit 1`,
    );
    expect(audit.rows[0]!.detail).toMatchObject({ from: 'business', to: 'free' });
    const badPlan = await tenantry('tenants', 'settings', 'plan', 'acme', 'no such plan!');
    expect(badPlan.code).toBe(1);
    expect(badPlan.stderr).toMatch(/INVALID_ARGUMENT|plan must match/);
    expect(JSON.parse((await tenantry('tenants', 'settings', 'get', 'acme', '--json')).stdout).plan).toBe('free');
    // free has no settings values of its own in the reference definition: a warning, not a refusal
    expect(moved.stderr).toContain('gives plan free no values');
    await tenantry('tenants', 'settings', 'plan', 'acme', 'business');

    // the other tenant was never touched
    const other = JSON.parse((await tenantry('tenants', 'settings', 'get', 'other', '--json')).stdout);
    expect(other.version).toBe(0);
    expect((await tenantry('tenants', 'settings', 'get', 'nobody')).stderr).toContain('TENANT_NOT_FOUND');
  }, 180_000);
});
