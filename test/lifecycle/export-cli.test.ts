import { execFile } from 'node:child_process';
import { mkdtemp, rm, truncate, writeFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROLE_PASSWORD } from '../support/test-database.js';
import { TENANT_DDL, exportFixture, othersChecksum, seedTenant, type ExportFixture } from './support/export-fixture.js';

const exec = promisify(execFile);
const TSX = path.resolve('node_modules/.bin/tsx');
const CLI = path.resolve('src/cli/main.ts');

let f: ExportFixture;
let dir: string;

async function tenantry(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(TSX, [CLI, '--database-url', f.db.adminUrl, '--dir', dir, ...args], {
      env: {
        ...process.env,
        TENANTRY_APP_PASSWORD: ROLE_PASSWORD,
        TENANTRY_OWNER_PASSWORD: ROLE_PASSWORD,
        TENANTRY_APP_ROLE: f.db.appRole,
        TENANTRY_OWNER_ROLE: f.db.ownerRole,
        TENANTRY_CONTEXT_SECRET: f.db.contextSecret,
      },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  f = await exportFixture();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-export-cli-'));
  await seedTenant(f, 'acme', 40, 3);
});
afterAll(async () => {
  await f?.end();
  await rm(dir, { recursive: true, force: true });
});

// each command is a tsx subprocess starting its own connections: slow on a loaded machine
describe('tenantry tenants export / import', { timeout: 180_000 }, () => {
  it('exports, then imports as a new tenant into its own schema, with progress on stderr', async () => {
    const file = path.join(dir, 'acme.tenant');
    const exported = await tenantry('tenants', 'export', 'acme', '--out', file);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/exported acme: 162 rows in 3 tables/);
    expect(exported.stderr).toMatch(/exporting tasks {2}120 rows/);
    const ddl = path.join(dir, 'tables.sql');
    await writeFile(ddl, TENANT_DDL);
    const imported = await tenantry('tenants', 'import', file, '--as', 'acme-two', '--to', 'schema', '--ddl', ddl);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/imported acme-two .*162 rows in 3 tables.*schema on home schema t_acme_two/);
    expect(imported.stderr).toMatch(/loading tasks {2}120\/120 rows \(100%\)/);
    // the CLI ran with the superuser URL: the schema is the superuser's
    const { rows } = await f.db.admin.query(
      `select count(*)::int as n from t_acme_two.tasks t join tenantry.tenants x on x.id = t.tenant_id where x.slug = 'acme-two'`,
    );
    expect(rows[0].n).toBe(120);
  });

  it('refuses an existing tenant, and a truncated archive, with a code and exit 1, changing nothing', async () => {
    const file = path.join(dir, 'acme.tenant');
    const before = await othersChecksum(f, [], [{ tier: 'shared', cluster: 'home' }]);
    const exists = await tenantry('tenants', 'import', file);
    expect(exists.code).toBe(1);
    expect(exists.stderr).toMatch(/^error IMPORT_TENANT_EXISTS: /m);
    const cut = path.join(dir, 'cut.tenant');
    await writeFile(cut, '');
    await truncate(cut, 0);
    const { size } = await stat(file);
    await exec('sh', ['-c', `head -c ${Math.floor(size / 2)} "${file}" > "${cut}"`]);
    const truncated = await tenantry('tenants', 'import', cut, '--as', 'acme-cut');
    expect(truncated.code).toBe(1);
    expect(truncated.stderr).toMatch(/^error ARCHIVE_TRUNCATED: /m);
    expect(await othersChecksum(f, [], [{ tier: 'shared', cluster: 'home' }])).toBe(before);
    expect((await f.db.owner.query(`select from tenantry.tenants where slug = 'acme-cut'`)).rowCount).toBe(0);
    // --replace is a typed confirmation: the slug of the tenant the archive would overwrite
    for (const typed of ['globex', 'Acme', '']) {
      const wrong = await tenantry('tenants', 'import', file, '--replace', typed);
      expect(wrong.code, typed).toBe(1);
      expect(wrong.stderr).toMatch(/^error INVALID_ARGUMENT: --replace: this archive would replace the tenant acme/m);
    }
    expect(await othersChecksum(f, [], [{ tier: 'shared', cluster: 'home' }])).toBe(before);
    const bad = await tenantry('tenants', 'import', file, '--to', 'nowhere');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/INVALID_ARGUMENT/);
    // a malformed cluster URL: the option's error, not Node's ERR_INVALID_URL, and never echoed
    const url = await tenantry(
      'tenants',
      'import',
      file,
      '--as',
      'acme-url',
      '--cluster',
      'x',
      '--cluster-url',
      'x=gar:bage@secret',
    );
    expect(url.code).toBe(1);
    expect(url.stderr).toMatch(/^error INVALID_ARGUMENT: --cluster-url x=… must be a postgres:\/\/ URL/m);
    expect(url.stderr).not.toContain('secret');
  });

  it('refuses --replace with --as, or with another tier, as IMPORT_REPLACE_UNSUPPORTED, changing nothing', async () => {
    const file = path.join(dir, 'acme.tenant');
    const tenants = async () =>
      (await f.db.owner.query(`select slug, status, placement from tenantry.tenants order by slug`)).rows;
    const before = await othersChecksum(f, [], [{ tier: 'shared', cluster: 'home' }]);
    const catalog = await tenants();
    const cases = [
      ['--as', 'foo'],
      ['--to', 'schema'],
      ['--to', 'database'],
    ];
    // active (as the try-out had it) and suspended (as a replace wants it): refused either way
    for (const status of ['active', 'suspended']) {
      await f.db.owner.query(`update tenantry.tenants set status = $1 where slug = 'acme'`, [status]);
      for (const extra of cases) {
        const refused = await tenantry('tenants', 'import', file, '--replace', 'acme', ...extra);
        expect(refused.code, `${status} ${extra.join(' ')}: ${refused.stderr}`).toBe(1);
        expect(refused.stderr).toMatch(/^error IMPORT_REPLACE_UNSUPPORTED: /m);
      }
    }
    await f.db.owner.query(`update tenantry.tenants set status = 'active' where slug = 'acme'`);
    expect(await tenants()).toEqual(catalog);
    expect((await f.db.owner.query(`select from tenantry.tenants where slug = 'foo'`)).rowCount).toBe(0);
    expect(await othersChecksum(f, [], [{ tier: 'shared', cluster: 'home' }])).toBe(before);
    expect((await f.db.admin.query(`select from pg_namespace where nspname = 't_acme'`)).rowCount).toBe(0);
  });
});
