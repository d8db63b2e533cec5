import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runAs, TenantCatalog } from '../../src/index.js';
import { SettingsFeed } from '../../src/settings/index.js';
import {
  BrandAdmin,
  contrastRatio,
  DEFAULT_BRAND_COLORS,
  inspectLogo,
  parseBrandInput,
  TenantBrands,
} from '../../src/branding/index.js';
import { LIBRARY_TENANT_TABLES } from '../../src/lifecycle/purge/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { within } from '../settings/support.js';
import { jpegHeader, solidPng, webpHeader } from './images.js';

async function refusal(fn: () => unknown): Promise<{ code?: string; field?: unknown; message: string } | undefined> {
  try {
    await fn();
    return undefined;
  } catch (error) {
    const e = error as { code?: string; details?: { field?: unknown }; message: string };
    return { code: e.code, field: e.details?.field, message: e.message };
  }
}

describe('logos are checked by their content', () => {
  it('accepts PNG, JPEG and WebP with their dimensions', () => {
    expect(inspectLogo(solidPng(40, 20, [1, 2, 3]))).toMatchObject({ contentType: 'image/png', width: 40, height: 20 });
    expect(inspectLogo(jpegHeader(300, 100))).toMatchObject({ contentType: 'image/jpeg', width: 300, height: 100 });
    expect(inspectLogo(webpHeader(64, 32))).toMatchObject({ contentType: 'image/webp', width: 64, height: 32 });
  });

  it('refuses SVG, HTML, unknown bytes, a lying declared type, too large, too many pixels', async () => {
    const svg = Buffer.from(
      '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    );
    expect((await refusal(() => inspectLogo(svg)))?.message).toMatch(/SVG is not accepted/);
    for (const bad of [Buffer.from('<html><script>x</script>'), Buffer.from('GIF89a....'), Buffer.alloc(0)])
      expect((await refusal(() => inspectLogo(bad)))?.code).toBe('BRAND_LOGO_INVALID');
    expect((await refusal(() => inspectLogo(solidPng(4, 4, [0, 0, 0]), { declared: 'image/jpeg' })))?.message).toMatch(
      /not the declared type/,
    );
    expect(
      (await refusal(() => inspectLogo(Buffer.concat([solidPng(4, 4, [0, 0, 0]), Buffer.alloc(300_000)]))))?.message,
    ).toMatch(/larger than 262144 bytes/);
    expect((await refusal(() => inspectLogo(solidPng(3000, 1, [0, 0, 0]))))?.message).toMatch(/at most 2048×2048/);
    expect((await refusal(() => inspectLogo(webpHeader(5000, 10))))?.code).toBe('BRAND_LOGO_INVALID');
  });
});

describe('a logo ends where its format says (no polyglots)', () => {
  it('refuses bytes after the end marker of each format, and a truncated image', async () => {
    const trailer = Buffer.from('<html><script>alert(1)</script></html>');
    for (const image of [solidPng(4, 4, [0, 0, 0]), jpegHeader(10, 10), webpHeader(10, 10)]) {
      expect(inspectLogo(image).size).toBe(image.length);
      const refused = await refusal(() => inspectLogo(Buffer.concat([image, trailer])));
      expect(refused?.code).toBe('BRAND_LOGO_INVALID');
      expect(refused?.message).toMatch(/does not end where its format says/);
      expect((await refusal(() => inspectLogo(image.subarray(0, image.length - 1))))?.code).toBe('BRAND_LOGO_INVALID');
    }
  });
});

describe('brand fields', () => {
  it('computes WCAG 2.x contrast (white on #767676 is the classic 4.54:1)', () => {
    expect(contrastRatio('#ffffff', '#767676')).toBe(4.54);
    expect(contrastRatio('#000000', '#ffffff')).toBe(21);
  });

  it('refuses header injection, controls, bidi overrides and unknown fields, naming the field', async () => {
    for (const bad of [
      'Acme\r\nBcc: victim@example.test',
      'Acme\nX',
      'A\u0000',
      'Acme "Support"',
      'Ceo <ceo@bank.test>',
      'support@bank.example',
      '=?utf-8?b?PGNlb0BiYW5rPg==?=',
      'x'.repeat(65),
    ])
      expect(await refusal(() => parseBrandInput({ emailSenderName: bad }))).toMatchObject({
        code: 'BRAND_INVALID',
        field: 'emailSenderName',
      });
    expect(await refusal(() => parseBrandInput({ displayName: 'evil\u202egnp.exe' }))).toMatchObject({
      field: 'displayName',
    });
    expect(await refusal(() => parseBrandInput({ displayName: '   ' }))).toMatchObject({ field: 'displayName' });
    expect(await refusal(() => parseBrandInput({ colors: { primary: 'red' } }))).toMatchObject({
      field: 'colors.primary',
    });
    expect(await refusal(() => parseBrandInput({ colors: { primary: '#12345678' } }))).toMatchObject({
      field: 'colors.primary',
    });
    expect(await refusal(() => parseBrandInput({ tenantId: 'x' }))).toMatchObject({ field: 'tenantId' });
    expect(parseBrandInput({ displayName: '  Café  ', colors: { text: '#ABCDEF' } })).toEqual({
      displayName: 'Café',
      colors: { text: '#abcdef' },
    });
  });
});

describe('BrandAdmin and TenantBrands on PostgreSQL', () => {
  let db: TestDatabase;
  let a: string;
  let b: string;
  let admin: BrandAdmin;
  const feeds: SettingsFeed[] = [];
  const pools: pg.Pool[] = [];
  const who = { actor: 'staff:test', reason: 'rebrand' };

  async function instance(): Promise<TenantBrands> {
    const pool = new pg.Pool({ connectionString: db.ownerUrl, max: 2 });
    pools.push(pool);
    const feed = new SettingsFeed({ connectionString: db.ownerUrl });
    feeds.push(feed);
    await feed.start();
    return new TenantBrands({ db: pool, feed });
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    const catalog = new TenantCatalog(db.owner);
    a = (await catalog.create({ slug: 'alpha', name: 'Alpha Inc' })).id;
    b = (await catalog.create({ slug: 'beta', name: 'Beta' })).id;
    admin = new BrandAdmin({ db: db.owner });
  });

  afterAll(async () => {
    await Promise.all(feeds.map((f) => f.close()));
    await Promise.all(pools.map((p) => p.end()));
    await db?.drop();
  });

  const rows = async (tenant: string) =>
    (
      await db.admin.query(
        `select (select count(*) from tenantry_private.tenant_brands where tenant_id = $1)::int as brands,
                (select count(*) from tenantry_private.tenant_brand_history where tenant_id = $1)::int as history,
                (select count(*) from tenantry_private.tenant_brand_logos where tenant_id = $1)::int as logos,
                (select count(*) from tenantry.audit_log where tenant_id = $1)::int as audit`,
        [tenant],
      )
    ).rows[0] as Record<string, number>;

  it('a tenant without a brand gets the default: its catalog name and the default colours', async () => {
    const snap = await admin.get(a);
    expect(snap).toMatchObject({ source: 'default', version: 0 });
    expect(snap.brand).toEqual({
      displayName: 'Alpha Inc',
      colors: DEFAULT_BRAND_COLORS,
      emailSenderName: 'Alpha Inc',
      logo: null,
    });
  });

  it('sets, versions, audits with the real actor, and serves from every instance within 1 s', async () => {
    const one = await instance();
    const two = await instance();
    expect((await runAs(a, () => one.get())).brand.displayName).toBe('Alpha Inc');
    expect((await runAs(a, () => two.get())).brand.displayName).toBe('Alpha Inc');
    const logo = solidPng(8, 8, [200, 0, 0]);
    const member = '6c0d8d4e-2b7e-4c55-9a53-0b2a1f6b8c01';
    const snap = await admin.set(
      a,
      { displayName: 'Alpha', colors: { primary: '#b00020' }, emailSenderName: 'Alpha Support', logo },
      { ...who, auditActor: { kind: 'user', id: member } },
    );
    expect(snap).toMatchObject({ source: 'tenant', version: 1 });
    expect(snap.brand.logo).toMatchObject({ contentType: 'image/png', width: 8, height: 8 });
    await within(1000, async () => (await runAs(a, () => one.get())).brand.displayName, 'Alpha');
    await within(1000, async () => (await runAs(a, () => two.get())).brand.displayName, 'Alpha');
    const image = await runAs(a, () => two.logo());
    expect(image?.contentType).toBe('image/png');
    expect(image?.bytes.equals(logo)).toBe(true);
    // beta: untouched, and its cache holds nothing of alpha's
    expect((await runAs(b, () => one.get())).brand.displayName).toBe('Beta');
    expect(await runAs(b, () => one.logo())).toBeUndefined();
    const { rows: audit } = await db.admin.query(
      `select actor_kind, actor_id, detail from tenantry.audit_log where tenant_id = $1 and action = 'brand.changed'`,
      [a],
    );
    expect(audit).toEqual([
      {
        actor_kind: 'user',
        actor_id: member,
        detail: {
          actor: 'staff:test',
          version: 1,
          action: 'set',
          fields: ['colors.primary', 'displayName', 'emailSenderName', 'logo'],
        },
      },
    ]);
    one.close();
    two.close();
  });

  it('a refused change (contrast, field, logo) names the field and changes nothing', async () => {
    const before = await rows(a);
    const current = await admin.get(a);
    const low = await refusal(() => admin.set(a, { colors: { text: '#999999' } }, who));
    expect(low).toMatchObject({ code: 'BRAND_INVALID', field: 'colors.text' });
    expect(low?.message).toMatch(/contrast of 2\.8\d:1, WCAG AA needs at least 4\.5:1/);
    expect(await refusal(() => admin.set(a, { colors: { onPrimary: '#c0c0c0' } }, who))).toMatchObject({
      field: 'colors.onPrimary',
    });
    expect(
      await refusal(() => admin.set(a, { colors: { primary: '#eeeeee', onPrimary: '#000000' } }, who)),
    ).toMatchObject({
      field: 'colors.primary',
    });
    expect(await refusal(() => admin.set(a, { emailSenderName: 'x\r\nBcc: y' }, who))).toMatchObject({
      field: 'emailSenderName',
    });
    expect(await refusal(() => admin.set(a, { logo: Buffer.from('<svg onload="alert(1)"/>') }, who))).toMatchObject({
      code: 'BRAND_LOGO_INVALID',
    });
    expect(await rows(a)).toEqual(before);
    expect(await admin.get(a)).toEqual(current);
  });

  it('history and rollback (itself a change); another tenant is unaffected', async () => {
    const beta = await rows(b);
    await admin.set(a, { displayName: 'Alpha Two', logo: null }, who);
    const history = await admin.history(a);
    expect(history.map((h) => [h.version, h.action])).toEqual([
      [2, 'set'],
      [1, 'set'],
    ]);
    expect(history[0]!.oldBrand?.displayName).toBe('Alpha');
    const back = await admin.rollback(a, 1, { actor: 'staff:test' });
    expect(back.version).toBe(3);
    expect(back.brand.displayName).toBe('Alpha');
    expect(back.brand.logo?.contentType).toBe('image/png');
    expect((await refusal(() => admin.rollback(a, 9, who)))?.code).toBe('BRAND_VERSION_NOT_FOUND');
    const reset = await admin.rollback(a, 0, who);
    expect(reset).toMatchObject({ source: 'default', version: 4 });
    expect(await rows(b)).toEqual(beta);
  });

  it('the purge knows the tables; the app role cannot read them', async () => {
    const tables = LIBRARY_TENANT_TABLES.map((t) => t.table);
    for (const t of ['tenant_brands', 'tenant_brand_history', 'tenant_brand_logos'])
      expect(tables).toContain(`tenantry_private.${t}`);
    const app = new pg.Client({ connectionString: db.appUrl });
    await app.connect();
    try {
      const refused = await app
        .query('select * from tenantry_private.tenant_brands')
        .catch((e: { code: string }) => e.code);
      expect(refused).toBe('42501');
    } finally {
      await app.end();
    }
  });
});
