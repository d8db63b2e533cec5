import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runAs, TenantCatalog } from '../../src/index.js';
import { SettingsAdmin, SettingsFeed, TenantSettings } from '../../src/settings/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { count, definition, within } from './support.js';

async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn();
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

describe('typed, versioned settings across two instances', () => {
  let db: TestDatabase;
  let a: string;
  let b: string;
  let admin: SettingsAdmin<typeof definition.schema>;
  const feeds: SettingsFeed[] = [];
  const pools: pg.Pool[] = [];
  let one: TenantSettings<typeof definition.schema>;
  let two: TenantSettings<typeof definition.schema>;
  const who = { actor: 'staff:test', reason: 'test' };

  // one server instance: its own owner pool, feed (LISTEN connection) and settings cache
  async function instance() {
    const pool = new pg.Pool({ connectionString: db.ownerUrl, max: 2 });
    pools.push(pool);
    const feed = new SettingsFeed({ connectionString: db.ownerUrl });
    feeds.push(feed);
    await feed.start();
    return new TenantSettings({ definition, db: pool, feed });
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    const catalog = new TenantCatalog(db.owner);
    a = (await catalog.create({ slug: 'alpha', name: 'Alpha', settings: { plan: 'pro' } })).id;
    b = (await catalog.create({ slug: 'beta', name: 'Beta' })).id;
    admin = new SettingsAdmin({ definition, db: db.owner });
    one = await instance();
    two = await instance();
  });

  afterAll(async () => {
    await Promise.all(feeds.map((f) => f.close()));
    await Promise.all(pools.map((p) => p.end()));
    await db?.drop();
  });

  it('resolves library → app → plan → tenant, typed, and says where each value came from', async () => {
    await admin.set(a, 'theme', 'dark', who);
    const snap = await runAs(a, () => one.explain());
    expect(snap.values).toEqual({ maxUploadMb: 100, theme: 'dark', greeting: 'Welcome', seats: 50, minSeats: 1 });
    expect(snap.sources).toMatchObject({ maxUploadMb: 'plan', theme: 'tenant', greeting: 'app', minSeats: 'library' });
    const upload: number = await runAs(b, () => one.get('maxUploadMb'));
    expect(upload).toBe(10);
    // the placement policy's `plan` is still in the catalog's settings
    expect((await new TenantCatalog(db.owner).get(a)).settings.plan).toBe('pro');
  });

  it('every instance sees a change within 1 s (LISTEN/NOTIFY)', async () => {
    expect(await runAs(a, () => one.get('greeting'))).toBe('Welcome');
    expect(await runAs(a, () => two.get('greeting'))).toBe('Welcome');
    await admin.set(a, 'greeting', 'Hi from ops', who);
    const t1 = await within(1000, () => runAs(a, () => one.get('greeting')), 'Hi from ops');
    const t2 = await within(1000, () => runAs(a, () => two.get('greeting')), 'Hi from ops');
    expect(Math.max(t1, t2)).toBeLessThan(1000);
    // and the synchronous read sees it once reloaded
    await runAs(a, () => two.all());
    expect(runAs(a, () => two.peek('greeting'))).toBe('Hi from ops');
  });

  it('a plan change reaches every instance and keeps the catalog plan', async () => {
    expect(await runAs(b, () => one.get('seats'))).toBe(5);
    await admin.setPlan(b, 'pro', who);
    await within(1000, () => runAs(b, () => one.get('seats')), 50);
    await within(1000, () => runAs(b, () => two.get('seats')), 50);
    expect((await new TenantCatalog(db.owner).get(b)).settings.plan).toBe('pro');
    await admin.setPlan(b, 'free', who);
    await within(1000, () => runAs(b, () => two.get('seats')), 5);
  });

  it('a refused value names the key and changes nothing (overrides, history, audit, counter, cache)', async () => {
    const before = await admin.resolve(a);
    const history = await count(
      db.owner,
      'select 1 from tenantry_private.tenant_settings_history where tenant_id = $1',
      [a],
    );
    const audit = await count(db.owner, 'select 1 from tenantry.audit_log where tenant_id = $1', [a]);
    const error = await admin.set(a, 'maxUploadMb', 'lots', who).catch((e: unknown) => e as Error & { code: string });
    expect(error).toMatchObject({ code: 'SETTING_INVALID', key: 'maxUploadMb' });
    expect((error as Error).message).toContain('maxUploadMb');
    expect((error as Error).message).not.toContain('lots');
    expect(await codeOf(() => admin.set(a, 'maxUploadMb', 5000, who))).toBe('SETTING_INVALID');
    // valid alone, refused by the schema's refinement across keys (minSeats > seats)
    const cross = await admin.set(a, 'minSeats', 60, who).catch((e: unknown) => e as { code: string; key: string });
    expect(cross).toMatchObject({ code: 'SETTING_INVALID', key: 'minSeats' });
    // text jsonb cannot hold: refused here, naming the key, before anything reaches PostgreSQL
    expect(await codeOf(() => admin.set(a, 'greeting', 'hi\u0000there', who))).toBe('SETTING_INVALID');
    expect(await codeOf(() => admin.set(a, 'greeting', 'hi\ud800', who))).toBe('SETTING_INVALID');
    expect(await codeOf(() => admin.set(a, 'greeting', 'hi\udc00x', who))).toBe('SETTING_INVALID');
    expect(await codeOf(() => admin.set(a, 'noSuchKey', 1, who))).toBe('SETTING_UNKNOWN');
    expect(await codeOf(() => admin.set(a, 'constructor', 1, who))).toBe('SETTING_UNKNOWN');
    expect(await codeOf(() => admin.set(a, 'theme', 'dark', { actor: '' }))).toBe('INVALID_ARGUMENT');
    expect(await admin.resolve(a)).toEqual(before);
    expect(
      await count(db.owner, 'select 1 from tenantry_private.tenant_settings_history where tenant_id = $1', [a]),
    ).toBe(history);
    expect(await count(db.owner, 'select 1 from tenantry.audit_log where tenant_id = $1', [a])).toBe(audit);
  });

  it('history says who, when, why, old and new; rollback restores a version as a new change', async () => {
    const c = (await new TenantCatalog(db.owner).create({ slug: 'gamma', name: 'Gamma' })).id;
    const v1 = await admin.set(c, 'theme', 'dark', { actor: 'staff:ann', reason: 'asked by customer' });
    const v2 = await admin.set(c, 'greeting', 'Yo', { actor: 'staff:bob' });
    const v3 = await admin.set(c, 'theme', 'light', { actor: 'staff:bob' });
    expect([v1.version, v2.version, v3.version]).toEqual([1, 2, 3]);
    const history = await admin.history(c);
    expect(history[0]).toMatchObject({ version: 3, key: 'theme', action: 'set', oldValue: 'dark', newValue: 'light' });
    expect(history[2]).toMatchObject({
      version: 1,
      actor: 'staff:ann',
      reason: 'asked by customer',
      oldValue: null,
      newValue: 'dark',
    });
    expect(history[2]!.changedAt).toBeInstanceOf(Date);

    const back = await admin.rollback(c, 1, { actor: 'staff:ann', reason: 'undo' });
    expect(back).toEqual({ version: 4, keys: ['greeting', 'theme'] });
    expect((await admin.resolve(c)).values).toMatchObject({ theme: 'dark', greeting: 'Welcome' });
    expect((await admin.history(c, { limit: 2 })).map((h) => [h.version, h.key, h.action])).toEqual([
      [4, 'greeting', 'rollback'],
      [4, 'theme', 'rollback'],
    ]);
    // the rollback is itself reversible
    await admin.rollback(c, 3, who);
    expect((await admin.resolve(c)).values).toMatchObject({ theme: 'light', greeting: 'Yo' });
    await admin.rollback(c, 0, who);
    expect((await admin.resolve(c)).sources).not.toHaveProperty('theme', 'tenant');
    expect(await codeOf(() => admin.rollback(c, 99, who))).toBe('SETTINGS_VERSION_NOT_FOUND');
    expect(await admin.unset(c, 'theme', who)).toEqual({ version: null, keys: [] });
    // audited in the tenant's own log, without the values
    const { rows } = await db.owner.query<{ action: string; detail: Record<string, unknown> }>(
      `select action, detail from tenantry.audit_log where tenant_id = $1 and action = 'settings.changed' order by id`,
      [c],
    );
    expect(rows.length).toBe(6);
    expect(rows[0]!.detail).toEqual({ actor: 'staff:ann', version: 1, keys: ['theme'] });
  });

  it("tenant B's context never reads A's settings; the app role cannot read the tables at all", async () => {
    await admin.set(a, 'greeting', 'alpha only', who);
    await within(1000, () => runAs(a, () => one.get('greeting')), 'alpha only');
    expect(await runAs(b, () => one.get('greeting'))).toBe('Welcome');
    expect(runAs(b, () => one.peek('greeting'))).toBe('Welcome');
    expect(await codeOf(() => one.get('greeting'))).toBe('TENANT_SCOPE_MISSING');
    const app = db.appPool();
    for (const table of ['tenant_settings', 'tenant_settings_history', 'tenant_settings_heads']) {
      const code = await codeOf(() => runAs(b, () => app.query(`select * from tenantry_private.${table}`)));
      expect(code).toBe('42501');
    }
    // a doorbell for A (even forged, by anyone who can NOTIFY) only makes A re-read
    await db.admin.query(`select pg_notify('tenantry_settings', $1)`, ['f'.repeat(32)]);
    expect(await runAs(a, () => one.get('greeting'))).toBe('alpha only');
    expect(await runAs(b, () => two.get('greeting'))).toBe('Welcome');
  });

  it('a job reads the value when it runs, not when it was enqueued', async () => {
    // what a job handler does: it runs later, inside runAs(job's tenant)
    const handler = () => one.get('theme');
    await admin.set(a, 'theme', 'light', who);
    await within(1000, () => runAs(a, handler), 'light');
    const enqueued = { tenant: a }; // enqueue time: light
    await admin.set(a, 'theme', 'dark', who);
    await within(1000, () => runAs(enqueued.tenant, handler), 'dark');
  });

  it('rejects a tenant that does not exist', async () => {
    expect(await codeOf(() => admin.set('00000000-0000-4000-8000-000000000000', 'theme', 'dark', who))).toBe(
      'TENANT_NOT_FOUND',
    );
    expect(await codeOf(() => runAs('00000000-0000-4000-8000-000000000000', () => one.get('theme')))).toBe(
      'TENANT_NOT_FOUND',
    );
  });
});
