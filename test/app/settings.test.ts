import { OpenFeature } from '@openfeature/server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FlagsAdmin,
  SettingsAdmin,
  SettingsFeed,
  TenantFlagProvider,
  TenantFlags,
  TenantSettings,
} from '../../src/settings/index.js';
import { flags, settings } from '../../app/settings/definition.js';
import { createAppFixture, type AppFixture } from './support/app-fixture.js';

// The reference server's /settings and /flags routes over HTTP, from both tenants' side and a
// non-admin's: refusals change nothing; every change's audit entry names the real actor.
let f: AppFixture;
let feed: SettingsFeed;
let alice: string;
let bob: string;
let carol: string;

beforeAll(async () => {
  f = await createAppFixture({
    settings: async (db) => {
      feed = new SettingsFeed({ connectionString: db.ownerUrl });
      await feed.start();
      await OpenFeature.setProviderAndWait(
        new TenantFlagProvider(new TenantFlags({ definition: flags, db: db.owner, feed })),
      );
      return {
        reader: new TenantSettings({ definition: settings, db: db.owner, feed }),
        admin: new SettingsAdmin({ definition: settings, db: db.owner }),
        features: OpenFeature.getClient(),
        flagsAdmin: new FlagsAdmin({ definition: flags, db: db.owner }),
      };
    },
  });
  alice = await f.token(f.users.alice, f.a);
  bob = await f.token(f.users.bob, f.a);
  carol = await f.token(f.users.carol, f.b);
}, 60_000);

afterAll(async () => {
  await OpenFeature.close();
  await feed?.close();
  await f?.close();
});

/** A tenant's settings rows as the superuser sees them: overrides, history, change counter, audit entries. */
async function stored(tenantId: string) {
  const { rows } = await f.db.admin.query(
    `select (select coalesce(jsonb_object_agg(key, value), '{}') from tenantry_private.tenant_settings where tenant_id = $1) as overrides,
            (select count(*) from tenantry_private.tenant_settings_history where tenant_id = $1)::int as history,
            (select version from tenantry_private.tenant_settings_heads where tenant_id = $1)::int as head,
            (select count(*) from tenantry.audit_log where tenant_id = $1 and action like 'settings.%')::int as audit`,
    [tenantId],
  );
  return rows[0];
}

async function eventually<T>(read: () => Promise<T>, want: T): Promise<void> {
  await expect.poll(read, { timeout: 2000, interval: 25 }).toEqual(want);
}

