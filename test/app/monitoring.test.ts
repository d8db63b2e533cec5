// The reference server's monitoring wiring (try-out finding 14: `tenants top` was empty on
// `npm start`): the pools count per-tenant activity and tag their backends, the activity is
// published where `tenantry tenants top` reads it, each tenant's statements run under its plan's
// database limits, a plan the server does not know falls back to the default plan with a warning,
// and bad settings stop the start with the variable's name.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { TenantCatalog } from '../../src/catalog/tenant-catalog.js';
import { instancesText, readTop } from '../../src/cli/top-command.js';
import { createLogger } from '../../app/logger.js';
import { monitoringFromEnv, startMonitoring } from '../../app/observe/monitoring.js';
import { trustProxyFromEnv } from '../../app/http/trust-proxy.js';
import { PLAN_NAMES, PLANS } from '../../app/plans.js';
import { SERVER_LIMITS } from '../../app/limits/limits-from-env.js';
import { flags, settings } from '../../app/settings/definition.js';
import { createNotesTable } from '../support/notes-table.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
const suffix = randomUUID().slice(0, 6);
let free: { id: string; slug: string };
let business: { id: string; slug: string };
let legacy: { id: string; slug: string };

beforeAll(async () => {
  db = await createTestDatabase();
  const catalog = new TenantCatalog(db.owner);
  free = await catalog.create({ slug: `free-${suffix}`, name: 'Free', settings: { plan: 'free' } });
  business = await catalog.create({ slug: `biz-${suffix}`, name: 'Biz', settings: { plan: 'business' } });
  // a plan written by an older version (settings used to say `pro`): served, never a crash
  legacy = await catalog.create({ slug: `pro-${suffix}`, name: 'Legacy', settings: { plan: 'pro' } });
  await createNotesTable(db, [
    [free.id, 'f1'],
    [business.id, 'b1'],
    [business.id, 'b2'],
    [legacy.id, 'l1'],
  ]);
});
afterAll(() => db?.drop());

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { logger, lines };
}

describe('the plans: one list for every part of the server', () => {
  it('rate limits, database limits, settings and flags know the same plans, and nothing else', () => {
    expect(Object.keys(SERVER_LIMITS.plans).sort()).toEqual([...PLAN_NAMES].sort());
    expect(PLAN_NAMES).toContain(SERVER_LIMITS.defaultPlan);
    // the settings' plan layer and the flag's plans are taken from the same list
    expect(settings.resolve('business', {}).values.maxRecordingMinutes).toBe(
      PLANS.business.settings?.maxRecordingMinutes,
    );
    expect(settings.resolve('pro', {}).values.maxRecordingMinutes).toBe(30); // unknown plan: the app's defaults
    expect(JSON.stringify(flags)).not.toContain('"pro"');
  });
});

