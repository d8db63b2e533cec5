/**
 * Per-tenant branding (docs/branding.md): a brand is validated as a whole (text rules, WCAG AA
 * contrast, the logo by its content), versioned and audited; each instance serves the current
 * tenant's brand from a per-tenant cache.
 *
 *   npx tsx examples/branding/brand.ts
 */
import { deflateSync, crc32 } from 'node:zlib';
import { runAs, TenantCatalog } from '../../src/index.js';
import { BrandAdmin, contrastRatio, TenantBrands } from '../../src/branding/index.js';
import { openExampleDatabase } from '../identity/example-database.js';

/** A 2×2 red PNG, made here so the example needs no file. */
function redPng(): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(8 + body.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body) >>> 0, 4 + body.length);
    return out;
  };
  const ihdr = Buffer.from([0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0]);
  const row = Buffer.from([0, 200, 0, 0, 200, 0, 0]);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.concat([row, row]))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const refused = async (what: string, fn: () => Promise<unknown>) => {
  try {
    await fn();
    console.log(`${what} → accepted`);
  } catch (error) {
    const e = error as { code: string; details: { field?: string } };
    console.log(`${what} → ${e.code} (${e.details.field})`);
  }
};

const db = await openExampleDatabase();
try {
  const catalog = new TenantCatalog(db.owner);
  const acme = await catalog.create({ slug: 'acme', name: 'Acme' });
  const globex = await catalog.create({ slug: 'globex', name: 'Globex' });
  const admin = new BrandAdmin({ db: db.owner });
  // each instance: a per-tenant cache (give it the settings feed to hear changes at once)
  const brands = new TenantBrands({ db: db.owner });
  const who = { actor: 'staff:ann', reason: 'onboarding' };

  console.log(`white on #767676: ${contrastRatio('#ffffff', '#767676')}:1`);
  const before = await admin.get(acme.id);
  console.log(`acme before: ${before.brand.displayName} (${before.source})`);
  const saved = await admin.set(
    acme.id,
    { displayName: 'Acme Rockets', colors: { primary: '#b00020' }, emailSenderName: 'Acme Support', logo: redPng() },
    who,
  );
  console.log(
    `acme saved: change ${saved.version}, logo ${saved.brand.logo?.contentType} ${saved.brand.logo?.width}×${saved.brand.logo?.height}`,
  );
  await refused('light grey text', () => admin.set(acme.id, { colors: { text: '#aaaaaa' } }, who));
  await refused('sender with CR/LF', () => admin.set(acme.id, { emailSenderName: 'Acme\r\nBcc: all@x.test' }, who));
  await refused('an SVG logo', () => admin.set(acme.id, { logo: Buffer.from('<svg onload="alert(1)"/>') }, who));
  console.log(`acme now: ${(await runAs(acme.id, () => brands.get())).brand.displayName}`);
  console.log(
    `globex: ${(await runAs(globex.id, () => brands.get())).brand.displayName}, logo ${String((await runAs(globex.id, () => brands.logo())) ?? 'none')}`,
  );
  const back = await admin.rollback(acme.id, 0, { actor: 'staff:ann', reason: 'customer left the beta' });
  console.log(`rolled back: change ${back.version}, source ${back.source}`);
  console.log(`history: ${(await admin.history(acme.id)).map((h) => `${h.version} ${h.action}`).join(', ')}`);
} finally {
  await db.close();
}
