import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Placements } from '../../src/index.js';
import { FlagsAdmin, SettingsAdmin } from '../../src/settings/index.js';
import { TenantRateLimits } from '../../src/limits/index.js';
import { flags, settings } from '../../app/settings/definition.js';
import { createAppFixture, PASSWORD, type AppFixture } from './support/app-fixture.js';
import { fuzzString, fuzzValue } from './support/fuzz-values.js';

/**
 * The console's settings and flags, structured audit, exports and act-as (app/console), and the
 * separation of the console cookie from the staff bearer token. Real PostgreSQL, the real server.
 */
let f: AppFixture;
let placements: Placements | undefined;
let limitsPool: pg.Pool | undefined;
let limits: TenantRateLimits | undefined;
let exportDir: string;

beforeAll(async () => {
  exportDir = await mkdtemp(path.join(tmpdir(), 'console-exports-'));
  // what a server killed with -9 left in its folder: an archive and a half-written export
  await writeFile(path.join(exportDir, `${randomUUID()}.${randomUUID()}.tenant`), 'a tenant');
  await mkdir(path.join(exportDir, '.tenantry-export-left'));
  await writeFile(path.join(exportDir, '.tenantry-export-left', 'members.ndjson'), 'a@example.com');
  await writeFile(path.join(exportDir, 'not-an-archive.txt'), 'kept');
  f = await createAppFixture({
    console: {
      settings: (db) => ({
        admin: new SettingsAdmin({ definition: settings, db: db.owner }),
        flags: new FlagsAdmin({ definition: flags, db: db.owner }),
      }),
      exports: (db) => {
        placements = new Placements({ catalog: db.owner, owners: { home: db.ownerUrl } });
        limitsPool = new pg.Pool({ connectionString: db.ownerUrl, max: 2 });
        limits = new TenantRateLimits({
          store: { postgres: limitsPool },
          catalog: limitsPool,
          limits: {
            api: { durationSeconds: 60 },
            export: { durationSeconds: 3600, onStoreDown: 'closed' },
            'console-export': { durationSeconds: 3600, onStoreDown: 'closed' },
          },
          plans: { free: { api: 1000, export: 1, 'console-export': 1 } },
          defaultPlan: 'free',
          storeTimeoutMs: 10_000,
        });
        return { catalog: db.owner, placements, dir: exportDir, timeoutMs: 60_000, limits };
      },
    },
  });
  await limits?.start();
}, 120_000);
afterAll(async () => {
  await f?.app.close();
  // the server's archives went with it
  expect((await readdir(exportDir)).filter((name) => name.endsWith('.tenant'))).toEqual([]);
  await limits?.close();
  await limitsPool?.end();
  await placements?.end();
  await f?.close();
  await rm(exportDir, { recursive: true, force: true });
});

interface Session {
  cookie: string;
  csrf: string;
}

async function signIn(): Promise<Session> {
  const res = await f.call('POST', '/console/api/sign-in', { payload: { email: f.staff.email, password: PASSWORD } });
  expect(res.statusCode, res.body).toBe(200);
  return { cookie: String(res.headers['set-cookie']).split(';')[0]!, csrf: res.json().csrfToken as string };
}

function call(s: Session, method: 'GET' | 'POST', url: string, payload?: unknown, csrf = true) {
  return f.call(method, url, {
    headers: { cookie: s.cookie, ...(csrf ? { 'x-csrf-token': s.csrf } : {}) },
    ...(payload === undefined ? {} : { payload }),
  });
}

async function consoleAudit(tenantId: string) {
  const { rows } = await f.db.admin.query<{
    staff_id: string;
    action: string;
    reason: string | null;
    outcome: string;
    code: string | null;
  }>(
    'select staff_id::text, action, reason, outcome, code from app_private.console_audit where target_tenant_id = $1 order by id',
    [tenantId],
  );
  return rows;
}

async function overrides(tenantId: string) {
  const { rows } = await f.db.admin.query<{ key: string; value: unknown }>(
    'select key, value from tenantry_private.tenant_settings where tenant_id = $1 order by key',
    [tenantId],
  );
  return rows;
}

