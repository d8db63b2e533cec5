import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrandAdmin } from '../../src/branding/index.js';
import { exportTenant, importTenant } from '../../src/lifecycle/index.js';
import { definePlugin, definePlugins, PluginAdmin } from '../../src/plugins/index.js';
import { defineFlags, FlagsAdmin, SettingsAdmin, type SettingsDefinition } from '../../src/settings/index.js';
import { solidPng } from '../branding/images.js';
import { definition as settingsDefinition } from '../settings/support.js';
import { exportFixture, seedTenant, type ExportFixture } from './support/export-fixture.js';

// The library's owner-only tenant tables travel with the tenant: settings (and their history),
// flag overrides (plugin enablement included) and their change log, the brand with its versions
// and logos. Restored as a new tenant, the copy has them; the original and the other tenant keep theirs.

const PORTABLE = [
  'tenant_settings_heads',
  'tenant_settings',
  'tenant_settings_history',
  'tenant_flags',
  'flag_changes',
  'tenant_brand_logos',
  'tenant_brands',
  'tenant_brand_history',
];

let f: ExportFixture;
let dir: string;
let acme: string;
let globex: string;
let settings: SettingsAdmin<typeof settingsDefinition extends SettingsDefinition<infer S> ? S : never>;
let flags: FlagsAdmin;
let brands: BrandAdmin;
let plugins: PluginAdmin;
const who = { actor: 'staff:test', reason: 'export test' };
const logo1 = solidPng(8, 8, [200, 0, 0]);
const logo2 = solidPng(4, 4, [0, 0, 200]);

/** Every portable row of a tenant (ids and times left out), table by table. */
async function libraryRows(tenantId: string): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const table of PORTABLE) {
    const { rows } = await f.db.owner.query(
      `select to_jsonb(t) - 'tenant_id' - 'id' as r from tenantry_private.${table} t where tenant_id = $1`,
      [tenantId],
    );
    out[table] = rows.map((x: { r: unknown }) => JSON.stringify(x.r)).sort();
  }
  return out;
}

beforeAll(async () => {
  f = await exportFixture();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-export-lib-'));
  acme = await seedTenant(f, 'acme', 3, 1);
  globex = await seedTenant(f, 'globex', 2, 1);
  settings = new SettingsAdmin({ definition: settingsDefinition, db: f.db.owner });
  flags = new FlagsAdmin({ definition: defineFlags({ 'new-editor': { off: false } }), db: f.db.owner });
  brands = new BrandAdmin({ db: f.db.owner });
  plugins = new PluginAdmin({
    registry: definePlugins({ plugins: [definePlugin({ name: 'webhooks', version: '1.0.0' })] }),
    db: f.db.owner,
  });
  for (const [tenant, n] of [
    [acme, 1],
    [globex, 2],
  ] as const) {
    await settings.set(tenant, 'maxUploadMb', 40 + n, who);
    await settings.set(tenant, 'theme', 'dark', who);
    await flags.override(tenant, 'new-editor', true, who);
    await plugins.enable(tenant, 'webhooks', who);
    await brands.set(tenant, { displayName: `Brand ${n}`, logo: logo1 }, who);
    await brands.set(tenant, { displayName: `Brand ${n} v2`, logo: logo2 }, who);
  }
});
afterAll(async () => {
  await f?.end();
  await rm(dir, { recursive: true, force: true });
});

