import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrandAdmin } from '../../src/branding/index.js';
import { solidPng } from '../branding/images.js';
import { chromiumPresent, launchChromium, listenOnLoopback } from './support/browser.js';
import { createAppFixture, PASSWORD, type AppFixture } from './support/app-fixture.js';

/**
 * The console's branding preview in a real browser (chromium, playwright-core, a fresh profile):
 * staff open a tenant and see its brand in its own colours, its logo and the WCAG ratios; a
 * `<script>` display name is text. Skipped with the reason where chromium is absent.
 */
const present = chromiumPresent('console-branding-browser.test.ts');

let f: AppFixture;
let browser: Browser;
let base: string;

beforeAll(async () => {
  if (!present) return;
  f = await createAppFixture({ console: true });
  await new BrandAdmin({ db: f.db.owner }).set(
    f.a.id,
    {
      displayName: '<script>window.__owned=1</script>Alpha',
      colors: { primary: '#b00020' },
      logo: solidPng(12, 12, [176, 0, 32]),
    },
    { actor: 'test:setup' },
  );
  base = await listenOnLoopback(f.app);
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await f?.close();
});

describe.skipIf(!present)('console branding preview', () => {
  it("shows each tenant's brand, escaped, with its contrast ratios", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(`${base}/console`);
    await page.getByLabel('Email').fill(f.staff.email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('link', { name: 'alpha' }).count()).toBe(1);
    await page.getByRole('link', { name: 'alpha' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Branding' }).count()).toBe(1);
    expect(await page.getByTestId('brand-name').innerText()).toBe('<script>window.__owned=1</script>Alpha');
    expect(await page.evaluate('window.__owned')).toBeUndefined();
    expect(
      await page
        .getByTestId('brand-preview')
        .locator('button')
        .evaluate(
          (b) =>
            (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(b)
              .backgroundColor,
        ),
    ).toBe('rgb(176, 0, 32)');
    await expect
      .poll(() =>
        page
          .getByTestId('brand-preview')
          .locator('img')
          .evaluate((i) => (i as unknown as { naturalWidth: number }).naturalWidth),
      )
      .toBe(12);
    expect(await page.locator('section[aria-labelledby=branding-title]').innerText()).toMatch(
      /text on the background\s+\d+\.\d\d:1 \(AA ≥ 4\.5:1\)/,
    );

    // bravo: the default brand, nothing of alpha's
    await page.goto(`${base}/console/tenants/bravo`);
    await expect.poll(() => page.getByTestId('brand-name').count()).toBe(1);
    expect(await page.getByTestId('brand-name').innerText()).toBe('Bravo');
    const text = await page.locator('section[aria-labelledby=branding-title]').innerText();
    expect(text).toContain('Default brand');
    expect(text).not.toContain('Alpha');
    await context.close();
  });
});
