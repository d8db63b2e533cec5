import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createTestDatabase, ROLE_PASSWORD, type TestDatabase } from './support/test-database.js';

const exec = promisify(execFile);
const TSX = path.resolve('node_modules/.bin/tsx');
const CLI = path.resolve('src/cli/main.ts');

let db: TestDatabase;
let dir: string;

/** Runs the CLI as a subprocess against the test database; never throws, returns code and output. */
async function tenantry(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(TSX, [CLI, '--database-url', db.adminUrl, '--dir', dir, ...args], {
      env: {
        ...process.env,
        TENANTRY_APP_PASSWORD: ROLE_PASSWORD,
        TENANTRY_OWNER_PASSWORD: ROLE_PASSWORD,
        TENANTRY_APP_ROLE: db.appRole,
        TENANTRY_OWNER_ROLE: db.ownerRole,
        TENANTRY_CONTEXT_SECRET: db.contextSecret,
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
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-cli-'));
});
afterAll(async () => {
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

describe('tenantry CLI', () => {
  it('prints what is pending on --dry-run, passwords masked, secrets never', async () => {
    const r = await tenantry('install', '--dry-run', '--app-role', 'my_app');
    expect(r.code).toBe(0);
    // the test database is current: the roles and grants steps, no migration
    expect(r.stdout).toContain('-- pending library migrations: none');
    expect(r.stdout).not.toContain('CREATE POLICY tenantry_self ON tenantry.tenants');
    expect(r.stdout).toContain('"my_app"');
    expect(r.stdout).toContain("PASSWORD '********'");
    expect(r.stdout).not.toContain(ROLE_PASSWORD);
    expect(r.stdout).not.toContain(db.contextSecret);
    // and printed nothing: the role it would create does not exist
    const { rows } = await db.admin.query(`select 1 from pg_roles where rolname = 'my_app'`);
    expect(rows).toEqual([]);

    await db.admin.query(`delete from tenantry.library_migrations where feature = 'identity' and version = 3`);
    const pending = await tenantry('install', '--dry-run', '--app-role', db.appRole, '--owner-role', db.ownerRole);
    expect(pending.stdout).toContain('-- pending library migrations: identity/003_visible_reasons\n');
    expect(pending.stdout).toContain('-- migration identity/003_visible_reasons');
    expect(pending.stdout).toContain('CREATE OR REPLACE FUNCTION tenantry.visible_length');
    expect(pending.stdout).not.toContain('-- migration identity/001_identity');
    const applied = await tenantry('install');
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain('applied 1 library migration: identity/003_visible_reasons');
  });

  it('installs idempotently', async () => {
    const first = await tenantry('install');
    const second = await tenantry('install');
    expect([first.code, second.code]).toEqual([0, 0]);
    expect(second.stdout).toContain('tenantry installed (signed context)');
  });

  it('creates, lists, suspends, resumes and soft-deletes tenants', async () => {
    const created = await tenantry('tenants', 'create', 'cli-acme', '--name', 'CLI Acme', '--json');
    expect(created.code).toBe(0);
    const [tenant] = JSON.parse(created.stdout) as Array<{ id: string; status: string }>;
    expect(tenant!.status).toBe('active');
    expect((await tenantry('tenants', 'list')).stdout).toMatch(/cli-acme\s+active\s+shared/);
    expect(JSON.parse((await tenantry('tenants', 'suspend', 'cli-acme', '--json')).stdout)[0].status).toBe('suspended');
    expect(JSON.parse((await tenantry('tenants', 'resume', tenant!.id, '--json')).stdout)[0].status).toBe('active');
    expect(JSON.parse((await tenantry('tenants', 'delete', 'cli-acme', '--json')).stdout)[0].status).toBe('deleted');
    const stored = await db.admin.query('select status from tenantry.tenants where slug = $1', ['cli-acme']);
    expect(stored.rows[0].status).toBe('deleted');
  });

  it('fails with a stable code and exit 1 on bad input, exit 2 on bad usage', async () => {
    const taken = await tenantry('tenants', 'create', 'dup-slug');
    expect(taken.code).toBe(0);
    const again = await tenantry('tenants', 'create', 'dup-slug');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('TENANT_SLUG_TAKEN');
    const missing = await tenantry('tenants', 'get', 'no-such-tenant');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('TENANT_NOT_FOUND');
    expect((await tenantry('tenants', 'frobnicate')).code).toBe(2);
    // a usage error found by a command's action (not by commander's parser) is printed too
    const badClusters = await tenantry('migrate', 'status', '--clusters', 'not json');
    expect(badClusters.code).toBe(2);
    expect(badClusters.stderr).toContain('--clusters / TENANTRY_CLUSTERS must be JSON');
  });

  it('doctor passes on a clean install and fails on a planted defect', async () => {
    const clean = await tenantry('doctor');
    expect(clean.code).toBe(0);
    // the pooler self-test against the app role's URL (direct here): reported, never a failure
    expect(clean.stdout).toContain("pooler (the app role's connections): no pooler (direct connection)");
    expect(clean.stdout).not.toContain(ROLE_PASSWORD);
    const unreachable = await tenantry('doctor', '--json', '--app-url', 'postgres://nobody@127.0.0.1:1/x');
    expect(unreachable.code).toBe(0);
    expect(JSON.parse(unreachable.stdout).pooler).toMatchObject({ pooler: 'unknown', mode: 'unknown' });
    await db.owner.query('create table cli_leaky (tenant_id uuid not null, v int)');
    await db.admin.query(
      `alter table cli_leaky no force row level security, disable row level security; grant select on cli_leaky to ${db.appRole}`,
    );
    const dirty = await tenantry('doctor', '--json');
    expect(dirty.code).toBe(1);
    const report = JSON.parse(dirty.stdout) as { ok: boolean; findings: Array<{ object: string; fix: string }> };
    expect(report.ok).toBe(false);
    expect(report.findings.some((f) => f.object.includes('cli_leaky') && f.fix.length > 0)).toBe(true);
  });
});