describe('the console cookie and the staff bearer token are not interchangeable', () => {
  it('a console cookie is refused as a bearer token, on staff and tenant routes', async () => {
    const s = await signIn();
    const token = decodeURIComponent(s.cookie.split('=')[1]!);
    const staffRoute = await f.call('POST', '/staff/access', {
      token,
      payload: { tenant: 'alpha', reason: 'trying the cookie as bearer', minutes: 5 },
    });
    expect(staffRoute.statusCode).toBe(401);
    const tenantRoute = await f.call('GET', '/members', { token, headers: { 'x-tenant': 'alpha' } });
    expect(tenantRoute.statusCode).toBe(401);
    // nothing was opened on alpha
    const { rows } = await f.db.admin.query(
      `select 1 from tenantry_private.staff_grants where tenant_id = $1 and reason like 'trying the cookie%'`,
      [f.a.id],
    );
    expect(rows).toEqual([]);
  });

  it('a staff bearer token is refused as the console cookie', async () => {
    const bearer = await f.staffToken();
    const res = await f.call('GET', '/console/api/tenants', { headers: { cookie: `tenantry_console=${bearer}` } });
    expect(res.statusCode).toBe(401);
    expect((await f.call('GET', '/console/api/tenants', { token: bearer })).statusCode).toBe(401);
    // and the bearer still works where it belongs
    const own = await f.call('POST', '/staff/tenants/alpha/summary', {
      token: bearer,
      payload: { reason: 'bearer still works on staff routes' },
    });
    expect(own.statusCode, own.body).toBe(200);
  });

  it("a member's token in the cookie is refused", async () => {
    const member = await f.token(f.users.alice, f.a);
    const res = await f.call('GET', '/console/api/tenants', { headers: { cookie: `tenantry_console=${member}` } });
    expect(res.statusCode).toBe(401);
  });
});

describe('query strings', () => {
  it('invalid percent-encoding or UTF-8 in q is 400 QUERY_ENCODING_INVALID', async () => {
    const s = await signIn();
    for (const q of ['%ff', '%zz', '%c3%28', '%ed%a0%80', 'abc%', '%e2%82']) {
      const res = await call(s, 'GET', `/console/api/tenants?q=${q}`);
      expect(res.statusCode, q).toBe(400);
      expect(res.json().error.code, q).toBe('QUERY_ENCODING_INVALID');
    }
    const good = await call(s, 'GET', `/console/api/tenants?q=${encodeURIComponent('bravo')}`);
    expect(good.statusCode).toBe(200);
    const euro = await call(s, 'GET', `/console/api/tenants?q=${encodeURIComponent('€')}`);
    expect(euro.statusCode).toBe(200);
  });
});

