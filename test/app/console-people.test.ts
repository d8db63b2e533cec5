import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantTiers } from '../../app/tiers/tenant-tiers.js';
import { createAppFixture, PASSWORD, type AppFixture } from './support/app-fixture.js';

/** The tenant page's members and status history: staff only, each tenant its own. */
let f: AppFixture;
let tiers: TenantTiers | undefined;

beforeAll(async () => {
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
});
afterAll(async () => {
  await tiers?.end();
  await f?.close();
});

async function session(): Promise<Record<string, string>> {
  const res = await f.call('POST', '/console/api/sign-in', { payload: { email: f.staff.email, password: PASSWORD } });
  expect(res.statusCode, res.body).toBe(200);
  return { cookie: String(res.headers['set-cookie']).split(';')[0]!, 'x-csrf-token': res.json().csrfToken };
}

describe('members and history on the tenant page', () => {
  it("lists the tenant's own members only, and its status history with the staff member and reason", async () => {
    const headers = await session();
    const alpha = await f.call('GET', '/console/api/tenants/alpha/members', { headers });
    expect(alpha.statusCode, alpha.body).toBe(200);
    const { rows } = await f.db.admin.query<{ tenant_id: string; email: string }>(
      `select m.tenant_id, m.email from public.members m join tenantry.tenants t on t.id = m.tenant_id where t.slug = 'alpha'`,
    );
    expect(
      alpha
        .json()
        .members.map((m: { email: string }) => m.email)
        .sort(),
    ).toEqual(rows.map((r) => r.email).sort());
    const bravo = await f.call('GET', '/console/api/tenants/bravo/members', { headers });
    const { rows: bravoRows } = await f.db.admin.query<{ user_id: string }>(
      `select m.user_id from public.members m join tenantry.tenants t on t.id = m.tenant_id where t.slug = 'bravo'`,
    );
    expect(
      bravo
        .json()
        .members.map((m: { userId: string }) => m.userId)
        .sort(),
    ).toEqual(bravoRows.map((r) => r.user_id).sort());

    const suspended = await f.call('POST', '/console/api/tenants/bravo/actions', {
      headers,
      payload: { action: 'suspend', reason: 'chargeback under review' },
    });
    expect(suspended.statusCode, suspended.body).toBe(200);
    const closed = await f.call('GET', '/console/api/tenants/bravo/members', { headers });
    expect(closed.statusCode).toBe(200);
    // memberships are pinned identity (sign-in reads them to answer TENANT_SUSPENDED): the
    // operator still sees whom to contact
    expect(
      closed
        .json()
        .members.map((m: { userId: string }) => m.userId)
        .sort(),
    ).toEqual(bravoRows.map((r) => r.user_id).sort());
    const history = (await f.call('GET', '/console/api/tenants/bravo/history', { headers })).json().history;
    expect(history[0]).toMatchObject({ kind: 'console', what: 'tenant.suspend', detail: 'chargeback under review' });
    expect(history.some((h: { what: string }) => h.what === 'created')).toBe(true);
    // alpha's history knows nothing of bravo's suspension
    const alphaHistory = (await f.call('GET', '/console/api/tenants/alpha/history', { headers })).json().history;
    expect(alphaHistory.some((h: { what: string }) => h.what.startsWith('tenant.suspend'))).toBe(false);
    await f.call('POST', '/console/api/tenants/bravo/actions', {
      headers,
      payload: { action: 'resume', reason: 'chargeback resolved now' },
    });
  });

  it("lists a moved tenant's members (pinned at home), and the move in its history", async () => {
    const headers = await session();
    const before = (await f.call('GET', '/console/api/tenants/alpha/members', { headers })).json().members;
    const alpha = (await f.db.admin.query<{ id: string }>(`select id from tenantry.tenants where slug = 'alpha'`))
      .rows[0]!;
    await tiers!.move(alpha.id, { tier: 'schema', cluster: 'home', schema: 't_alpha_people' });
    const after = await f.call('GET', '/console/api/tenants/alpha/members', { headers });
    expect(after.statusCode, after.body).toBe(200);
    expect(after.json().members).toEqual(before);
    const history = (await f.call('GET', '/console/api/tenants/alpha/history', { headers })).json().history;
    expect(history.some((h: { kind: string; what: string }) => h.kind === 'move' && h.what.endsWith('→ schema'))).toBe(
      true,
    );
  });

  it('refuses a member, no session, and a malformed tenant', async () => {
    expect((await f.call('GET', '/console/api/tenants/alpha/members')).statusCode).toBe(401);
    expect((await f.call('GET', '/console/api/tenants/alpha/history')).statusCode).toBe(401);
    const headers = await session();
    expect((await f.call('GET', '/console/api/tenants/no-such/members', { headers })).statusCode).toBe(404);
    expect((await f.call('GET', '/console/api/tenants/Bad!Slug/history', { headers })).statusCode).toBe(400);
  });

  it('the console audit pages newest first by number, past id 9, and reaches every entry', async () => {
    const headers = await session();
    await f.db.admin.query(
      `insert into app_private.console_audit (staff_id, action, outcome)
       select $1, 'tenant.suspend', 'refused' from generate_series(1, 12)`,
      [f.staff.id],
    );
    const { rows } = await f.db.admin.query<{ n: number }>('select count(*)::int as n from app_private.console_audit');
    const seen: number[] = [];
    let next: string | null = null;
    do {
      const page = (
        await f.call('GET', `/console/api/audit?limit=5${next ? `&before=${next}` : ''}`, { headers })
      ).json() as { entries: { id: string }[]; next: string | null };
      seen.push(...page.entries.map((e) => Number(e.id)));
      next = page.next;
    } while (next !== null && seen.length < 1000);
    expect(seen.length).toBe(rows[0]!.n);
    expect(seen).toEqual([...seen].sort((a, b) => b - a));
  });
});
