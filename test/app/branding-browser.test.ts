import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrandAdmin, TenantBrands } from '../../src/branding/index.js';
import { SettingsFeed } from '../../src/settings/index.js';
import { solidPng } from '../branding/images.js';
import { CHROMIUM, CHROMIUM_ARGS, chromiumPresent, listenOnLoopback } from './support/browser.js';
import { createAppFixture, type AppFixture } from './support/app-fixture.js';

/**
 * Two tenants' branded sign-in pages in a real browser (Debian's chromium driven by
 * playwright-core, a fresh user data dir): each page shows its own name, colour and logo, never
 * the other's, and a display name holding `<script>` is shown as text, never run. Skipped with
 * the reason where chromium is absent.
 */
const present = chromiumPresent('branding-browser.test.ts');

let f: AppFixture;
let context: BrowserContext;
let port: number;
let profile: string;
let feed: SettingsFeed | undefined;
const RED: [number, number, number] = [176, 0, 32];
const GREEN: [number, number, number] = [0, 100, 0];

beforeAll(async () => {
  if (!present) return;
  f = await createAppFixture({
    host: { baseDomain: 'localhost', customDomains: true },
    branding: (db) => {
      // the server hears brand changes like npm start does (LISTEN tenantry_settings)
      feed = new SettingsFeed({ connectionString: db.ownerUrl });
      return { admin: new BrandAdmin({ db: db.owner }), brands: new TenantBrands({ db: db.owner, feed }) };
    },
  });
  await feed!.start();
  const admin = new BrandAdmin({ db: f.db.owner });
  const who = { actor: 'test:setup' };
  await admin.set(
    f.a.id,
    {
      displayName: 'Alpha <script>window.__owned = 1</script>Works',
      colors: { primary: '#b00020' },
      logo: solidPng(24, 24, RED),
    },
    who,
  );
  await admin.set(
    f.b.id,
    { displayName: 'Bravo Gardens', colors: { primary: '#006400' }, logo: solidPng(24, 24, GREEN) },
    who,
  );
  port = Number(new URL(await listenOnLoopback(f.app)).port);
  profile = mkdtempSync(join(tmpdir(), 'tenantry-branding-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: [
      ...CHROMIUM_ARGS,
      // *.localhost is loopback in Chromium; pin it to the IPv4 address the server listens on
      '--host-resolver-rules=MAP *.localhost 127.0.0.1',
    ],
    timeout: 30_000,
  });
}, 120_000);

afterAll(async () => {
  await context?.close();
  await feed?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await f?.close();
});

/** The page of `slug`, what it shows, and the logo's centre pixel as the browser decoded it. */
async function visit(slug: string) {
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const response = await page.goto(`http://${slug}.localhost:${port}/sign-in`);
  expect(response?.status()).toBe(200);
  const logo = page.locator('img[data-brand=logo]');
  await expect
    .poll(() =>
      page.evaluate(
        `(() => { const i = document.querySelector('img[data-brand=logo]'); return i.complete && i.naturalWidth; })()`,
      ),
    )
    .toBe(24);
  const seen = {
    title: await page.title(),
    heading: await page.locator('h1[data-brand=name]').innerText(),
    button: await page.getByRole('button').innerText(),
    buttonColour: await page.evaluate(`getComputedStyle(document.querySelector('button')).backgroundColor`),
    logoAlt: await logo.getAttribute('alt'),
    // the logo as decoded: drawn on a canvas, its centre pixel read back
    logoPixel: await page.evaluate(`(() => {
      const img = document.querySelector('img[data-brand=logo]');
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const ctx = canvas.getContext('2d');
      ctx.drawImage(img, 0, 0);
      return [...ctx.getImageData(12, 12, 1, 1).data.slice(0, 3)];
    })()`),
    owned: await page.evaluate('window.__owned'),
    text: await page.locator('body').innerText(),
    errors,
  };
  await page.close();
  return seen;
}

describe.skipIf(!present)('branded sign-in pages in Chromium', () => {
  it("each tenant's page shows its own brand and never the other's", async () => {
    const alpha = await visit(f.a.slug);
    const bravo = await visit(f.b.slug);

    expect(alpha.heading).toBe('Alpha <script>window.__owned = 1</script>Works');
    expect(alpha.title).toBe('Sign in · Alpha <script>window.__owned = 1</script>Works');
    expect(alpha.button).toBe('Sign in to Alpha <script>window.__owned = 1</script>Works');
    expect(alpha.buttonColour).toBe('rgb(176, 0, 32)');
    expect(alpha.logoPixel).toEqual(RED);
    expect(alpha.owned).toBeUndefined(); // shown as text, never run
    expect(alpha.errors).toEqual([]);
    expect(alpha.text).not.toContain('Bravo');

    expect(bravo.heading).toBe('Bravo Gardens');
    expect(bravo.buttonColour).toBe('rgb(0, 100, 0)');
    expect(bravo.logoPixel).toEqual(GREEN);
    expect(bravo.logoAlt).toBe('Bravo Gardens');
    expect(bravo.text).not.toContain('Alpha');
    expect(bravo.errors).toEqual([]);
  });

  it('a brand change shows on the next load, on that tenant only', async () => {
    await new BrandAdmin({ db: f.db.owner }).set(f.b.id, { displayName: 'Bravo Renamed' }, { actor: 'test:change' });
    // the server's cached brand is dropped by the doorbell at commit: the next loads show it
    await expect
      .poll(async () => (await visit(f.b.slug)).heading, { timeout: 5_000, interval: 200 })
      .toBe('Bravo Renamed');
    const alpha = await visit(f.a.slug);
    expect(alpha.heading).toBe('Alpha <script>window.__owned = 1</script>Works');
    expect(alpha.text).not.toContain('Bravo');
  }, 30_000);
});
