// `tenantry tenants brand get|set|history|rollback` and `tenantry tenants flags …`, `tenantry
// flags kill|revive|rollout|log` as subprocesses, against a real database.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantCatalog } from '../../src/catalog/tenant-catalog.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { solidPng } from './images.js';

const exec = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
let db: TestDatabase;
let dir: string;
let acme: string;
let other: string;

async function tenantry(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = ['--import', 'tsx', '--conditions=tenantry-source', 'src/cli/main.ts', '--database-url', db.adminUrl];
  try {
    const { stdout, stderr } = await exec(process.execPath, [...argv, '--dir', dir, ...args], {
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

const count = async (sql: string, params: unknown[]) =>
  Number((await db.admin.query<{ n: string }>(`select count(*)::text as n from (${sql}) q`, params)).rows[0]!.n);

beforeAll(async () => {
  db = await createTestDatabase();
  acme = (await new TenantCatalog(db.owner).create({ slug: 'acme', name: 'Acme' })).id;
  other = (await new TenantCatalog(db.owner).create({ slug: 'other', name: 'Other' })).id;
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-brand-'));
});
afterAll(async () => {
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('tenantry tenants brand', () => {
  it('get, set (with a logo), refuse (nothing changed), history, rollback', async () => {
    const got = await tenantry('tenants', 'brand', 'get', 'acme', '--json');
    expect(got.code).toBe(0);
    expect(JSON.parse(got.stdout)).toMatchObject({ source: 'default', brand: { displayName: 'Acme' } });
    const logo = path.join(dir, 'logo.png');
    await writeFile(logo, solidPng(10, 10, [0, 0, 0]));
    const set = await tenantry(
      'tenants',
      'brand',
      'set',
      'acme',
      '--name',
      'Acme Corp',
      '--primary',
      '#0b5cad',
      '--logo',
      logo,
      '--reason',
      'ticket 7',
    );
    expect(set.stdout).toContain('acme: brand saved (change 1)');
    const shown = await tenantry('tenants', 'brand', 'get', 'acme');
    expect(shown.stdout).toMatch(/displayName\s+Acme Corp/);
    expect(shown.stdout).toMatch(/logo\s+image\/png 10×10/);

    const before = await count('select * from tenantry_private.tenant_brand_history', []);
    const bad = await tenantry('tenants', 'brand', 'set', 'acme', '--text', '#dddddd');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/BRAND_INVALID.*colors\.text/);
    const svg = path.join(dir, 'logo.svg');
    await writeFile(svg, '<svg xmlns="http://www.w3.org/2000/svg"><script>1</script></svg>');
    const refusedLogo = await tenantry('tenants', 'brand', 'set', 'acme', '--logo', svg);
    expect(refusedLogo.stderr).toMatch(/BRAND_LOGO_INVALID.*SVG/);
    expect(await count('select * from tenantry_private.tenant_brand_history', [])).toBe(before);

    const history = await tenantry('tenants', 'brand', 'history', 'acme', '--json');
    expect(JSON.parse(history.stdout)[0]).toMatchObject({ version: 1, reason: 'ticket 7' });
    const back = await tenantry('tenants', 'brand', 'rollback', 'acme', '0');
    expect(back.stdout).toContain('change 2');
    expect(JSON.parse((await tenantry('tenants', 'brand', 'get', 'acme', '--json')).stdout).source).toBe('default');
    // the other tenant never had a row
    expect(await count('select * from tenantry_private.tenant_brand_history where tenant_id = $1', [other])).toBe(0);
  }, 60_000);
});

describe('tenantry tenants flags, tenantry flags', () => {
  it('list, set, unset per tenant; kill and revive for everyone; all audited', async () => {
    const listed = JSON.parse((await tenantry('tenants', 'flags', 'list', 'acme', '--json')).stdout);
    expect(listed).toEqual([
      expect.objectContaining({ flag: 'transcripts', value: false, variant: 'off', killed: false }),
    ]);
    const bad = await tenantry('tenants', 'flags', 'set', 'acme', 'transcripts', '"yes"');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/FLAG_VALUE_INVALID/);
    expect(await count('select * from tenantry_private.flag_changes', [])).toBe(0);
    expect((await tenantry('tenants', 'flags', 'set', 'acme', 'transcripts', 'true', '--reason', 'beta')).code).toBe(0);
    expect(JSON.parse((await tenantry('tenants', 'flags', 'list', 'acme', '--json')).stdout)[0]).toMatchObject({
      value: true,
      variant: 'override',
      override: true,
    });
    // the other tenant is untouched
    expect(JSON.parse((await tenantry('tenants', 'flags', 'list', 'other', '--json')).stdout)[0].value).toBe(false);

    expect((await tenantry('flags', 'kill', 'transcripts', '--reason', 'incident 9')).stdout).toContain('killed');
    expect(JSON.parse((await tenantry('tenants', 'flags', 'list', 'acme', '--json')).stdout)[0]).toMatchObject({
      value: false,
      variant: 'killed',
      killed: true,
    });
    expect((await tenantry('flags', 'revive', 'transcripts')).code).toBe(0);
    expect((await tenantry('flags', 'rollout', 'transcripts', '100')).code).toBe(0);
    expect(JSON.parse((await tenantry('tenants', 'flags', 'list', 'other', '--json')).stdout)[0]).toMatchObject({
      value: true,
      variant: 'rollout',
    });
    expect((await tenantry('tenants', 'flags', 'unset', 'acme', 'transcripts')).code).toBe(0);
    const log = JSON.parse((await tenantry('flags', 'log', 'transcripts', '--json')).stdout);
    expect(log.map((c: { change: string }) => c.change)).toEqual(['clear', 'rollout', 'revive', 'kill', 'override']);
    expect(log[3]).toMatchObject({ reason: 'incident 9', tenantId: null });
    expect(
      await count(`select * from tenantry.audit_log where tenant_id = $1 and action = 'flag.changed'`, [acme]),
    ).toBe(2);
    expect(
      await count(`select * from tenantry.audit_log where tenant_id = $1 and action = 'flag.changed'`, [other]),
    ).toBe(0);
  }, 90_000);
});
