// `tenantry tenants plugins list|enable|disable|reset` as a subprocess, with the reference
// server's plugin registry module.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantCatalog } from '../../src/catalog/tenant-catalog.js';
import { createTestDatabase, ROLE_PASSWORD, type TestDatabase } from '../support/test-database.js';

const exec = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
let db: TestDatabase;
let dir: string;
let other: string;

async function tenantry(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return tenantryWith({ TENANTRY_PLUGINS_MODULE: 'app/plugins/registry.ts' }, ...args);
}

async function tenantryWith(
  extra: Record<string, string | undefined>,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = ['--import', 'tsx', '--conditions=tenantry-source', 'src/cli/main.ts', '--database-url', db.adminUrl];
  try {
    const { stdout, stderr } = await exec(process.execPath, [...argv, '--dir', dir, ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        TENANTRY_OWNER_DATABASE_URL: db.ownerUrl,
        TENANTRY_PLUGINS_MODULE: undefined,
        ...extra,
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
  const catalog = new TenantCatalog(db.owner);
  await catalog.create({ slug: 'acme', name: 'Acme', settings: { plan: 'business' } });
  other = (await catalog.create({ slug: 'other', name: 'Other' })).id;
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-plugins-'));
});
afterAll(async () => {
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('tenantry tenants plugins', () => {
  it('lists by plan, enables and disables with a reason (audited), resets to the plan', async () => {
    const listed = await tenantry('tenants', 'plugins', 'list', 'acme', '--json');
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([
      { plugin: 'transcripts', version: '1.0.0', enabled: true, source: 'plan', plans: ['business', 'enterprise'] },
      { plugin: 'webhooks', version: '1.0.0', enabled: false, source: 'off', plans: ['enterprise'] },
    ]);
    const enabled = await tenantry(
      'tenants',
      'plugins',
      'enable',
      'acme',
      'webhooks',
      '--reason',
      'ticket 88: trial',
      '--actor',
      'staff:ann',
    );
    expect(enabled.code, enabled.stderr).toBe(0);
    expect(enabled.stdout).toContain('acme: webhooks enable → enabled (override)');
    const disabled = await tenantry(
      'tenants',
      'plugins',
      'disable',
      'acme',
      'transcripts',
      '--reason',
      'downgrade to free',
    );
    expect(disabled.stdout).toContain('acme: transcripts disable → disabled (override)');
    const table = await tenantry('tenants', 'plugins', 'list', 'acme', '--history');
    expect(table.stdout).toMatch(/webhooks\s+1\.0\.0\s+yes\s+override/);
    expect(table.stdout).toMatch(/transcripts\s+disable\s+cli:\S+\s+downgrade to free/);
    expect(table.stdout).toMatch(/webhooks\s+enable\s+staff:ann\s+ticket 88: trial/);
    const reset = await tenantry('tenants', 'plugins', 'reset', 'acme', 'transcripts', '--reason', 'back to the plan');
    expect(reset.stdout).toContain('acme: transcripts reset → enabled (plan)');
    // the other tenant is untouched
    const { rows } = await db.owner.query(
      'select count(*)::int as n from tenantry_private.tenant_flags where tenant_id = $1',
      [other],
    );
    expect(rows[0].n).toBe(0);
  }, 120_000);

  it('refuses an unknown plugin or tenant, changing nothing', async () => {
    const before = (await db.owner.query('select count(*)::int as n from tenantry_private.flag_changes')).rows[0].n;
    const unknown = await tenantry('tenants', 'plugins', 'enable', 'acme', 'nope', '--reason', 'ticket 90: no such');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('PLUGIN_UNKNOWN');
    const missing = await tenantry('tenants', 'plugins', 'list', 'no-such-tenant');
    expect(missing.code).not.toBe(0);
    expect((await db.owner.query('select count(*)::int as n from tenantry_private.flag_changes')).rows[0].n).toBe(
      before,
    );
  }, 120_000);

  it("tenantry migrate --plugins applies the plugins' migrations with the directory's; without it the run is refused", async () => {
    const migrations = path.join(dir, 'migrations');
    await mkdir(path.join(migrations, 'tenant'), { recursive: true });
    await writeFile(
      path.join(migrations, 'tenant', '001_notes.sql'),
      `create table notes (tenant_id uuid not null default tenantry.current_tenant_id(), id uuid not null, primary key (tenant_id, id));
select tenantry.register_tenant_table('notes');`,
    );
    const up = await tenantry('migrate', '--migrations', migrations, '--plugins', 'app/plugins/registry.ts');
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const { rows } = await db.admin.query<{ name: string }>(
      `select name from tenantry.schema_migrations order by version`,
    );
    expect(rows.map((r) => r.name)).toEqual([
      '001_notes.sql',
      '1001_transcripts_transcripts.sql',
      '1101_webhooks_webhooks.sql',
      '1102_webhooks_webhook_delivery_errors.sql',
    ]);
    const forced = await db.admin.query(
      `select relname from pg_class where relname in ('transcripts', 'webhook_endpoints') and relforcerowsecurity order by 1`,
    );
    expect(forced.rows.map((r) => r.relname)).toEqual(['transcripts', 'webhook_endpoints']);
    const status = await tenantry(
      'migrate',
      'status',
      '--migrations',
      migrations,
      '--plugins',
      'app/plugins/registry.ts',
    );
    expect(status.code, status.stdout + status.stderr).toBe(0);
    // the directory alone no longer describes what was applied: refused, nothing run
    const without = await tenantryWith({}, 'migrate', '--migrations', migrations);
    expect(without.code).not.toBe(0);
    expect(without.stdout + without.stderr).toContain('MIGRATION_UNKNOWN');
  }, 120_000);

  it('tenants onboard and tenants import --ddl take --plugins too: the new schema gets the migrations migrate applied', async () => {
    const migrations = path.join(dir, 'migrations'); // migrated with the plugins by the test above
    const roles = {
      TENANTRY_APP_PASSWORD: ROLE_PASSWORD,
      TENANTRY_OWNER_PASSWORD: ROLE_PASSWORD,
      TENANTRY_APP_ROLE: db.appRole,
      TENANTRY_OWNER_ROLE: db.ownerRole,
      TENANTRY_CONTEXT_SECRET: db.contextSecret,
      TENANTRY_ROUTER_ROLE: db.routerRole,
      TENANTRY_ROUTER_PASSWORD: ROLE_PASSWORD,
    };
    const onboard = (slug: string, ...extra: string[]) =>
      tenantryWith(roles, 'tenants', 'onboard', slug, '--name', slug, '--plan', 'business', ...extra);
    const TABLES = ['notes', 'transcripts', 'webhook_deliveries', 'webhook_endpoints', 'webhook_secrets'];
    const tablesOf = async (schema: string) =>
      (
        await db.admin.query<{ tablename: string }>(
          `select tablename from pg_tables where schemaname = $1 order by 1`,
          [schema],
        )
      ).rows.map((r) => r.tablename);
    // without the plugins the home database's applied plugin migrations are unknown: refused at migrate
    const without = await onboard('nopl', '--migrations', migrations);
    expect(without.code).not.toBe(0);
    expect(without.stderr).toContain('ONBOARDING_STEP_FAILED');
    // resumed with no migrations at all: refused with a code, not activated with an empty schema
    const empty = await onboard('nopl');
    expect(empty.code).not.toBe(0);
    expect(empty.stderr).toContain('ONBOARDING_NO_MIGRATIONS');
    const stuck = await db.admin.query(`select status from tenantry.tenants where slug = 'nopl'`);
    expect(stuck.rows).toEqual([{ status: 'provisioning' }]);
    expect(await tablesOf('t_nopl')).toEqual([]);
    // tenants list shows where it goes, not the shared tier it is held in meanwhile
    const listed = await tenantryWith(roles, 'tenants', 'list');
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.split('\n').find((l) => l.includes(' nopl '))).toMatch(
      /provisioning\s+\(provisioning → schema\)/,
    );
    // with them it finishes, the plugins' tables made in the new schema
    const done = await onboard('nopl', '--migrations', migrations, '--plugins', 'app/plugins/registry.ts');
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect(await tablesOf('t_nopl')).toEqual(TABLES);
    // the env var names the module as well
    const viaEnv = await tenantryWith(
      { ...roles, TENANTRY_PLUGINS_MODULE: 'app/plugins/registry.ts' },
      'tenants',
      'onboard',
      'viaenv',
      '--name',
      'viaenv',
      '--plan',
      'business',
      '--migrations',
      migrations,
    );
    expect(viaEnv.code, viaEnv.stdout + viaEnv.stderr).toBe(0);
    expect(await tablesOf('t_viaenv')).toEqual(TABLES);

    const archive = path.join(dir, 'nopl.tenant');
    const exported = await tenantryWith(roles, 'tenants', 'export', 'nopl', '--out', archive);
    expect(exported.code, exported.stdout + exported.stderr).toBe(0);
    const imported = await tenantryWith(
      roles,
      'tenants',
      'import',
      archive,
      '--as',
      'copy',
      '--to',
      'schema',
      '--ddl',
      migrations,
      '--plugins',
      'app/plugins/registry.ts',
    );
    expect(imported.code, imported.stdout + imported.stderr).toBe(0);
    expect(await tablesOf('t_copy')).toEqual(TABLES);
  }, 180_000);
});
