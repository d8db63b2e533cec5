import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { AuditLog } from '../../src/identity/audit-log.js';
import { Sessions } from '../../src/identity/sessions.js';
import { StaffAccess } from '../../src/identity/staff-access.js';
import { StaffDirectory } from '../../src/identity/staff-directory.js';
import { visibleLength } from '../../src/identity/visible-length.js';
import { bearer, createIdentityFixture, type IdentityFixture } from './support/identity-fixture.js';

let f: IdentityFixture;
let staff: StaffAccess;
beforeAll(async () => {
  f = await createIdentityFixture();
  staff = new StaffAccess({ appPool: f.pool, supportPool: f.supportPool });
});
afterAll(async () => {
  await f?.close();
});

const REASON = 'Ticket #4711: uploads missing since Monday';

describe('staff act-as', () => {
  it('staff sessions are checked even where member sessions are not (sessions: false)', async () => {
    const { token, sessionId } = await f.staffSignIn();
    await staff.begin({ sessionId, tenantId: f.acme.id, access: 'act_as', reason: REASON });
    const resolver = f.resolver({ sessions: false });
    expect((await resolver.resolve({ headers: { ...bearer(token), 'x-tenant': 'acme' } })).principal.kind).toBe(
      'staff',
    );
    await new Sessions(f.pool).end(sessionId);
    await expect(resolver.resolve({ headers: { ...bearer(token), 'x-tenant': 'acme' } })).rejects.toMatchObject({
      code: 'SESSION_REVOKED',
    });
  });

  it('a staff token alone, or with a tenant chosen but no grant, is refused', async () => {
    const { token } = await f.staffSignIn();
    const resolver = f.resolver();
    await expect(resolver.resolve({ headers: bearer(token) })).rejects.toMatchObject({
      code: 'TENANT_REQUIRED',
      status: 400,
    });
    await expect(resolver.resolve({ headers: { ...bearer(token), 'x-tenant': 'acme' } })).rejects.toMatchObject({
      code: 'STAFF_ACCESS_REQUIRED',
      status: 403,
    });
  });

  it('needs a reason and a bounded time', async () => {
    const { sessionId } = await f.staffSignIn();
    for (const reason of ['', '   ', 'because', undefined as unknown as string, 'x'.repeat(501)]) {
      await expect(staff.begin({ sessionId, tenantId: f.acme.id, access: 'act_as', reason })).rejects.toMatchObject({
        code: 'REASON_INVALID',
        status: 400,
        details: { field: 'reason' },
      });
    }
    for (const minutes of [0, 481, 1.5, -1]) {
      await expect(
        staff.begin({ sessionId, tenantId: f.acme.id, access: 'act_as', reason: REASON, minutes }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    // the database refuses the same even when the library's checks are skipped (raw SQL)
    await expect(
      f.pool.query('select * from tenantry.begin_staff_access($1, $2, $3, $4, $5)', [
        sessionId,
        f.acme.id,
        'act_as',
        'short',
        30,
      ]),
    ).rejects.toMatchObject({ code: '22023' });
    await expect(
      f.pool.query('select * from tenantry.begin_staff_access($1, $2, $3, $4, $5)', [
        sessionId,
        f.acme.id,
        'act_as',
        REASON,
        100000,
      ]),
    ).rejects.toMatchObject({ code: '22023' });
  });

  it('counts visible characters: invisible, blank and combining-only reasons are refused and nothing is recorded', async () => {
    const { sessionId } = await f.staffSignIn();
    const invisible = [
      '\u200B'.repeat(12), // zero-width spaces (Cf)
      '\u200B\u200C\u200D\u2060\uFEFF'.repeat(4), // zero-width joiners, word joiner, BOM (Cf)
      '\u202E\u202D\u2066\u2069\u061C'.repeat(4), // bidi controls (Cf)
      ' \t\n\u00A0\u2003\u3000'.repeat(4), // whitespace of every kind (Cc, Zs)
      '\u2028\u2029'.repeat(6), // line and paragraph separators (Zl, Zp)
      '\u0001\u007F\u0085'.repeat(5), // controls (Cc)
      '\u0301\u0308\u20DD\u0489'.repeat(4), // combining marks with no base (Mn, Me)
      '\u3164\u115F\uFFA0\u2800'.repeat(4), // letters and symbols that render blank
      '\uE000\uF8FF'.repeat(6), // private use (Co)
      `abc${'\u200B'.repeat(20)}def`, // 6 visible among 26
    ];
    const grantsOf = async () =>
      (
        await f.db.admin.query<{ n: number }>(
          'select count(*)::int as n from tenantry_private.staff_grants where session_id = $1',
          [sessionId],
        )
      ).rows[0]!.n;
    const entries = async () =>
      (await f.db.admin.query<{ n: number }>('select count(*)::int as n from tenantry.audit_log')).rows[0]!.n;
    const before = await entries();
    for (const reason of invisible) {
      for (const access of ['act_as', 'read'] as const) {
        await expect(
          staff.begin({ sessionId, tenantId: f.acme.id, access, reason }),
          JSON.stringify(reason),
        ).rejects.toMatchObject({ code: 'REASON_INVALID', status: 400 });
      }
      // a support read checks the reason before it opens anything, and never runs the function
      let ran = false;
      await expect(
        staff.read({ sessionId, tenantId: f.acme.id, reason }, async () => {
          ran = true;
        }),
      ).rejects.toMatchObject({ code: 'REASON_INVALID' });
      expect(ran).toBe(false);
    }
    expect(await grantsOf()).toBe(0);
    expect(await entries()).toBe(before);

    // visible text in any script passes; combining marks count with their base, once
    const accepted = ['Ticket #4711', 'チケット四七一一番の調査', 'e\u0301'.repeat(10), `\u200B${REASON}\u200B`];
    for (const reason of accepted) {
      const { grantId } = await staff.begin({ sessionId, tenantId: f.acme.id, access: 'act_as', reason });
      await staff.end({ sessionId, grantId });
    }
    expect(await grantsOf()).toBe(accepted.length);
  });

  it('the database refuses invisible reasons from raw SQL too, and never refuses one the library accepts', async () => {
    const { sessionId } = await f.staffSignIn();
    const raw = (reason: string) =>
      f.pool.query('select * from tenantry.begin_staff_access($1, $2, $3, $4, $5)', [
        sessionId,
        f.acme.id,
        'act_as',
        reason,
        30,
      ]);
    for (const reason of [
      '\u200B'.repeat(12),
      '\u0301'.repeat(12),
      '\u3164\u2800'.repeat(6),
      `abc${'\u2060'.repeat(10)}`,
      '\u{E0041}'.repeat(12),
    ]) {
      await expect(raw(reason), JSON.stringify(reason)).rejects.toMatchObject({ code: '23514' });
    }
    // every code point PostgreSQL can store: each one the database strips, the library does not
    // count either (so the database's approximation never refuses what the library accepted)
    const chunk = 4096;
    for (let start = 1; start < 0x110000; start += chunk) {
      const chars: string[] = [];
      for (let cp = start; cp < Math.min(start + chunk, 0x110000); cp++)
        if (cp < 0xd800 || cp > 0xdfff) chars.push(String.fromCodePoint(cp));
      const { rows } = await f.db.admin.query<{ stripped: string[] }>(
        `select array(select c from regexp_split_to_table($1, '') c where tenantry.visible_length(c) = 0) as stripped`,
        [chars.join('')],
      );
      expect(
        rows[0]!.stripped.filter((c) => visibleLength(c) > 0).map((c) => `U+${c.codePointAt(0)!.toString(16)}`),
      ).toEqual([]);
    }
  });

  it('with a grant, acts as the tenant; every request is audited in that tenant only', async () => {
    const { token, sessionId } = await f.staffSignIn();
    const { grantId, expiresAt } = await staff.begin({
      sessionId,
      tenantId: f.acme.id,
      access: 'act_as',
      reason: REASON,
      minutes: 20,
    });
    expect(expiresAt.getTime() - Date.now()).toBeLessThanOrEqual(20 * 60_000 + 5000);
    const resolver = f.resolver();
    const r = await resolver.resolve({ headers: { ...bearer(token), 'x-tenant': 'acme' } });
    expect(r).toMatchObject({
      tenantId: f.acme.id,
      principal: {
        kind: 'staff',
        userId: f.users.staff,
        sessionId,
        grant: { id: grantId, access: 'act_as', reason: REASON },
      },
    });
    // the grant is for acme only
    await expect(resolver.resolve({ headers: { ...bearer(token), 'x-tenant': 'globex' } })).rejects.toMatchObject({
      code: 'STAFF_ACCESS_REQUIRED',
    });

    const acmeLog = await runAs(f.acme.id, () => new AuditLog(f.pool).list());
    expect(acmeLog[0]).toMatchObject({
      actorKind: 'staff',
      actorId: f.users.staff,
      action: 'staff.access.begin',
      reason: REASON,
      detail: { grant_id: grantId, access: 'act_as' },
    });
    const globexLog = await runAs(f.globex.id, () => new AuditLog(f.pool).list());
    expect(globexLog.filter((e) => e.detail.grant_id === grantId)).toEqual([]);

    expect(await staff.end({ sessionId, grantId })).toBe(true);
    expect(await staff.end({ sessionId, grantId })).toBe(false);
    await expect(resolver.resolve({ headers: { ...bearer(token), 'x-tenant': 'acme' } })).rejects.toMatchObject({
      code: 'STAFF_ACCESS_REQUIRED',
    });
    expect((await runAs(f.acme.id, () => new AuditLog(f.pool).list({ limit: 1 })))[0]).toMatchObject({
      action: 'staff.access.end',
    });
  });

  it('a grant ends when it expires, when the staff session ends, or when the staff member is disabled', async () => {
    const resolver = f.resolver();
    const expiring = await f.staffSignIn();
    const g1 = await staff.begin({
      sessionId: expiring.sessionId,
      tenantId: f.acme.id,
      access: 'act_as',
      reason: REASON,
    });
    await f.db.admin.query(
      `update tenantry_private.staff_grants set started_at = now() - interval '2 hours', expires_at = now() - interval '1 second' where id = $1`,
      [g1.grantId],
    );
    await expect(
      resolver.resolve({ headers: { ...bearer(expiring.token), 'x-tenant': f.acme.id } }),
    ).rejects.toMatchObject({ code: 'STAFF_ACCESS_REQUIRED' });

    const signedOut = await f.staffSignIn();
    await staff.begin({ sessionId: signedOut.sessionId, tenantId: f.acme.id, access: 'act_as', reason: REASON });
    await new Sessions(f.pool).end(signedOut.sessionId);
    await expect(
      resolver.resolve({ headers: { ...bearer(signedOut.token), 'x-tenant': 'acme' } }),
    ).rejects.toMatchObject({ code: 'SESSION_REVOKED' });

    const directory = new StaffDirectory(f.db.owner);
    const { randomUUID } = await import('node:crypto');
    const temp = randomUUID();
    await directory.add(temp);
    const leaver = await f.staffSignIn(temp);
    await staff.begin({ sessionId: leaver.sessionId, tenantId: f.acme.id, access: 'act_as', reason: REASON });
    expect((await resolver.resolve({ headers: { ...bearer(leaver.token), 'x-tenant': 'acme' } })).principal.kind).toBe(
      'staff',
    );
    expect(await directory.disable(temp)).toBe(true);
    await expect(resolver.resolve({ headers: { ...bearer(leaver.token), 'x-tenant': 'acme' } })).rejects.toMatchObject({
      code: 'SESSION_REVOKED',
    });
    await expect(
      staff.begin({ sessionId: leaver.sessionId, tenantId: f.acme.id, access: 'act_as', reason: REASON }),
    ).rejects.toMatchObject({ code: 'STAFF_ACCESS_REQUIRED' });
  });

  it('a member session cannot open staff access, nor can a made-up session id', async () => {
    const { sessionId } = await f.signIn(f.users.alice, f.acme.id);
    await expect(
      staff.begin({ sessionId, tenantId: f.globex.id, access: 'act_as', reason: REASON }),
    ).rejects.toMatchObject({ code: 'STAFF_ACCESS_REQUIRED' });
    const { randomUUID } = await import('node:crypto');
    await expect(
      staff.begin({ sessionId: randomUUID(), tenantId: f.globex.id, access: 'read', reason: REASON }),
    ).rejects.toMatchObject({ code: 'STAFF_ACCESS_REQUIRED' });
    // a non-staff user cannot even get a staff session
    await expect(
      new Sessions(f.db.owner).start({ userId: f.users.alice, kind: 'staff', ttlSeconds: 600 }),
    ).rejects.toMatchObject({ code: '42501' });
  });
});

describe('the audit log', () => {
  it('is append-only, even for the owner, and written by the app only through the function', async () => {
    await runAs(f.acme.id, () =>
      new AuditLog(f.pool).record({
        actorKind: 'user',
        actorId: f.users.alice,
        action: 'member.invited',
        detail: { role: 'member' },
      }),
    );
    await expect(f.db.owner.query(`update tenantry.audit_log set action = 'tampered'`)).rejects.toMatchObject({
      code: '42501',
    });
    await expect(f.db.owner.query(`delete from tenantry.audit_log`)).rejects.toMatchObject({ code: '42501' });
    await expect(f.db.owner.query(`truncate tenantry.audit_log`)).rejects.toMatchObject({ code: '42501' });
    await expect(
      runAs(f.acme.id, () =>
        f.pool.query(
          `insert into tenantry.audit_log (tenant_id, actor_kind, action) values (tenantry.current_tenant_id(), 'user', 'x')`,
        ),
      ),
    ).rejects.toMatchObject({ code: '42501' });
    await expect(runAs(f.acme.id, () => f.pool.query(`delete from tenantry.audit_log`))).rejects.toMatchObject({
      code: '42501',
    });
    const { rows } = await f.db.admin.query(
      `select count(*)::int as n from tenantry.audit_log where action = 'member.invited'`,
    );
    expect(rows[0].n).toBe(1);
  });

  it('a tenant reads only its own entries; no tenant reads nothing', async () => {
    await runAs(f.globex.id, () =>
      new AuditLog(f.pool).record({ actorKind: 'user', actorId: f.users.grace, action: 'globex.secret-thing' }),
    );
    const acme = await runAs(f.acme.id, () => f.pool.query(`select action from tenantry.audit_log`));
    expect(acme.rows.map((r) => r.action)).not.toContain('globex.secret-thing');
    expect((await f.pool.query(`select count(*)::int as n from tenantry.audit_log`)).rows[0].n).toBe(0);
  });

  it('lists newest first by number (entry 10 before entry 9), and pages with before', async () => {
    const log = new AuditLog(f.pool);
    for (let i = 0; i < 12; i++)
      await runAs(f.acme.id, () =>
        log.record({ actorKind: 'user', actorId: f.users.alice, action: 'paging.test', detail: { i } }),
      );
    const first = await runAs(f.acme.id, () => log.list({ limit: 5 }));
    const ids = first.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((x, y) => y - x));
    expect(first[0]!.detail).toEqual({ i: 11 });
    const next = await runAs(f.acme.id, () => log.list({ limit: 5, before: first.at(-1)!.id }));
    expect(next[0]!.detail).toEqual({ i: 6 });
    expect(Number(next[0]!.id)).toBeLessThan(Number(first.at(-1)!.id));
  });

  it("refuses staff entries that do not name the grant's live session, even while the grant is open", async () => {
    const { sessionId } = await f.staffSignIn();
    const { grantId } = await staff.begin({ sessionId, tenantId: f.acme.id, access: 'act_as', reason: REASON });
    const log = new AuditLog(f.pool);
    // injected SQL knows the staff member's id, not their session: refused
    await expect(
      runAs(f.acme.id, () => log.record({ actorKind: 'staff', actorId: f.users.staff, action: 'staff.request' })),
    ).rejects.toMatchObject({ code: 'STAFF_ACCESS_REQUIRED' });
    const otherSession = (await f.staffSignIn()).sessionId;
    await expect(
      runAs(f.acme.id, () =>
        log.record({ actorKind: 'staff', actorId: f.users.staff, action: 'staff.request', sessionId: otherSession }),
      ),
    ).rejects.toMatchObject({ code: 'STAFF_ACCESS_REQUIRED' });
    expect(
      await runAs(f.acme.id, () =>
        log.record({ actorKind: 'staff', actorId: f.users.staff, action: 'staff.request', sessionId }),
      ),
    ).toMatch(/^\d+$/);
    await staff.end({ sessionId, grantId });
  });

  it('refuses invented staff entries: staff actions need an open grant of that staff member on this tenant', async () => {
    await expect(
      runAs(f.globex.id, () =>
        new AuditLog(f.pool).record({ actorKind: 'staff', actorId: f.users.staff, action: 'staff.request' }),
      ),
    ).rejects.toMatchObject({ code: 'STAFF_ACCESS_REQUIRED' });
    await expect(
      runAs(f.acme.id, () => f.pool.query(`select tenantry.record_audit('system', null, 'tenant.purged', null, '{}')`)),
    ).rejects.toMatchObject({ code: '42501' });
  });
});

describe('support reads (the support role)', () => {
  it('see nothing without an open read grant, then one tenant read-only, audited', async () => {
    // no grant: the restrictive policy hides every row, even with a valid context
    const before = await runAs(f.acme.id, () => f.supportPool.query('select count(*)::int as n from public.members'));
    expect(before.rows[0].n).toBe(0);

    const { sessionId } = await f.staffSignIn();
    const seen = await staff.read({ sessionId, tenantId: f.acme.id, reason: REASON }, async (db) => {
      const mine = await db.query<{ tenant_id: string }>('select tenant_id from public.members');
      // writes are refused: the support role has SELECT only
      await expect(db.query(`update public.members set role = 'owner'`)).rejects.toMatchObject({ code: '42501' });
      await expect(db.query(`insert into public.members (user_id) values (gen_random_uuid())`)).rejects.toMatchObject({
        code: '42501',
      });
      // another tenant in the same grant window: nothing (the context is acme's; globex has no grant)
      const other = await runAs(f.globex.id, () => db.query('select count(*)::int as n from public.members'));
      expect(other.rows[0].n).toBe(0);
      return mine.rows;
    });
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen.map((r) => r.tenant_id))).toEqual(new Set([f.acme.id]));
    // closed again afterwards
    const after = await runAs(f.acme.id, () => f.supportPool.query('select count(*)::int as n from public.members'));
    expect(after.rows[0].n).toBe(0);
    const log = await runAs(f.acme.id, () => new AuditLog(f.pool).list({ limit: 2 }));
    expect(log.map((e) => e.action)).toEqual(['staff.access.end', 'staff.access.begin']);
    expect(log[1]).toMatchObject({ reason: REASON, detail: { access: 'read' } });
  });

  it("closes the support role's door when the grant's staff session ends, even before the grant expires", async () => {
    const { sessionId } = await f.staffSignIn();
    await staff.begin({ sessionId, tenantId: f.acme.id, access: 'read', reason: REASON, minutes: 60 });
    expect(
      (await runAs(f.acme.id, () => f.supportPool.query('select count(*)::int as n from public.members'))).rows[0].n,
    ).toBeGreaterThan(0);
    await new Sessions(f.pool).end(sessionId);
    expect(
      (await runAs(f.acme.id, () => f.supportPool.query('select count(*)::int as n from public.members'))).rows[0].n,
    ).toBe(0);
  });

  it('the support role has no way around RLS: no BYPASSRLS, no superuser, no private schema', async () => {
    const { rows } = await f.db.admin.query(
      `select rolsuper, rolbypassrls, rolinherit from pg_roles where rolname = $1`,
      [new URL(f.db.supportUrl!).username],
    );
    expect(rows).toEqual([{ rolsuper: false, rolbypassrls: false, rolinherit: false }]);
    await expect(f.supportPool.query('select * from tenantry_private.staff_grants')).rejects.toMatchObject({
      code: '42501',
    });
    await expect(
      f.supportPool.query(
        `select * from tenantry.begin_staff_access(gen_random_uuid(), gen_random_uuid(), 'read', 'x', 1)`,
      ),
    ).rejects.toMatchObject({ code: '42501' });
    // and without a context it sees nothing even while some grant is open
    const { sessionId } = await f.staffSignIn();
    const { grantId } = await staff.begin({ sessionId, tenantId: f.acme.id, access: 'read', reason: REASON });
    expect((await f.supportPool.query('select count(*)::int as n from public.members')).rows[0].n).toBe(0);
    await staff.end({ sessionId, grantId });
  });
});