describe('export and import carry the tenant settings, flags, plugin enablement and brand', () => {
  it('exports them as library tables of the manifest', async () => {
    const out = path.join(dir, 'acme.tenant');
    const { manifest } = await exportTenant({ catalog: f.db.owner, placements: f.placements, tenant: 'acme', out });
    expect(manifest.libraryTables.map((t) => t.name)).toEqual(PORTABLE);
    const rows = Object.fromEntries(manifest.libraryTables.map((t) => [t.name, t.rows]));
    expect(rows).toMatchObject({
      tenant_settings: 2,
      tenant_settings_heads: 1,
      tenant_settings_history: 2,
      tenant_flags: 2,
      flag_changes: 2,
      tenant_brands: 1,
      tenant_brand_history: 2,
      tenant_brand_logos: 2,
    });
    // flag_changes' deployment-wide id does not travel
    expect(manifest.libraryTables.find((t) => t.name === 'flag_changes')!.columns.map((c) => c.name)).not.toContain(
      'id',
    );
  });

  it('imported as a new tenant, the copy has them; acme and globex keep theirs, unchanged', async () => {
    const before = { acme: await libraryRows(acme), globex: await libraryRows(globex) };
    const result = await importTenant({
      file: path.join(dir, 'acme.tenant'),
      catalog: f.db.owner,
      placements: f.placements,
      as: 'acme-copy',
    });
    const copy = result.tenant.id;
    expect(copy).not.toBe(acme);
    // the same rows under the new tenant id
    expect(await libraryRows(copy)).toEqual(before.acme);
    expect(await libraryRows(acme)).toEqual(before.acme);
    expect(await libraryRows(globex)).toEqual(before.globex);
    // read through the features' own APIs
    expect((await settings.resolve(copy)).values).toMatchObject({ maxUploadMb: 41, theme: 'dark' });
    expect((await flags.list(copy)).find((x) => x.flag === 'new-editor')).toMatchObject({ value: true });
    expect((await plugins.list(copy))[0]).toMatchObject({ plugin: 'webhooks', enabled: true, source: 'override' });
    const brand = await brands.get(copy);
    expect(brand).toMatchObject({ source: 'tenant', version: 2 });
    expect(brand.brand.displayName).toBe('Brand 1 v2');
    expect((await brands.history(copy)).map((h) => h.version).sort()).toEqual([1, 2]);
    // version 1 can still be rolled back to: its logo's bytes came along
    const back = await brands.rollback(copy, 1, who);
    expect(back.brand.displayName).toBe('Brand 1');
    expect(back.brand.logo).toMatchObject({ width: 8, height: 8 });
    // and the original did not move
    expect((await brands.get(acme)).brand.displayName).toBe('Brand 1 v2');
    expect(await libraryRows(globex)).toEqual(before.globex);
  });

  it('an archive cut inside its library tables is ARCHIVE_TRUNCATED, and nothing is visible', async () => {
    const out = path.join(dir, 'acme.tenant');
    const { manifest } = await exportTenant({ catalog: f.db.owner, placements: f.placements, tenant: 'acme', out });
    const cut = path.join(dir, 'cut.tenant');
    const whole = await readFile(out);
    // inside the brand logos' entry: after every data table, before the end
    const logos = manifest.libraryTables.find((t) => t.name === 'tenant_brand_logos')!;
    const at = whole.indexOf(Buffer.from(logos.file)) + 512 + 10;
    await writeFile(cut, whole.subarray(0, at));
    await expect(
      importTenant({ file: cut, catalog: f.db.owner, placements: f.placements, as: 'acme-cut' }),
    ).rejects.toMatchObject({ code: 'ARCHIVE_TRUNCATED' });
    expect((await f.db.owner.query(`select from tenantry.tenants where slug = 'acme-cut'`)).rowCount).toBe(0);
  });

  it('an archive cut at any point is ARCHIVE_TRUNCATED at once (it used to wait forever for a cut entry)', async () => {
    const whole = await readFile(path.join(dir, 'acme.tenant'));
    for (let at = 0; at < whole.length; at += 700) {
      const cut = path.join(dir, 'cut-anywhere.tenant');
      await writeFile(cut, whole.subarray(0, at));
      await expect(
        importTenant({ file: cut, catalog: f.db.owner, placements: f.placements, as: 'acme-cut-anywhere' }),
        `cut at ${at}`,
      ).rejects.toMatchObject({ code: 'ARCHIVE_TRUNCATED' });
    }
    expect((await f.db.owner.query(`select from tenantry.tenants where slug = 'acme-cut-anywhere'`)).rowCount).toBe(0);
  });

  it('a replace restores them over the tenant itself', async () => {
    const out = path.join(dir, 'globex.tenant');
    await exportTenant({ catalog: f.db.owner, placements: f.placements, tenant: 'globex', out });
    const saved = await libraryRows(globex);
    const acmeRows = await libraryRows(acme);
    await settings.set(globex, 'maxUploadMb', 99, who);
    await plugins.disable(globex, 'webhooks', who);
    await brands.reset(globex, who);
    await f.db.owner.query(`update tenantry.tenants set status = 'suspended', suspended_at = now() where id = $1`, [
      globex,
    ]);
    await importTenant({ file: out, catalog: f.db.owner, placements: f.placements, replace: true });
    expect(await libraryRows(globex)).toEqual(saved);
    expect((await plugins.list(globex))[0]).toMatchObject({ enabled: true });
    expect(await libraryRows(acme)).toEqual(acmeRows);
  });
});