describe('monitoringFromEnv and trustProxyFromEnv', () => {
  it('defaults to everything on, and refuses a bad value naming the variable', () => {
    expect(monitoringFromEnv({})).toEqual({ activity: true, intervalMs: 15_000, dbLimits: true, fairCheckout: true });
    expect(
      monitoringFromEnv({
        TENANTRY_ACTIVITY: 'off',
        TENANTRY_DB_LIMITS: 'OFF',
        TENANTRY_FAIR_CHECKOUT: 'on',
        TENANTRY_ACTIVITY_INTERVAL_S: '5',
      }),
    ).toEqual({ activity: false, intervalMs: 5000, dbLimits: false, fairCheckout: true });
    expect(() => monitoringFromEnv({ TENANTRY_ACTIVITY: 'yes' })).toThrow(/TENANTRY_ACTIVITY must be on or off/);
    expect(() => monitoringFromEnv({ TENANTRY_FAIR_CHECKOUT: '1' })).toThrow(/TENANTRY_FAIR_CHECKOUT/);
    expect(() => monitoringFromEnv({ TENANTRY_ACTIVITY_INTERVAL_S: '0' })).toThrow(/TENANTRY_ACTIVITY_INTERVAL_S/);
    expect(() => monitoringFromEnv({ TENANTRY_ACTIVITY_INTERVAL_S: '1.5' })).toThrow(/TENANTRY_ACTIVITY_INTERVAL_S/);
    expect(trustProxyFromEnv({})).toBe(false);
    expect(trustProxyFromEnv({ TENANTRY_TRUST_PROXY: 'on' })).toBe(true);
    expect(trustProxyFromEnv({ TENANTRY_TRUST_PROXY: '2' })).toBe(2);
    expect(trustProxyFromEnv({ TENANTRY_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' })).toBe('10.0.0.0/8,127.0.0.1');
    expect(() => trustProxyFromEnv({ TENANTRY_TRUST_PROXY: 'yes please' })).toThrow(/TENANTRY_TRUST_PROXY/);
    // refused at start, naming the variable: not left to the proxy library after the database started
    for (const bad of ['999.1.1.1/8', '10.0.0.0/33', '2001:db8::/129', '1.2.3', '10.0.0.0/8/1', 'fe80::zz'])
      expect(() => trustProxyFromEnv({ TENANTRY_TRUST_PROXY: bad }), bad).toThrow(/TENANTRY_TRUST_PROXY/);
    expect(trustProxyFromEnv({ TENANTRY_TRUST_PROXY: '2001:db8::/32,::1' })).toBe('2001:db8::/32,::1');
  });
});

describe('startMonitoring', () => {
  it('publishes per-tenant activity that tenants top reads, with each plan’s database limits; an unknown plan gets the default’s, with a warning', async () => {
    const { logger, lines } = capture();
    const monitoring = await startMonitoring(db.owner, logger, {
      activity: true,
      intervalMs: 60_000,
      dbLimits: true,
      fairCheckout: true,
    });
    try {
      const pool = db.appPool({ max: 4, ...monitoring.poolOptions });
      const timeoutOf = (tenant: string) =>
        runAs(
          tenant,
          async () => (await pool.query<{ t: string }>(`select current_setting('statement_timeout') as t`)).rows[0]!.t,
        );
      expect(await timeoutOf(free.id)).toBe('5s');
      expect(await timeoutOf(business.id)).toBe('15s');
      // the unknown plan: the default (free) plan's limits, and a warning naming the plan at start
      expect(await timeoutOf(legacy.id)).toBe('5s');
      const warning = lines.find((l) => String(l.msg).includes('plans this server does not know'));
      expect(warning).toMatchObject({ level: 40, plans: [{ plan: 'pro', tenants: 1 }], defaultPlan: 'free' });
      for (let i = 0; i < 3; i++) await runAs(business.id, () => pool.query('select body from notes'));
      await runAs(free.id, () => pool.query('select body from notes'));
      // stop writes the last window (no need to wait for the interval)
      await monitoring.stop();
      const report = await readTop(db.admin, { windowMinutes: 60, limit: 20, storage: false, moveShare: 0.5 });
      const bySlug = new Map(report.tenants.map((t) => [t.slug, t]));
      expect(report.instances).toBe(1);
      expect(report.staleInstances).toBe(0);
      // an instance killed two minutes ago is stale, not publishing, and its connections are gone with it
      await db.admin.query(
        `insert into tenantry_private.tenant_activity (instance, tenant_key, window_start, window_end, connections)
         values ('killed:1', $1, now() - interval '135 s', now() - interval '120 s', 5)`,
        [business.id],
      );
      const withKilled = await readTop(db.admin, { windowMinutes: 60, limit: 20, storage: false, moveShare: 0.5 });
      expect(withKilled).toMatchObject({ instances: 1, staleInstances: 1 });
      expect(withKilled.tenants.find((t) => t.slug === business.slug)!.connections).toBe(
        bySlug.get(business.slug)!.connections,
      );
      expect(instancesText(withKilled)).toBe(
        '1 instance(s) publishing (1 stale: nothing published in the last 30 s, stopped or idle)',
      );
      expect(bySlug.get(business.slug)).toMatchObject({ plan: 'business', statements: 4, rows: 7 });
      expect(bySlug.get(free.slug)).toMatchObject({ plan: 'free', statements: 2, rows: 2 });
      expect(bySlug.get(legacy.slug)).toMatchObject({ plan: 'pro', statements: 1 });
      // what was published names tenants by id only (no slug, no context value)
      const { rows } = await db.admin.query<{ tenant_key: string }>(
        'select distinct tenant_key from tenantry_private.tenant_activity',
      );
      expect(rows.map((r) => r.tenant_key).sort()).toEqual([free.id, business.id, legacy.id].sort());
      await pool.end();
    } finally {
      await monitoring.stop();
    }
  });

  it('everything off: no activity, no limits, plain pools', async () => {
    const { logger } = capture();
    const monitoring = await startMonitoring(db.owner, logger, {
      activity: false,
      intervalMs: 15_000,
      dbLimits: false,
      fairCheckout: false,
    });
    expect(monitoring.poolOptions).toEqual({});
    await monitoring.stop();
  });
});
