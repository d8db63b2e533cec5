import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppFixture, PASSWORD, type AppFixture } from './support/app-fixture.js';

/**
 * The operator console's API (app/console): staff only, a cookie session, CSRF on every change,
 * every change audited with the staff member and reason. The browser test is console-browser.test.ts.
 */
let f: AppFixture;
beforeAll(async () => {
  f = await createAppFixture({ console: true });
});
afterAll(async () => {
  await f?.close();
});

interface Session {
  cookie: string;
  csrf: string;
}

async function signIn(email = f.staff.email, password = PASSWORD): Promise<Session> {
  const res = await f.call('POST', '/console/api/sign-in', { payload: { email, password } });
  expect(res.statusCode, res.body).toBe(200);
  const setCookie = String(res.headers['set-cookie']);
  return { cookie: setCookie.split(';')[0]!, csrf: res.json().csrfToken as string };
}

function call(session: Session | undefined, method: 'GET' | 'POST', url: string, payload?: unknown, csrf = true) {
  return f.call(method, url, {
    headers: {
      ...(session ? { cookie: session.cookie } : {}),
      ...(session && csrf ? { 'x-csrf-token': session.csrf } : {}),
    },
    ...(payload === undefined ? {} : { payload }),
  });
}

async function statusOf(tenantId: string): Promise<string> {
  const { rows } = await f.db.admin.query<{ status: string }>('select status from tenantry.tenants where id = $1', [
    tenantId,
  ]);
  return rows[0]!.status;
}

async function auditRows(
  tenantId: string,
): Promise<Array<{ action: string; reason: string | null; actor_id: string }>> {
  const { rows } = await f.db.admin.query(
    'select action, reason, actor_id::text from tenantry.audit_log where tenant_id = $1 order by id',
    [tenantId],
  );
  return rows;
}

describe('console sign-in', () => {
  it('serves the page and its script without a session, and nothing else', async () => {
    const page = await f.call('GET', '/console');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect((await f.call('GET', '/console/tenants/alpha')).statusCode).toBe(200); // the same page: the app routes
    const script = await f.call('GET', '/console/assets/console.js');
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toContain('javascript');
    const api = await f.call('GET', '/console/api/tenants');
    expect(api.statusCode).toBe(401);
    expect(api.json().error.code).toBe('UNAUTHENTICATED');
    expect((await f.call('GET', '/console/api/nope')).statusCode).toBe(404);
  });

  it('sets an HttpOnly, SameSite=Strict session cookie scoped to /console', async () => {
    const res = await f.call('POST', '/console/api/sign-in', { payload: { email: f.staff.email, password: PASSWORD } });
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toMatch(/^tenantry_console=/);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).toContain('Path=/console');
    expect(res.body).not.toContain(cookie.split(';')[0]!.split('=')[1]!); // the token never reaches a script
  });

  it("refuses a tenant's members, their admins and their owners: no console session", async () => {
    for (const user of [f.users.alice, f.users.sam, f.users.carol]) {
      const res = await f.call('POST', '/console/api/sign-in', { payload: { email: user.email, password: PASSWORD } });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('INVALID_CREDENTIALS');
      expect(res.headers['set-cookie']).toBeUndefined();
    }
  });

  it("refuses a member's token put in the cookie", async () => {
    const memberToken = await f.token(f.users.alice, f.a);
    const res = await f.call('GET', '/console/api/tenants', { headers: { cookie: `tenantry_console=${memberToken}` } });
    // a token of the API's audience: the console's verifier refuses it before looking at its kind
    expect(res.statusCode).toBe(401);
  });

  it('a bearer staff token is not a console session (only the cookie is)', async () => {
    const res = await f.call('GET', '/console/api/tenants', { token: await f.staffToken() });
    expect(res.statusCode).toBe(401);
  });

  it('sign-out ends the session at once', async () => {
    const session = await signIn();
    expect((await call(session, 'POST', '/console/api/sign-out')).statusCode).toBe(204);
    const after = await call(session, 'GET', '/console/api/tenants');
    expect(after.statusCode).toBe(401);
    expect(after.json().error.code).toBe('SESSION_REVOKED');
  });

  it('bad sign-in input is a 400, never a 5xx', async () => {
    for (const payload of [{}, { email: 'x' }, { email: 1, password: 2 }, { email: 'a@b.c', password: 'p', x: 1 }]) {
      const res = await f.call('POST', '/console/api/sign-in', { payload });
      expect(res.statusCode).toBe(400);
    }
  });
});