describe('settings and flags', () => {
  let s: Session;
  beforeAll(async () => {
    s = await signIn();
  });

  it('shows the resolved values with their layers, and the flags', async () => {
    const res = await call(s, 'GET', '/console/api/tenants/alpha/settings');
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body.values).toMatchObject({ recordingRetentionDays: 90, maxRecordingMinutes: 30 });
    expect(body.sources).toMatchObject({ recordingRetentionDays: 'app', maxRecordingMinutes: 'library' });
    expect(body.flags).toEqual([expect.objectContaining({ flag: 'transcripts', value: false, override: null })]);
  });

  it('edits a setting as the staff member, with history and the tenant audit; the other tenant is untouched', async () => {
    const bravoBefore = await overrides(f.b.id);
    const res = await call(s, 'POST', '/console/api/tenants/alpha/settings', {
      key: 'maxRecordingMinutes',
      value: 120,
      reason: 'ticket 7: longer calls',
    });
    expect(res.statusCode, res.body).toBe(200);
    const after = (await call(s, 'GET', '/console/api/tenants/alpha/settings')).json();
    expect(after.values.maxRecordingMinutes).toBe(120);
    expect(after.sources.maxRecordingMinutes).toBe('tenant');
    const history = (await call(s, 'GET', '/console/api/tenants/alpha/settings/history')).json();
    expect(history.items[0]).toMatchObject({
      key: 'maxRecordingMinutes',
      oldValue: null,
      newValue: 120,
      actor: `staff:${f.staff.id}`,
      reason: 'ticket 7: longer calls',
    });
    const { rows } = await f.db.admin.query<{ actor_kind: string; actor_id: string | null; reason: string | null }>(
      `select actor_kind, actor_id::text, reason from tenantry.audit_log where tenant_id = $1 and reason like 'console settings set%'`,
      [f.a.id],
    );
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.actor_kind === 'staff' && r.actor_id === f.staff.id)).toBe(true);
    // the library's own settings.changed entry names the staff member too, not `system`
    const { rows: changed } = await f.db.admin.query<{ actor_kind: string; actor_id: string | null }>(
      `select actor_kind, actor_id::text from tenantry.audit_log where tenant_id = $1 and action = 'settings.changed'`,
      [f.a.id],
    );
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.every((r) => r.actor_kind === 'staff' && r.actor_id === f.staff.id)).toBe(true);
    expect(await overrides(f.b.id)).toEqual(bravoBefore);
    expect(await consoleAudit(f.a.id)).toContainEqual(
      expect.objectContaining({ action: 'settings.set', outcome: 'ok', staff_id: f.staff.id }),
    );
  });

  it('a bad value is 400 naming the key, and nothing changes', async () => {
    const before = await overrides(f.a.id);
    const version = (await call(s, 'GET', '/console/api/tenants/alpha/settings')).json().version;
    for (const value of [9999, 'long', -1, null, { a: 1 }]) {
      const res = await call(s, 'POST', '/console/api/tenants/alpha/settings', {
        key: 'maxRecordingMinutes',
        value,
        reason: 'trying a bad value here',
      });
      expect(res.statusCode, JSON.stringify(value)).toBe(400);
      expect(res.json().error.code).toBe('SETTING_INVALID');
      expect(res.json().error.message).toContain('maxRecordingMinutes');
    }
    const unknown = await call(s, 'POST', '/console/api/tenants/alpha/settings', {
      key: 'noSuchKey',
      value: 1,
      reason: 'trying an unknown key',
    });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error.code).toBe('SETTING_UNKNOWN');
    for (const payload of [
      { key: 'maxRecordingMinutes', value: 5 },
      { key: 'maxRecordingMinutes', reason: 'neither a value nor unset' },
      { key: '1bad', value: 5, reason: 'a bad key name here' },
      { key: 'maxRecordingMinutes', value: 5, reason: 'extra field', extra: 1 },
    ]) {
      const res = await call(s, 'POST', '/console/api/tenants/alpha/settings', payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
    }
    expect(await overrides(f.a.id)).toEqual(before);
    expect((await call(s, 'GET', '/console/api/tenants/alpha/settings')).json().version).toBe(version);
    expect(await consoleAudit(f.a.id)).toContainEqual(
      expect.objectContaining({ action: 'settings.set', outcome: 'refused', code: 'SETTING_INVALID' }),
    );
  });

  it('rolls back to a version, as a new change; a missing version is 404', async () => {
    const res = await call(s, 'POST', '/console/api/tenants/alpha/settings/rollback', {
      version: 0,
      reason: 'back to the plan values',
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(await overrides(f.a.id)).toEqual([]);
    const history = (await call(s, 'GET', '/console/api/tenants/alpha/settings/history?limit=1')).json();
    expect(history.items[0]).toMatchObject({ action: 'rollback', oldValue: 120, newValue: null });
    expect(history.next).not.toBeNull();
    const missing = await call(s, 'POST', '/console/api/tenants/alpha/settings/rollback', {
      version: 999,
      reason: 'no such version here',
    });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('SETTINGS_VERSION_NOT_FOUND');
    expect((await call(s, 'GET', '/console/api/tenants/alpha/settings/history?limit=0')).statusCode).toBe(400);
  });

  it('overrides a flag on, off and clears it, each with a reason and the staff actor', async () => {
    for (const [state, value] of [
      ['on', true],
      ['off', false],
      ['clear', null],
    ] as const) {
      const res = await call(s, 'POST', '/console/api/tenants/alpha/flags/transcripts', {
        state,
        reason: `beta customer: ${state}`,
      });
      expect(res.statusCode, res.body).toBe(200);
      const flag = (await call(s, 'GET', '/console/api/tenants/alpha/settings')).json().flags[0];
      expect(flag.override).toBe(value);
    }
    const changes = (await call(s, 'GET', '/console/api/tenants/alpha/settings')).json().flagChanges;
    expect(changes[0]).toMatchObject({ flag: 'transcripts', change: 'clear', actor: `staff:${f.staff.id}` });
    // bravo has none of it
    const bravo = (await call(s, 'GET', '/console/api/tenants/bravo/settings')).json();
    expect(bravo.flagChanges).toEqual([]);
    const unknown = await call(s, 'POST', '/console/api/tenants/alpha/flags/nope', {
      state: 'on',
      reason: 'an unknown flag',
    });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().error.code).toBe('FLAG_UNKNOWN');
    const bad = await call(s, 'POST', '/console/api/tenants/alpha/flags/transcripts', {
      state: 'maybe',
      reason: 'x'.repeat(12),
    });
    expect(bad.statusCode).toBe(400);
  });

  it('refuses changes without the CSRF token, changing nothing', async () => {
    const before = await overrides(f.a.id);
    const res = await call(
      s,
      'POST',
      '/console/api/tenants/alpha/settings',
      { key: 'maxRecordingMinutes', value: 60, reason: 'without the csrf token' },
      false,
    );
    expect(res.statusCode).toBe(403);
    expect(await overrides(f.a.id)).toEqual(before);
  });
});

