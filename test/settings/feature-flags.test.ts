import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { OpenFeature, type Client } from '@openfeature/server-sdk';
import { runAs, TenantCatalog } from '../../src/index.js';
import {
  defineFlags,
  FlagsAdmin,
  rolloutBucket,
  SettingsFeed,
  TenantFlagProvider,
  TenantFlags,
} from '../../src/settings/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { within } from './support.js';

const definition = defineFlags({
  'new-editor': { off: false, plans: ['pro'] },
  'fast-export': { off: false, rollout: 30 },
  'banner-text': { off: 'none', on: 'Try the beta' },
  'max-boards': { off: 3, on: 10, plans: ['pro'] },
});

describe('feature flags: an OpenFeature provider keyed by the current tenant', () => {
  let db: TestDatabase;
  let pro: string;
  let free: string;
  let admin: FlagsAdmin;
  const feeds: SettingsFeed[] = [];
  const pools: pg.Pool[] = [];
  let one: Client;
  let two: Client;
  const who = { actor: 'staff:test', reason: 'test' };

  // one server instance: its own pool, feed and flag cache, its own OpenFeature domain
  async function instance(domain: string): Promise<Client> {
    const pool = new pg.Pool({ connectionString: db.ownerUrl, max: 2 });
    pools.push(pool);
    const feed = new SettingsFeed({ connectionString: db.ownerUrl });
    feeds.push(feed);
    await feed.start();
    await OpenFeature.setProviderAndWait(
      domain,
      new TenantFlagProvider(new TenantFlags({ definition, db: pool, feed })),
    );
    return OpenFeature.getClient(domain);
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    const catalog = new TenantCatalog(db.owner);
    pro = (await catalog.create({ slug: 'pro-co', name: 'Pro', settings: { plan: 'pro' } })).id;
    free = (await catalog.create({ slug: 'free-co', name: 'Free', settings: { plan: 'free' } })).id;
    admin = new FlagsAdmin({ definition, db: db.owner });
    one = await instance('one');
    two = await instance('two');
  });

  afterAll(async () => {
    await OpenFeature.close();
    await Promise.all(feeds.map((f) => f.close()));
    await Promise.all(pools.map((p) => p.end()));
    await db?.drop();
  });

  it('plan entitlements and typed values, in a request handler or a job alike', async () => {
    expect(await runAs(pro, () => one.getBooleanValue('new-editor', false))).toBe(true);
    expect(await runAs(free, () => one.getBooleanValue('new-editor', false))).toBe(false);
    expect(await runAs(pro, () => one.getNumberValue('max-boards', 0))).toBe(10);
    const details = await runAs(pro, () => one.getBooleanDetails('new-editor', false));
    expect(details).toMatchObject({ reason: 'TARGETING_MATCH', variant: 'plan' });
  });

  it('refuses to evaluate without a tenant, or for a targeting key that is not the current tenant', async () => {
    const none = await one.getBooleanDetails('new-editor', false);
    expect(none).toMatchObject({ value: false, errorCode: 'TARGETING_KEY_MISSING', reason: 'ERROR' });
    // the free tenant names the pro tenant: refused, default value, never the pro tenant's flags
    const other = await runAs(free, () => one.getBooleanDetails('new-editor', false, { targetingKey: pro }));
    expect(other).toMatchObject({ value: false, errorCode: 'INVALID_CONTEXT' });
    const spoof = await runAs(pro, () => one.getBooleanDetails('new-editor', true, { targetingKey: 'user-42' }));
    expect(spoof).toMatchObject({ value: true, errorCode: 'INVALID_CONTEXT' });
    const same = await runAs(pro, () => one.getBooleanDetails('new-editor', false, { targetingKey: pro }));
    expect(same).toMatchObject({ value: true, variant: 'plan' });
    expect(await runAs(pro, () => one.getBooleanDetails('no-such-flag', false))).toMatchObject({
      errorCode: 'FLAG_NOT_FOUND',
    });
    expect(await runAs(pro, () => one.getStringDetails('new-editor', 'x'))).toMatchObject({
      value: 'x',
      errorCode: 'TYPE_MISMATCH',
    });
  });

  it('percentage rollouts by a stable hash: about the share asked, monotone, independent per flag', () => {
    const tenants = Array.from({ length: 4000 }, () => randomUUID());
    const at = (flag: string, p: number) => new Set(tenants.filter((t) => rolloutBucket(flag, t) < p));
    const ten = at('fast-export', 10);
    const thirty = at('fast-export', 30);
    expect(ten.size / tenants.length).toBeGreaterThan(0.08);
    expect(ten.size / tenants.length).toBeLessThan(0.12);
    expect([...ten].every((t) => thirty.has(t))).toBe(true);
    const other = at('new-editor', 10);
    const overlap = [...ten].filter((t) => other.has(t)).length / ten.size;
    expect(overlap).toBeLessThan(0.2);
    expect(rolloutBucket('fast-export', tenants[0]!)).toBe(rolloutBucket('fast-export', tenants[0]!));
  });

  it("a tenant's override reaches every instance within 1 s, and only that tenant", async () => {
    await admin.override(free, 'new-editor', true, who);
    await within(1000, () => runAs(free, () => one.getBooleanValue('new-editor', false)), true);
    await within(1000, () => runAs(free, () => two.getBooleanValue('new-editor', false)), true);
    expect(await runAs(pro, () => two.getStringValue('banner-text', ''))).toBe('none');
    await expect(admin.override(free, 'new-editor', 'yes', who)).rejects.toMatchObject({ code: 'FLAG_VALUE_INVALID' });
    await expect(admin.override(free, 'nope', true, who)).rejects.toMatchObject({ code: 'FLAG_UNKNOWN' });
  });

  it('the kill switch beats overrides and plans on every instance within 1 s; revive restores', async () => {
    await admin.kill('new-editor', { actor: 'staff:oncall', reason: 'incident 12' });
    await within(1000, () => runAs(pro, () => one.getBooleanValue('new-editor', true)), false);
    await within(1000, () => runAs(free, () => two.getBooleanValue('new-editor', true)), false);
    expect(await runAs(pro, () => one.getBooleanDetails('new-editor', true))).toMatchObject({ reason: 'DISABLED' });
    await admin.revive('new-editor', who);
    await within(1000, () => runAs(pro, () => two.getBooleanValue('new-editor', false)), true);
  });

  it('a rollout change is heard everywhere; 100% turns it on for every tenant', async () => {
    await admin.setRollout('fast-export', 100, who);
    await within(1000, () => runAs(free, () => two.getBooleanValue('fast-export', false)), true);
    await admin.setRollout('fast-export', 0, who);
    await within(1000, () => runAs(free, () => one.getBooleanValue('fast-export', true)), false);
    await expect(admin.setRollout('fast-export', 101, who)).rejects.toMatchObject({ code: 'FLAG_VALUE_INVALID' });
  });

  it("changes are audited: the change log, and the tenant's own audit log for its overrides only", async () => {
    const log = await admin.changes({ flag: 'new-editor' });
    expect(log.map((c) => c.change)).toEqual(['revive', 'kill', 'override']);
    expect(log[1]).toMatchObject({ tenantId: null, actor: 'staff:oncall', reason: 'incident 12' });
    expect(log[2]).toMatchObject({ tenantId: free, oldValue: null, newValue: true });
    const audit = async (tenant: string) =>
      (
        await db.owner.query<{ detail: unknown }>(
          `select detail from tenantry.audit_log where tenant_id = $1 and action = 'flag.changed'`,
          [tenant],
        )
      ).rows;
    expect(await audit(free)).toEqual([{ detail: { actor: 'staff:test', flag: 'new-editor', change: 'override' } }]);
    expect(await audit(pro)).toEqual([]);
    // the app role reads none of it
    const app = db.appPool();
    await expect(runAs(pro, () => app.query('select * from tenantry_private.tenant_flags'))).rejects.toMatchObject({
      code: '42501',
    });
  });
});