describe('console tenants', () => {
  let session: Session;
  beforeAll(async () => {
    session = await signIn();
  });

  it('lists, searches, filters and sorts tenants', async () => {
    const all = await call(session, 'GET', '/console/api/tenants');
    expect(all.statusCode).toBe(200);
    expect(all.json().tenants.map((t: { slug: string }) => t.slug)).toEqual(['alpha', 'bravo']);
    const found = await call(session, 'GET', '/console/api/tenants?q=rav');
    expect(found.json().tenants.map((t: { slug: string }) => t.slug)).toEqual(['bravo']);
    // LIKE's wildcards are searched for, not obeyed
    expect((await call(session, 'GET', '/console/api/tenants?q=%25')).json().tenants).toEqual([]);
    expect((await call(session, 'GET', '/console/api/tenants?q=_')).json().tenants).toEqual([]);
    const byTier = await call(session, 'GET', '/console/api/tenants?tier=schema');
    expect(byTier.json().tenants).toEqual([]);
    const newest = await call(session, 'GET', '/console/api/tenants?sort=created');
    expect(newest.json().tenants.map((t: { slug: string }) => t.slug)).toEqual(['bravo', 'alpha']);
  });

  it('refuses unknown filters and bad values with 400', async () => {
    for (const url of [
      '/console/api/tenants?status=gone',
      '/console/api/tenants?sort=1;drop',
      '/console/api/tenants?evil=1',
      `/console/api/tenants?q=${'x'.repeat(101)}`,
    ]) {
      const res = await call(session, 'GET', url);
      expect(res.statusCode, url).toBe(400);
    }
    expect((await call(session, 'GET', '/console/api/tenants/no-such-tenant')).statusCode).toBe(404);
    expect((await call(session, 'GET', '/console/api/tenants/Bad%20Name')).statusCode).toBe(400);
  });

  it("shows a tenant's placement and audit log", async () => {
    const res = await call(session, 'GET', '/console/api/tenants/alpha');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.tenant).toMatchObject({ slug: 'alpha', status: 'active' });
    expect(body.placement).toMatchObject({ tier: 'shared', cluster: 'home' });
    expect(Array.isArray(body.audit)).toBe(true);
  });

  it('a change without the CSRF token, or from another origin, is refused and changes nothing', async () => {
    const before = await auditRows(f.b.id);
    const noToken = await call(
      session,
      'POST',
      '/console/api/tenants/bravo/actions',
      { action: 'suspend', reason: 'checking csrf protection' },
      false,
    );
    expect(noToken.statusCode).toBe(403);
    expect(noToken.json().error.code).toBe('CSRF_REFUSED');
    const otherOrigin = await f.call('POST', '/console/api/tenants/bravo/actions', {
      headers: { cookie: session.cookie, 'x-csrf-token': session.csrf, origin: 'https://evil.example' },
      payload: { action: 'suspend', reason: 'checking csrf protection' },
    });
    expect(otherOrigin.statusCode).toBe(403);
    const wrongToken = await f.call('POST', '/console/api/tenants/bravo/actions', {
      headers: { cookie: session.cookie, 'x-csrf-token': (await signIn()).csrf },
      payload: { action: 'suspend', reason: 'checking csrf protection' },
    });
    expect(wrongToken.statusCode).toBe(403); // another session's token
    expect(await statusOf(f.b.id)).toBe('active');
    expect(await auditRows(f.b.id)).toEqual(before);
  });

  it('suspend and resume are audited in the tenant log with the staff member and the reason', async () => {
    const suspended = await call(session, 'POST', '/console/api/tenants/bravo/actions', {
      action: 'suspend',
      reason: 'unpaid invoice 2026-11',
    });
    expect(suspended.statusCode, suspended.body).toBe(200);
    expect(await statusOf(f.b.id)).toBe('suspended');
    const detail = (await call(session, 'GET', '/console/api/tenants/bravo')).json();
    expect(detail.tenant.status).toBe('suspended');
    // the audit log is the control plane's: still readable while the tenant's data is held
    expect(detail.audit).toContainEqual(
      expect.objectContaining({ actorKind: 'staff', reason: 'console suspend: unpaid invoice 2026-11' }),
    );
    const resumed = await call(session, 'POST', '/console/api/tenants/bravo/actions', {
      action: 'resume',
      reason: 'invoice paid, resuming',
    });
    expect(resumed.statusCode, resumed.body).toBe(200);
    expect(await statusOf(f.b.id)).toBe('active');
    const log = await auditRows(f.b.id);
    const reasons = log.map((r) => r.reason ?? '');
    expect(reasons.some((r) => r.includes('console suspend: unpaid invoice 2026-11'))).toBe(true);
    expect(reasons.some((r) => r.includes('console resume: invoice paid, resuming'))).toBe(true);
    expect(log.filter((r) => r.reason?.startsWith('console ')).every((r) => r.actor_id === f.staff.id)).toBe(true);
    // nothing of it reached the other tenant's log
    expect((await auditRows(f.a.id)).some((r) => r.reason?.includes('unpaid'))).toBe(false);
  });

  it('soft-delete needs the slug typed; a wrong one changes nothing', async () => {
    const wrong = await call(session, 'POST', '/console/api/tenants/bravo/actions', {
      action: 'soft-delete',
      reason: 'customer asked to leave',
      confirm: 'alpha',
    });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().error.code).toBe('CONFIRMATION_REQUIRED');
    expect(await statusOf(f.b.id)).toBe('active');
    const ok = await call(session, 'POST', '/console/api/tenants/bravo/actions', {
      action: 'soft-delete',
      reason: 'customer asked to leave',
      confirm: 'bravo',
    });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(await statusOf(f.b.id)).toBe('deleted');
    const restored = await call(session, 'POST', '/console/api/tenants/bravo/actions', {
      action: 'restore',
      reason: 'deleted by mistake, restoring',
    });
    expect(restored.statusCode, restored.body).toBe(200);
    expect(await statusOf(f.b.id)).toBe('active');
    expect((await auditRows(f.b.id)).some((r) => r.reason?.includes('console restore: deleted by mistake'))).toBe(true);
  });

  it('a reason is required; resuming an active tenant changes nothing', async () => {
    const noReason = await call(session, 'POST', '/console/api/tenants/alpha/actions', {
      action: 'suspend',
      reason: '',
    });
    expect(noReason.statusCode).toBe(400);
    const resumeActive = await call(session, 'POST', '/console/api/tenants/alpha/actions', {
      action: 'resume',
      reason: 'resume an active tenant',
    });
    expect(resumeActive.statusCode).toBe(200);
    expect(await statusOf(f.a.id)).toBe('active');
    const bad = await call(session, 'POST', '/console/api/tenants/alpha/actions', {
      action: 'purge',
      reason: 'x'.repeat(20),
    });
    expect(bad.statusCode).toBe(400);
  });
});