describe('the structured audit', () => {
  it('records every console action with staff, action, tenant, reason, outcome and time; queryable', async () => {
    const s = await signIn();
    await call(s, 'POST', '/console/api/tenants/bravo/actions', { action: 'suspend', reason: 'audit test: suspend' });
    await call(s, 'POST', '/console/api/tenants/bravo/actions', { action: 'resume', reason: 'audit test: resume' });
    // a made-up action name is refused, and recorded under the generic name, not the client's
    const madeUp = await call(s, 'POST', '/console/api/tenants/bravo/actions', {
      action: 'wipe-everything',
      reason: 'audit test: made up',
    });
    expect(madeUp.statusCode).toBe(400);
    await call(s, 'POST', '/console/api/tenants/bravo/actions', {
      action: 'soft-delete',
      reason: 'audit test: wrong slug',
      confirm: 'alpha',
    });
    const res = await call(s, 'GET', `/console/api/audit?tenant=${f.b.id}&limit=2`);
    expect(res.statusCode, res.body).toBe(200);
    const page = res.json();
    expect(page.entries).toHaveLength(2);
    expect(page.entries[0]).toMatchObject({
      staffId: f.staff.id,
      action: 'tenant.soft-delete',
      tenantId: f.b.id,
      tenantSlug: 'bravo',
      reason: 'audit test: wrong slug',
      outcome: 'refused',
      code: 'CONFIRMATION_REQUIRED',
    });
    expect(page.entries[1]).toMatchObject({ action: 'tenant.action', outcome: 'refused' });
    expect(typeof page.entries[0].occurredAt).toBe('string');
    const older = (await call(s, 'GET', `/console/api/audit?tenant=${f.b.id}&before=${page.next}`)).json();
    expect(older.entries[0]).toMatchObject({ action: 'tenant.resume', outcome: 'ok' });
    expect(older.entries[1]).toMatchObject({ action: 'tenant.suspend', outcome: 'ok' });
    const byAction = (await call(s, 'GET', `/console/api/audit?action=tenant.resume&staff=${f.staff.id}`)).json();
    expect(byAction.entries.every((e: { action: string }) => e.action === 'tenant.resume')).toBe(true);
    // nothing about bravo in alpha's entries
    expect((await consoleAudit(f.a.id)).some((r) => r.reason?.startsWith('audit test'))).toBe(false);
    for (const url of [
      '/console/api/audit?tenant=x',
      '/console/api/audit?before=0',
      '/console/api/audit?limit=500',
      '/console/api/audit?evil=1',
    ]) {
      expect((await call(s, 'GET', url)).statusCode, url).toBe(400);
    }
  });

  it('append-only: the owner cannot change or delete entries', async () => {
    await expect(f.db.owner.query('delete from app_private.console_audit')).rejects.toMatchObject({ code: '42501' });
    await expect(f.db.owner.query(`update app_private.console_audit set reason = 'x'`)).rejects.toMatchObject({
      code: '42501',
    });
  });

  it("pages the tenant's own audit log, newest first", async () => {
    const s = await signIn();
    const first = (await call(s, 'GET', '/console/api/tenants/bravo/audit?limit=3')).json();
    expect(first.entries).toHaveLength(3);
    const ids = first.entries.map((e: { id: string }) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    const next = (await call(s, 'GET', `/console/api/tenants/bravo/audit?limit=3&before=${first.next}`)).json();
    expect(Number(next.entries[0].id)).toBeLessThan(ids.at(-1)!);
    expect((await call(s, 'GET', '/console/api/tenants/bravo/audit?before=abc')).statusCode).toBe(400);
  });
});

describe('exports', () => {
  it('what a killed server left in its export folder is removed at start (only its archives)', async () => {
    const deadline = Date.now() + 10_000;
    let left = await readdir(exportDir);
    while (left.length > 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      left = await readdir(exportDir);
    }
    expect(left).toEqual(['not-an-archive.txt']);
  });

  it('starts an export with a reason, downloads the signed archive with the CSRF header, rate limited', async () => {
    const s = await signIn();
    const noReason = await call(s, 'POST', '/console/api/tenants/alpha/exports', { reason: 'short' });
    expect(noReason.statusCode).toBe(400);
    const started = await call(s, 'POST', '/console/api/tenants/alpha/exports', { reason: 'ticket 9: customer copy' });
    expect(started.statusCode, started.body).toBe(202);
    const { exportId } = started.json();
    let state = 'running';
    const deadline = Date.now() + 60_000;
    while (state === 'running' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      const list = (await call(s, 'GET', '/console/api/tenants/alpha/exports')).json();
      state = list.exports.find((e: { id: string }) => e.id === exportId).state;
    }
    expect(state).toBe('ready');
    const url = `/console/api/tenants/alpha/exports/${exportId}/download`;
    expect((await call(s, 'GET', url, undefined, false)).statusCode).toBe(403);
    // another tenant's route does not reach it
    expect((await call(s, 'GET', `/console/api/tenants/bravo/exports/${exportId}/download`)).statusCode).toBe(404);
    const download = await f.app.inject({
      method: 'GET',
      url,
      headers: { cookie: s.cookie, 'x-csrf-token': s.csrf },
    });
    expect(download.statusCode).toBe(200);
    expect(download.headers['content-disposition']).toMatch(/^attachment; filename="alpha-/);
    const bytes = download.rawPayload;
    expect(bytes.subarray(0, 13).toString()).toBe('manifest.json');
    expect(bytes.includes(Buffer.from('manifest.sig'))).toBe(true);
    expect(bytes.includes(Buffer.from(f.b.id))).toBe(false); // nothing of bravo
    // the console's one export an hour is spent
    const again = await call(s, 'POST', '/console/api/tenants/alpha/exports', { reason: 'ticket 9: one more copy' });
    expect(again.statusCode).toBe(429);
    expect(again.json().error.code).toBe('RATE_LIMITED');
    expect(again.json().error.message).toContain('console-export');
    // ...but not the tenant's own: its one usage export an hour is still there for its admins
    await expect(limits!.consume(f.a.id, 'export')).resolves.toMatchObject({ points: 1, remaining: 0 });
    const audit = await consoleAudit(f.a.id);
    expect(audit).toContainEqual(expect.objectContaining({ action: 'export.start', outcome: 'started' }));
    expect(audit).toContainEqual(expect.objectContaining({ action: 'export.download', outcome: 'ok' }));
    expect(audit).toContainEqual(
      expect.objectContaining({ action: 'export.start', outcome: 'refused', code: 'RATE_LIMITED' }),
    );
    expect((await call(s, 'GET', '/console/api/tenants/alpha/exports/not-a-uuid/download')).statusCode).toBe(400);
  }, 90_000);
});

describe('act-as', () => {
  it('opens a time-limited read-only session as the tenant, audited, and ends it', async () => {
    const s = await signIn();
    const bad = await call(s, 'POST', '/console/api/tenants/alpha/act-as', { reason: 'ticket 12: look', minutes: 600 });
    expect(bad.statusCode).toBe(400);
    const begun = await call(s, 'POST', '/console/api/tenants/alpha/act-as', { reason: 'ticket 12: members look odd' });
    expect(begun.statusCode, begun.body).toBe(201);
    const { grantId, expiresAt } = begun.json();
    expect(new Date(expiresAt).getTime() - Date.now()).toBeLessThanOrEqual(15 * 60_000 + 5_000);
    const open = (await call(s, 'GET', '/console/api/act-as')).json();
    expect(open.sessions).toEqual([expect.objectContaining({ grantId, tenant: 'alpha', access: 'read-only' })]);
    const members = await call(s, 'GET', `/console/api/act-as/view?grant=${grantId}&view=members`);
    expect(members.statusCode, members.body).toBe(200);
    expect(JSON.stringify(members.json())).toContain(f.users.alice.id);
    expect(JSON.stringify(members.json())).not.toContain(f.users.carol.id); // bravo's owner
    // the usage view asks for the last 24 hours (the tenant route needs from and to)
    const usage = await call(s, 'GET', `/console/api/act-as/view?grant=${grantId}&view=usage`);
    expect(usage.statusCode, usage.body).toBe(200);
    const window = usage.json();
    expect(window.granularity).toBe('hour');
    expect(new Date(window.to).getTime() - new Date(window.from).getTime()).toBe(24 * 3600_000);
    expect(Math.abs(Date.now() - new Date(window.to).getTime())).toBeLessThan(60_000);
    expect(Array.isArray(window.items)).toBe(true);
    // only the listed views, only GET
    expect((await call(s, 'GET', `/console/api/act-as/view?grant=${grantId}&view=../staff`)).statusCode).toBe(400);
    const { rows } = await f.db.admin.query<{ action: string; reason: string | null }>(
      `select action, reason from tenantry.audit_log where tenant_id = $1 and id > 0 order by id desc limit 5`,
      [f.a.id],
    );
    expect(rows.map((r) => r.action)).toContain('staff.request');
    expect(rows.some((r) => r.reason?.includes('console act-as: ticket 12'))).toBe(true);
    const ended = await call(s, 'POST', '/console/api/act-as/end', { grantId });
    expect(ended.statusCode).toBe(204);
    const after = await call(s, 'GET', `/console/api/act-as/view?grant=${grantId}&view=members`);
    expect(after.statusCode).toBe(403);
    expect((await call(s, 'POST', '/console/api/act-as/end', { grantId })).statusCode).toBe(404);
    const audit = await consoleAudit(f.a.id);
    expect(audit).toContainEqual(expect.objectContaining({ action: 'act-as.begin', outcome: 'ok' }));
    expect(audit).toContainEqual(expect.objectContaining({ action: 'act-as.end', outcome: 'ok' }));
  });

  it("another staff session does not see or use this session's act-as grant", async () => {
    const s1 = await signIn();
    const s2 = await signIn();
    const begun = await call(s1, 'POST', '/console/api/tenants/bravo/act-as', { reason: 'ticket 13: bravo check' });
    const { grantId } = begun.json();
    expect((await call(s2, 'GET', '/console/api/act-as')).json().sessions).toEqual([]);
    expect((await call(s2, 'GET', `/console/api/act-as/view?grant=${grantId}&view=members`)).statusCode).toBe(403);
    expect((await call(s2, 'POST', '/console/api/act-as/end', { grantId })).statusCode).toBe(404);
    expect((await call(s1, 'POST', '/console/api/act-as/end', { grantId })).statusCode).toBe(204);
  });
});

describe('refusals on the new routes', () => {
  it('no session: 401 on every new route; a member token: refused', async () => {
    const member = await f.token(f.users.sam, f.a); // alpha's admin
    for (const [method, url] of [
      ['GET', '/console/api/tenants/alpha/settings'],
      ['GET', '/console/api/tenants/alpha/settings/history'],
      ['POST', '/console/api/tenants/alpha/settings'],
      ['POST', '/console/api/tenants/alpha/settings/rollback'],
      ['POST', '/console/api/tenants/alpha/flags/transcripts'],
      ['GET', '/console/api/audit'],
      ['GET', '/console/api/tenants/alpha/audit'],
      ['GET', '/console/api/tenants/alpha/exports'],
      ['POST', '/console/api/tenants/alpha/exports'],
      ['POST', '/console/api/tenants/alpha/act-as'],
      ['GET', '/console/api/act-as'],
      ['POST', '/console/api/act-as/end'],
    ] as const) {
      const anonymous = await f.call(method, url, method === 'POST' ? { payload: {} } : {});
      expect(anonymous.statusCode, url).toBe(401);
      const asAdmin = await f.call(method, url, {
        headers: { cookie: `tenantry_console=${member}` },
        ...(method === 'POST' ? { payload: {} } : {}),
      });
      expect(asAdmin.statusCode, url).toBe(401);
      const bearer = await f.call(method, url, { token: member, ...(method === 'POST' ? { payload: {} } : {}) });
      expect(bearer.statusCode, url).toBe(401);
    }
  });

  it('bad input is a 400 with a code, never a 5xx', async () => {
    const s = await signIn();
    const text = await call(s, 'POST', '/console/api/tenants/alpha/settings', 'not json');
    expect(text.statusCode).toBe(415); // the server's JSON-only body parser, with its code
    expect(typeof text.json().error.code).toBe('string');
    for (const [method, url, payload] of [
      ['POST', '/console/api/tenants/alpha/settings', []],
      ['POST', '/console/api/tenants/alpha/settings/rollback', { version: -1, reason: 'negative version' }],
      ['POST', '/console/api/tenants/alpha/settings/rollback', { version: 2 ** 40, reason: 'huge version here' }],
      ['POST', '/console/api/tenants/alpha/flags/transcripts', { state: 'on', reason: '\u0000'.repeat(12) }],
      ['POST', '/console/api/tenants/alpha/exports', { reason: 'ok reason here', extra: true }],
      ['POST', '/console/api/tenants/alpha/act-as', { reason: '\u200b'.repeat(12) }],
      ['POST', '/console/api/act-as/end', { grantId: 'nope' }],
      ['GET', '/console/api/tenants/Bad%20Name/settings', undefined],
      ['GET', '/console/api/act-as/view?grant=x&view=members', undefined],
    ] as const) {
      const res = await call(s, method, url, payload);
      expect(res.statusCode, `${url} ${JSON.stringify(payload)}`).toBe(400);
      expect(typeof res.json().error.code).toBe('string');
    }
    // the refusal of a reason PostgreSQL cannot store is recorded all the same
    const { rows } = await f.db.admin.query<{ reason: string }>(
      `select reason from app_private.console_audit where action = 'flag.override' and code = 'VALIDATION_FAILED' order by id desc limit 1`,
    );
    expect(rows[0]?.reason).toBe('\uFFFD'.repeat(12));
  });
});

describe('fuzzed input on the new routes', () => {
  it('never answers a 5xx, and every refusal has a code', async () => {
    const s = await signIn();
    const plausible: Record<string, unknown> = {
      key: 'maxRecordingMinutes',
      value: 60,
      unset: true,
      reason: 'fuzzing the console routes',
      version: 0,
      state: 'on',
      minutes: 5,
      grantId: '00000000-0000-4000-8000-000000000000',
    };
    const bodies: Record<string, string[]> = {
      '/console/api/tenants/alpha/settings': ['key', 'value', 'unset', 'reason'],
      '/console/api/tenants/alpha/settings/rollback': ['version', 'reason'],
      '/console/api/tenants/alpha/flags/transcripts': ['state', 'reason'],
      '/console/api/tenants/alpha/exports': ['reason'],
      '/console/api/tenants/alpha/act-as': ['reason', 'minutes'],
      '/console/api/act-as/end': ['grantId'],
    };
    const field = (name: string) => fc.oneof(fc.constant(plausible[name]), fuzzValue);
    for (const [url, fields] of Object.entries(bodies)) {
      await fc.assert(
        fc.asyncProperty(fc.record(Object.fromEntries(fields.map((n) => [n, field(n)]))), async (payload) => {
          const res = await call(s, 'POST', url, payload);
          expect(res.statusCode, `${url} ${JSON.stringify(payload)}`).toBeLessThan(500);
          if (res.statusCode >= 400) expect(typeof res.json().error.code).toBe('string');
        }),
        { numRuns: 40 },
      );
    }
    const queries = [
      '/console/api/audit?tenant=',
      '/console/api/audit?action=',
      '/console/api/audit?before=',
      '/console/api/tenants/alpha/audit?before=',
      '/console/api/tenants/alpha/settings/history?before=',
      '/console/api/act-as/view?view=members&grant=',
      '/console/api/tenants?q=',
    ];
    for (const prefix of queries) {
      await fc.assert(
        fc.asyncProperty(fuzzString, async (value) => {
          let encoded: string;
          try {
            encoded = encodeURIComponent(value);
          } catch {
            encoded = '%ed%a0%80'; // a lone surrogate: what a client may send as bytes
          }
          const res = await call(s, 'GET', `${prefix}${encoded}`);
          expect(res.statusCode, `${prefix}${encoded}`).toBeLessThan(500);
        }),
        { numRuns: 30 },
      );
    }
  }, 120_000);
});