describe('/settings', () => {
  it('members read the resolved values and where each comes from', async () => {
    const got = await f.call('GET', '/settings', { token: bob });
    expect(got.statusCode).toBe(200);
    expect(got.json()).toMatchObject({
      settings: { maxRecordingMinutes: 30, recordingRetentionDays: 90 },
      sources: { maxRecordingMinutes: 'library', recordingRetentionDays: 'app' },
      version: 0,
      features: { transcripts: false },
    });
  });

  it('a bad value is 400 naming the key, and nothing changes', async () => {
    const before = await stored(f.a.id);
    const bad = await f.call('PUT', '/settings/maxRecordingMinutes', { token: alice, payload: { value: 9999 } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('SETTING_INVALID');
    expect(bad.json().error.message).toContain('"maxRecordingMinutes"');
    expect(bad.json().error.message).not.toContain('9999');
    const unknown = await f.call('PUT', '/settings/noSuchKey', { token: alice, payload: { value: 1 } });
    expect(unknown.json().error.code).toBe('SETTING_UNKNOWN');
    const wrongType = await f.call('PUT', '/settings/welcomeMessage', { token: alice, payload: { value: 42 } });
    expect(wrongType.json().error.code).toBe('SETTING_INVALID');
    expect(await stored(f.a.id)).toEqual(before);
  });

  it('set, history, rollback; the audit log names the member', async () => {
    const set = await f.call('PUT', '/settings/maxRecordingMinutes', {
      token: alice,
      payload: { value: 20, reason: 'shorter calls' },
    });
    expect(set.statusCode).toBe(200);
    expect(set.json()).toEqual({ version: 1, keys: ['maxRecordingMinutes'] });
    await eventually(
      async () => (await f.call('GET', '/settings', { token: bob })).json().settings.maxRecordingMinutes,
      20,
    );
    const history = await f.call('GET', '/settings/history', { token: alice });
    expect(history.json().items[0]).toMatchObject({
      version: 1,
      key: 'maxRecordingMinutes',
      oldValue: null,
      newValue: 20,
      actor: `user:${f.users.alice.id}`,
      reason: 'shorter calls',
    });
    const back = await f.call('POST', '/settings/rollback', { token: alice, payload: { version: 0 } });
    expect(back.json()).toEqual({ version: 2, keys: ['maxRecordingMinutes'] });
    await eventually(
      async () => (await f.call('GET', '/settings', { token: bob })).json().settings.maxRecordingMinutes,
      30,
    );
    const missing = await f.call('POST', '/settings/rollback', { token: alice, payload: { version: 50 } });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('SETTINGS_VERSION_NOT_FOUND');
    const { rows } = await f.db.admin.query(
      `select actor_kind, actor_id from tenantry.audit_log where tenant_id = $1 and action = 'settings.changed' order by id`,
      [f.a.id],
    );
    expect(rows).toEqual([
      { actor_kind: 'user', actor_id: f.users.alice.id },
      { actor_kind: 'user', actor_id: f.users.alice.id },
    ]);
  });

  it("a tenant's admin may lower what the plan sells but not raise it; nothing changes", async () => {
    const before = await stored(f.a.id);
    for (const [key, value] of [
      ['maxRecordingMinutes', 600],
      ['recordingRetentionDays', 3650],
    ] as const) {
      const above = await f.call('PUT', `/settings/${key}`, { token: alice, payload: { value } });
      expect(above.statusCode, key).toBe(403);
      expect(above.json().error).toMatchObject({ code: 'SETTING_ABOVE_PLAN', field: key });
    }
    expect(await stored(f.a.id)).toEqual(before);
  });

  it('a non-admin member is refused every write and the history; nothing changes', async () => {
    const before = await stored(f.a.id);
    expect(
      (await f.call('PUT', '/settings/maxRecordingMinutes', { token: bob, payload: { value: 60 } })).statusCode,
    ).toBe(403);
    expect((await f.call('DELETE', '/settings/maxRecordingMinutes', { token: bob })).statusCode).toBe(403);
    expect((await f.call('POST', '/settings/rollback', { token: bob, payload: { version: 1 } })).statusCode).toBe(403);
    expect((await f.call('GET', '/settings/history', { token: bob })).statusCode).toBe(403);
    expect(await stored(f.a.id)).toEqual(before);
  });

  it("another tenant's admin is refused; nothing of alpha changes; her own change stays in bravo", async () => {
    const before = await stored(f.a.id);
    const viaHeader = await f.call('PUT', '/settings/maxRecordingMinutes', {
      token: carol,
      payload: { value: 60 },
      headers: { 'x-tenant': f.a.slug },
    });
    expect(viaHeader.statusCode).toBeGreaterThanOrEqual(400);
    expect(viaHeader.statusCode).toBeLessThan(500);
    const rollback = await f.call('POST', '/settings/rollback', {
      token: carol,
      payload: { version: 0 },
      headers: { 'x-tenant': f.a.id },
    });
    expect(rollback.statusCode).toBeGreaterThanOrEqual(400);
    expect(rollback.statusCode).toBeLessThan(500);
    const own = await f.call('PUT', '/settings/maxRecordingMinutes', { token: carol, payload: { value: 15 } });
    expect(own.json()).toEqual({ version: 1, keys: ['maxRecordingMinutes'] });
    expect(await stored(f.a.id)).toEqual(before);
    expect((await stored(f.b.id)).overrides).toEqual({ maxRecordingMinutes: 15 });
  });
});

describe('/flags and /staff/flags', () => {
  it('tenant admins list flags but cannot override them; staff under a grant can, audited as staff', async () => {
    const list = await f.call('GET', '/flags', { token: alice });
    expect(list.statusCode).toBe(200);
    expect(list.json().items).toEqual([expect.objectContaining({ flag: 'transcripts', value: false })]);
    expect((await f.call('GET', '/flags', { token: bob })).statusCode).toBe(403);
    const self = await f.call('PUT', '/flags/transcripts', { token: alice, payload: { value: true } });
    expect(self.statusCode).toBe(403);
    expect(self.json().error.code).toBe('STAFF_ONLY');
    expect((await f.db.admin.query('select * from tenantry_private.tenant_flags')).rows).toEqual([]);

    const staff = await f.staffToken();
    const grant = await f.call('POST', '/staff/access', {
      token: staff,
      payload: { tenant: f.a.slug, reason: 'Ticket 88: enable transcripts beta' },
    });
    expect(grant.statusCode).toBe(201);
    const on = await f.call('PUT', '/flags/transcripts', {
      token: staff,
      headers: { 'x-tenant': f.a.slug },
      payload: { value: true, reason: 'beta customer' },
    });
    expect(on.statusCode).toBe(200);
    expect(on.json().items[0]).toMatchObject({ value: true, variant: 'override' });
    await eventually(async () => (await f.call('GET', '/settings', { token: bob })).json().features.transcripts, true);
    // bravo does not get it
    expect((await f.call('GET', '/settings', { token: carol })).json().features.transcripts).toBe(false);
    const { rows } = await f.db.admin.query(
      `select actor_kind, actor_id, reason from tenantry.audit_log where tenant_id = $1 and action = 'flag.changed'`,
      [f.a.id],
    );
    expect(rows).toEqual([{ actor_kind: 'staff', actor_id: f.staff.id, reason: 'beta customer' }]);
  });

  it('the kill switch is staff only and turns the flag off for everyone, overrides included', async () => {
    const refused = await f.call('POST', '/staff/flags/transcripts/kill', { token: alice, payload: { reason: 'x' } });
    expect(refused.statusCode).toBe(403);
    expect((await f.db.admin.query('select * from tenantry_private.feature_flags')).rows).toEqual([]);
    const staff = await f.staffToken();
    const kill = await f.call('POST', '/staff/flags/transcripts/kill', {
      token: staff,
      payload: { reason: 'incident 231' },
    });
    expect(kill.statusCode).toBe(200);
    await eventually(async () => (await f.call('GET', '/settings', { token: bob })).json().features.transcripts, false);
    const changes = await f.call('GET', '/staff/flags/changes', { token: staff });
    expect(changes.json().items[0]).toMatchObject({
      change: 'kill',
      actor: `staff:${f.staff.id}`,
      reason: 'incident 231',
    });
    expect(
      (await f.call('POST', '/staff/flags/transcripts/revive', { token: staff, payload: { reason: 'fixed' } }))
        .statusCode,
    ).toBe(200);
    await eventually(async () => (await f.call('GET', '/settings', { token: bob })).json().features.transcripts, true);
    const unknown = await f.call('POST', '/staff/flags/nope/kill', { token: staff, payload: { reason: 'x' } });
    expect(unknown.json().error.code).toBe('FLAG_UNKNOWN');
  });
});
