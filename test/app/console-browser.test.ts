import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantTiers } from '../../app/tiers/tenant-tiers.js';
import { createAppFixture, PASSWORD, type AppFixture } from './support/app-fixture.js';

/**
 * The operator console in a real browser: Debian's chromium driven by playwright-core. CI installs
 * chromium (.ci/run); where it is absent this file is skipped with that reason.
 * Playwright launches it with a fresh temporary profile (user data dir) each time.
 * `CONSOLE_SCREENSHOTS=docs/console` writes the docs' screenshots.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
if (!present) console.warn(`console-browser.test.ts skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`);

let f: AppFixture;
let browser: Browser;
let tiers: TenantTiers | undefined;
let base: string;

beforeAll(async () => {
  if (!present) return;
  f = await createAppFixture({
    console: {
      moves: (db) => {
        tiers = new TenantTiers({
          clusters: { home: { ownerUrl: db.ownerUrl, appUrl: db.appUrl } },
          install: { appRole: db.appRole, ownerRole: db.ownerRole, contextSecret: db.contextSecret },
        });
        return tiers;
      },
    },
  });
  await f.catalog.create({ slug: 'delta', name: 'Delta' });
  await f.app.listen({ port: 0, host: '127.0.0.1' });
  const address = f.app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  base = `http://127.0.0.1:${address.port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    timeout: 30_000,
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await tiers?.end();
  await f?.close();
});

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  return page;
}

async function shot(page: Page, name: string): Promise<void> {
  const folder = process.env.CONSOLE_SCREENSHOTS;
  if (folder) await page.screenshot({ path: join(folder, `${name}.png`) });
}

async function signIn(page: Page, email: string): Promise<void> {
  await page.goto(`${base}/console`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

describe.skipIf(!present)('the operator console in Chromium', () => {
  it('staff sign in, find a tenant, open it, suspend and resume it with a reason', async () => {
    const page = await newPage();
    await signIn(page, f.staff.email);
    await expect.poll(() => page.getByRole('heading', { name: 'Tenants' }).count()).toBe(1);
    await expect.poll(() => page.getByRole('link', { name: 'alpha' }).count()).toBe(1);
    await shot(page, 'tenants');
    await page.getByLabel('Search').fill('brav');
    await expect.poll(() => page.getByRole('link', { name: 'alpha' }).count()).toBe(0);
    await page.getByRole('link', { name: 'bravo' }).click();
    await expect.poll(() => page.getByRole('heading', { name: /Bravo/ }).count()).toBe(1);
    expect(page.url()).toBe(`${base}/console/tenants/bravo`);
    // keyboard only: the reason field, then the Suspend button
    await page.getByLabel(/Reason \(recorded/).focus();
    await page.keyboard.type('browser test: suspend for review');
    await page.getByRole('button', { name: 'Suspend' }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Suspend: done');
    await expect.poll(() => page.getByRole('button', { name: 'Resume' }).count()).toBe(1);
    const { rows } = await f.db.admin.query('select status from tenantry.tenants where id = $1', [f.b.id]);
    expect(rows[0].status).toBe('suspended');
    await expect.poll(() => page.getByRole('cell', { name: /browser test: suspend for review/ }).count()).toBe(1);
    await shot(page, 'tenant');
    await page.getByLabel(/Reason \(recorded/).fill('browser test: resume after review');
    await page.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => page.getByRole('button', { name: 'Suspend' }).count()).toBe(1);
    const after = await f.db.admin.query('select status from tenantry.tenants where id = $1', [f.b.id]);
    expect(after.rows[0].status).toBe('active');
    // the session cookie is invisible to the page's scripts
    expect(await page.evaluate('document.cookie')).toBe('');
    await page.context().close();
  });

  it('staff start a move and watch it to the end', async () => {
    const page = await newPage();
    await signIn(page, f.staff.email);
    await page.getByRole('link', { name: 'delta' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Moves' }).count()).toBe(1);
    await page.getByLabel('Move to tier').selectOption('schema');
    await page.getByLabel('Reason for the move').fill('browser test: own schema for delta');
    await page.getByRole('button', { name: 'Start move' }).click();
    await expect
      .poll(() => page.locator('.step').first().textContent(), { timeout: 60_000, interval: 500 })
      .toBe('done');
    // the page reloads the placement when the move ends
    await expect.poll(() => page.getByText('t_delta').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    await shot(page, 'move');
    await page.context().close();
  }, 120_000);

  it("a tenant's owner cannot sign in to the console", async () => {
    const page = await newPage();
    await signIn(page, f.users.alice.email);
    await expect.poll(() => page.getByRole('alert').first().textContent()).toContain('not a staff account');
    expect(await page.getByRole('heading', { name: 'Tenants' }).count()).toBe(0);
    const api = await page.request.get(`${base}/console/api/tenants`);
    expect(api.status()).toBe(401);
    await page.context().close();
  });
});
