import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantTiers } from '../../app/tiers/tenant-tiers.js';
import { TenantPurger } from '../../src/lifecycle/index.js';
import { FlagsAdmin, SettingsAdmin } from '../../src/settings/index.js';
import { flags, settings } from '../../app/settings/definition.js';
import { chromiumPresent, launchChromium, listenOnLoopback, newPage as openPage, shot } from './support/browser.js';
import { createAppFixture, PASSWORD, type AppFixture } from './support/app-fixture.js';
import { outboxPurgeParticipant } from '../../app/identity/outbox-purge.js';

/**
 * The operator console in a real browser: Debian's chromium driven by playwright-core. CI installs
 * chromium (.ci/run); where it is absent this file is skipped with that reason.
 * Playwright launches it with a fresh temporary profile (user data dir) each time.
 * `CONSOLE_SCREENSHOTS=docs/console` writes the docs' screenshots.
 */
const present = chromiumPresent('console-browser.test.ts');

let f: AppFixture;
let browser: Browser;
let tiers: TenantTiers | undefined;
let purger: TenantPurger | undefined;
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
      purger: (db) =>
        (purger = new TenantPurger({
          catalog: db.owner,
          owners: { home: db.ownerUrl },
          participants: [outboxPurgeParticipant(db.owner)],
        })),
      settings: (db) => ({
        admin: new SettingsAdmin({ definition: settings, db: db.owner }),
        flags: new FlagsAdmin({ definition: flags, db: db.owner }),
      }),
    },
  });
  await f.catalog.create({ slug: 'delta', name: 'Delta' });
  base = await listenOnLoopback(f.app);
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await purger?.end();
  await tiers?.end();
  await f?.close();
});

const newPage = () => openPage(browser);

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
    await expect.poll(() => page.getByRole('status').first().textContent()).toContain('Suspend: done');
    await expect.poll(() => page.getByRole('button', { name: 'Resume' }).count()).toBe(1);
    const { rows } = await f.db.admin.query('select status from tenantry.tenants where id = $1', [f.b.id]);
    expect(rows[0].status).toBe('suspended');
    // in the console's own audit (and the status history) and in the tenant's log (with the action's prefix)
    await expect
      .poll(() => page.getByRole('cell', { name: 'browser test: suspend for review', exact: true }).count())
      .toBeGreaterThanOrEqual(1);
    await expect
      .poll(() => page.getByRole('cell', { name: 'console suspend: browser test: suspend for review' }).count())
      .toBe(1);
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

  it('staff change a setting (a bad value is refused naming the key) and act as the tenant, read-only', async () => {
    const page = await newPage();
    await signIn(page, f.staff.email);
    await page.getByLabel('Search').fill('alpha');
    await page.getByRole('link', { name: 'alpha' }).click();
    await expect
      .poll(() => page.getByRole('heading', { name: 'Settings and flags' }).count(), { timeout: 15_000 })
      .toBe(1);
    await page.getByLabel(/Reason for a settings or flag change/).fill('browser test: longer recordings');
    await page.getByLabel('Setting', { exact: true }).selectOption('maxRecordingMinutes');
    await page.getByLabel(/New value/).fill('5000');
    await page.getByRole('button', { name: 'Save setting' }).click();
    await expect
      .poll(() => page.locator('#settings-panel [role=alert]').textContent(), { timeout: 15_000 })
      .toContain('maxRecordingMinutes');
    const none = await f.db.admin.query('select 1 from tenantry_private.tenant_settings where tenant_id = $1', [
      f.a.id,
    ]);
    expect(none.rows).toEqual([]);
    await page.getByLabel(/New value/).fill('120');
    await page.getByRole('button', { name: 'Save setting' }).click();
    await expect
      .poll(() => page.locator('#settings-panel [role=status]').textContent(), { timeout: 15_000 })
      .toContain('saved');
    await expect.poll(() => page.getByRole('cell', { name: 'tenant override' }).count(), { timeout: 15_000 }).toBe(1);
    await expect
      .poll(() => page.getByRole('cell', { name: 'browser test: longer recordings' }).count(), { timeout: 15_000 })
      .toBe(1);
    const { rows } = await f.db.admin.query<{ value: unknown }>(
      `select value from tenantry_private.tenant_settings where tenant_id = $1 and key = 'maxRecordingMinutes'`,
      [f.a.id],
    );
    expect(rows[0]?.value).toBe(120);
    const folder = process.env.CONSOLE_SCREENSHOTS;
    if (folder) await page.locator('#settings-panel').screenshot({ path: join(folder, 'settings.png') });
    // act as alpha: the banner shows, the tenant's members are seen, stopping removes the banner
    await page.getByLabel('Reason to act as the tenant').fill('browser test: look at the members');
    await page.getByRole('button', { name: 'Act as (read-only)' }).click();
    await expect
      .poll(() => page.getByRole('region', { name: 'Acting as a tenant' }).count(), { timeout: 15_000 })
      .toBe(1);
    await expect
      .poll(() => page.locator('.act-as-view').textContent(), { timeout: 15_000 })
      .toContain(f.users.alice.id);
    await page.evaluate('window.scrollTo(0, 0)'); // the banner is at the top
    await shot(page, 'act-as');
    await page.getByRole('button', { name: 'Stop acting as alpha' }).click();
    await expect
      .poll(() => page.getByRole('region', { name: 'Acting as a tenant' }).count(), { timeout: 15_000 })
      .toBe(0);
    const open = await f.db.admin.query(
      'select 1 from tenantry_private.staff_grants where tenant_id = $1 and ended_at is null and expires_at > now()',
      [f.a.id],
    );
    expect(open.rows).toEqual([]);
    await page.context().close();
  }, 60_000);

  it('staff soft-delete and purge a throwaway tenant, typing its slug', async () => {
    const throwaway = await f.catalog.create({ slug: 'throwaway', name: 'Throwaway' });
    const page = await newPage();
    await signIn(page, f.staff.email);
    await page.getByLabel('Search').fill('throwaway');
    await page.getByRole('link', { name: 'throwaway' }).click();
    await expect.poll(() => page.getByRole('heading', { name: /Throwaway/ }).count(), { timeout: 15_000 }).toBe(1);
    await page.getByLabel(/Reason \(recorded/).fill('browser test: throwaway tenant');
    await page.getByLabel(/To soft-delete, type the slug/).fill('throwaway');
    await page.getByRole('button', { name: 'Soft-delete' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Purge' }).count(), { timeout: 15_000 }).toBe(1);
    await page.getByLabel(/Reason for the purge/).fill('browser test: purge the throwaway');
    await page.getByLabel(/Type the slug/).fill('throwaway');
    await page.getByLabel(/before the retention period/).check();
    await page.getByRole('button', { name: 'Purge', exact: true }).click();
    await expect
      .poll(() => page.getByRole('heading', { name: 'Purged' }).count(), { timeout: 60_000, interval: 500 })
      .toBe(1);
    const { rows } = await f.db.admin.query('select 1 from tenantry.tenants where id = $1', [throwaway.id]);
    expect(rows).toEqual([]);
    await page.context().close();
  }, 90_000);

  it("a tenant's admin and a tenant's member cannot sign in to the console either", async () => {
    for (const user of [f.users.sam, f.users.bob]) {
      const page = await newPage();
      await signIn(page, user.email);
      await expect
        .poll(() => page.getByRole('alert').first().textContent(), { timeout: 15_000 })
        .toContain('not a staff account');
      expect(await page.getByRole('heading', { name: 'Tenants' }).count()).toBe(0);
      await page.context().close();
    }
  });

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
