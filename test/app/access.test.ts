import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppFixture, nobody, PASSWORD, type AppFixture } from './support/app-fixture.js';

let f: AppFixture;
beforeAll(async () => {
  f = await createAppFixture();
});
afterAll(async () => {
  await f?.close();
});

async function signIn(email: string, tenant: string, password = PASSWORD): Promise<string> {
  const res = await f.call('POST', '/auth/sign-in', { payload: { email, password, tenant } });
  expect(res.statusCode, res.body).toBe(200);
  return res.json().token as string;
}

async function members(tenantId: string): Promise<Array<Record<string, unknown>>> {
  const { rows } = await f.db.admin.query(
    'select user_id, role, removed_at from public.members where tenant_id = $1 order by user_id',
    [tenantId],
  );
  return rows;
}

describe('sessions', () => {
  it('sign-out ends the session: the same token is refused at once', async () => {
    const token = await signIn(f.users.bob.email, 'alpha');
    expect((await f.call('GET', '/me', { token })).statusCode).toBe(200);
    expect((await f.call('POST', '/auth/sign-out', { token })).statusCode).toBe(204);
    const after = await f.call('GET', '/me', { token });
    expect(after.statusCode).toBe(401);
    expect(after.json().error.code).toBe('SESSION_REVOKED');
  });
});

describe('invitations', () => {
  it('a member may not invite; an admin may, and the code works once, for the invited email only', async () => {
    const bob = await f.token(f.users.bob, f.a);
    const denied = await f.call('POST', '/invitations', { token: bob, payload: { email: 'newbie@example.test' } });
    expect(denied.statusCode).toBe(403);

    const sam = await f.token(f.users.sam, f.a); // admin of A
    // an admin cannot hand out the owner role
    expect(
      (await f.call('POST', '/invitations', { token: sam, payload: { email: 'boss@example.test', role: 'owner' } }))
        .statusCode,
    ).toBe(403);
    const invited = await f.call('POST', '/invitations', {
      token: sam,
      payload: { email: 'Newbie@Example.test', role: 'member' },
    });
    expect(invited.statusCode).toBe(201);
    const { code } = invited.json() as { code: string };

    // wrong email: refused, and the code is NOT spent
    const wrong = await f.call('POST', '/invitations/accept', {
      payload: { code, email: 'someone-else@example.test', password: 'long enough pw', displayName: 'X' },
    });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().error.code).toBe('CODE_INVALID');

    const accepted = await f.call('POST', '/invitations/accept', {
      payload: { code, email: 'newbie@example.test', password: 'long enough pw', displayName: 'Newbie' },
    });
    expect(accepted.statusCode, accepted.body).toBe(201);
    const { token, tenantId } = accepted.json() as { token: string; tenantId: string };
    expect(tenantId).toBe(f.a.id);
    const me = await f.call('GET', '/me', { token });
    expect(me.json()).toMatchObject({ role: 'member', tenant: { id: f.a.id }, user: { email: 'newbie@example.test' } });

    // replay: refused, nothing changes
    const before = await members(f.a.id);
    const replay = await f.call('POST', '/invitations/accept', {
      payload: { code, email: 'newbie@example.test', password: 'long enough pw', displayName: 'Newbie' },
    });
    expect(replay.statusCode).toBe(400);
    expect(replay.json().error.code).toBe('CODE_INVALID');
    expect(await members(f.a.id)).toEqual(before);

    // B never sees A's invitations
    const carol = await f.token(f.users.carol, f.b);
    const listB = await f.call('GET', '/invitations', { token: carol });
    expect((listB.json().items as Array<{ email: string }>).map((i) => i.email)).not.toContain('newbie@example.test');
    const listA = await f.call('GET', '/invitations', { token: sam });
    expect(listA.json().items[0]).toMatchObject({ email: 'newbie@example.test', role: 'member' });
    expect(listA.body).not.toContain(code);
  });

  it('an existing user must prove their password to join', async () => {
    const carol = await f.token(f.users.carol, f.b);
    const { code } = (
      await f.call('POST', '/invitations', { token: carol, payload: { email: f.users.bob.email } })
    ).json() as { code: string };
    const bad = await f.call('POST', '/invitations/accept', {
      payload: { code, email: f.users.bob.email, password: 'not bobs password' },
    });
    expect(bad.statusCode).toBe(400);
    expect((await members(f.b.id)).map((m) => m.user_id)).not.toContain(f.users.bob.id);
    const good = await f.call('POST', '/invitations/accept', {
      payload: { code, email: f.users.bob.email, password: PASSWORD },
    });
    expect(good.statusCode).toBe(201);
    expect((await members(f.b.id)).map((m) => m.user_id)).toContain(f.users.bob.id);
  });
});

describe('member management', () => {
  it('removing a member ends their access on the next request, with the same token', async () => {
    const carol = await f.token(f.users.carol, f.b);
    const samB = await signIn(f.users.sam.email, 'bravo');
    expect((await f.call('GET', '/recordings', { token: samB })).statusCode).toBe(200);
    expect((await f.call('DELETE', `/members/${f.users.sam.id}`, { token: carol })).statusCode).toBe(204);
    const after = await f.call('GET', '/recordings', { token: samB });
    expect(after.statusCode).toBe(401); // the session ended with the membership
    // and a fresh token for B would fail the membership check; A is untouched
    const fresh = await f.call('GET', '/me', { token: await f.token(f.users.sam, f.b) });
    expect(fresh.json().error.code).toBe('NOT_A_MEMBER');
    expect((await f.call('GET', '/me', { token: await f.token(f.users.sam, f.a) })).statusCode).toBe(200);
    const audit = await f.call('GET', '/audit-log?limit=5', { token: carol });
    expect(audit.json().items[0]).toMatchObject({
      action: 'member.removed',
      actorId: f.users.carol.id,
      detail: { userId: f.users.sam.id },
    });
  });

  it("another tenant's member cannot be changed or removed: 404, nothing changes", async () => {
    const alice = await f.token(f.users.alice, f.a);
    const before = await members(f.b.id);
    expect((await f.call('DELETE', `/members/${f.users.carol.id}`, { token: alice })).statusCode).toBe(404);
    expect(
      (await f.call('PATCH', `/members/${f.users.carol.id}`, { token: alice, payload: { role: 'member' } })).statusCode,
    ).toBe(404);
    expect((await f.call('DELETE', `/members/${nobody()}`, { token: alice })).statusCode).toBe(404);
    expect(await members(f.b.id)).toEqual(before);
  });

  it('a tenant keeps an owner; members cannot manage members', async () => {
    const alice = await f.token(f.users.alice, f.a);
    const last = await f.call('PATCH', `/members/${f.users.alice.id}`, { token: alice, payload: { role: 'admin' } });
    expect(last.statusCode).toBe(409);
    expect(last.json().error.code).toBe('LAST_OWNER');
    const bob = await f.token(f.users.bob, f.a);
    expect(
      (await f.call('PATCH', `/members/${f.users.bob.id}`, { token: bob, payload: { role: 'admin' } })).statusCode,
    ).toBe(403);
    const sam = await f.token(f.users.sam, f.a);
    expect((await f.call('DELETE', `/members/${f.users.alice.id}`, { token: sam })).statusCode).toBe(403); // admins do not touch owners
  });
});

describe('API keys through the API', () => {
  it('are shown once, work until revoked, and never cross tenants', async () => {
    const alice = await f.token(f.users.alice, f.a);
    const created = await f.call('POST', '/api-keys', { token: alice, payload: { name: 'uploader' } });
    expect(created.statusCode).toBe(201);
    const { id, key } = created.json() as { id: string; key: string };
    const listed = await f.call('GET', '/api-keys', { token: alice });
    expect(listed.body).not.toContain(key.split('_').slice(2).join('_')); // the secret, which may hold '_' itself
    expect((await f.call('GET', '/recordings', { headers: { 'x-api-key': key } })).statusCode).toBe(200);
    // the key is acme's: on B's resources it sees nothing of B, and with B's token it conflicts
    const carol = await f.token(f.users.carol, f.b);
    const conflict = await f.call('GET', '/recordings', { token: carol, headers: { 'x-api-key': key } });
    expect(conflict.statusCode).toBe(400);
    expect(conflict.json().error.code).toBe('TENANT_CONFLICT');
    expect((await f.call('DELETE', `/api-keys/${id}`, { token: carol })).statusCode).toBe(404);
    expect((await f.call('GET', '/recordings', { headers: { 'x-api-key': key } })).statusCode).toBe(200);
    // an API key is no person: it cannot manage keys
    expect(
      (await f.call('POST', '/api-keys', { headers: { 'x-api-key': key }, payload: { name: 'self-made' } })).statusCode,
    ).toBe(403);
    expect((await f.call('DELETE', `/api-keys/${id}`, { token: alice })).statusCode).toBe(204);
    const revoked = await f.call('GET', '/recordings', { headers: { 'x-api-key': key } });
    expect(revoked.statusCode).toBe(401);
    expect(revoked.json().error.code).toBe('API_KEY_INVALID');
  });
});

describe('staff', () => {
  const reason = 'Ticket 4711: uploads missing since Monday';

  it('act as a tenant only under a grant with a reason; the tenant reads it in its audit log', async () => {
    const staff = await f.staffToken();
    const refused = await f.call('GET', '/recordings', { token: staff, headers: { 'x-tenant': 'alpha' } });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.code).toBe('STAFF_ACCESS_REQUIRED');
    const noReason = await f.call('POST', '/staff/access', { token: staff, payload: { tenant: 'alpha' } });
    expect(noReason.statusCode).toBe(400);
    const shortReason = await f.call('POST', '/staff/access', {
      token: staff,
      payload: { tenant: 'alpha', reason: 'because' },
    });
    expect(shortReason.statusCode).toBe(400);
    const tooLong = await f.call('POST', '/staff/access', {
      token: staff,
      payload: { tenant: 'alpha', reason, minutes: 10_000 },
    });
    expect(tooLong.statusCode).toBe(400);

    const grant = await f.call('POST', '/staff/access', {
      token: staff,
      payload: { tenant: 'alpha', reason, minutes: 10 },
    });
    expect(grant.statusCode).toBe(201);
    const listed = await f.call('GET', '/recordings', { token: staff, headers: { 'x-tenant': 'alpha' } });
    expect(listed.statusCode).toBe(200);
    // not B: the grant names A
    expect((await f.call('GET', '/recordings', { token: staff, headers: { 'x-tenant': 'bravo' } })).statusCode).toBe(
      403,
    );
    // staff cannot own a tenant's resources
    expect(
      (
        await f.call('POST', '/recordings', {
          token: staff,
          headers: { 'x-tenant': 'alpha' },
          payload: { title: 'x', durationSeconds: 1, mimeType: 'audio/ogg' },
        })
      ).statusCode,
    ).toBe(403);

    const alice = await f.token(f.users.alice, f.a);
    const log = (await f.call('GET', '/audit-log?limit=10', { token: alice })).json().items as Array<{
      action: string;
      actorKind: string;
      reason: string;
    }>;
    expect(log.filter((e) => e.actorKind === 'staff').map((e) => e.action)).toEqual(
      expect.arrayContaining(['staff.access.begin', 'staff.request']),
    );
    expect(log.find((e) => e.action === 'staff.access.begin')?.reason).toBe(reason);
    const carol = await f.token(f.users.carol, f.b);
    const bLog = (await f.call('GET', '/audit-log?limit=100', { token: carol })).json().items as Array<{
      actorKind: string;
    }>;
    expect(bLog.filter((e) => e.actorKind === 'staff')).toEqual([]);
    // a plain member cannot read the audit log
    expect((await f.call('GET', '/audit-log', { token: await f.token(f.users.bob, f.a) })).statusCode).toBe(403);

    const { grantId } = grant.json() as { grantId: string };
    expect((await f.call('DELETE', `/staff/access/${grantId}`, { token: staff })).statusCode).toBe(204);
    expect((await f.call('GET', '/recordings', { token: staff, headers: { 'x-tenant': 'alpha' } })).statusCode).toBe(
      403,
    );
  });

  it('support reads are audited and read-only; a member token cannot reach staff routes', async () => {
    const staff = await f.staffToken();
    await f.insertRecordings(f.b, f.users.carol, 2);
    const summary = await f.call('POST', '/staff/tenants/bravo/summary', {
      token: staff,
      payload: { reason: 'Billing report for December' },
    });
    expect(summary.statusCode, summary.body).toBe(200);
    expect(summary.json()).toMatchObject({ tenantId: f.b.id, recordings: (await f.recordingsOf(f.b)).length });
    const carol = await f.token(f.users.carol, f.b);
    const log = (await f.call('GET', '/audit-log?limit=5', { token: carol })).json().items as Array<{
      action: string;
      detail: { access?: string };
    }>;
    expect(log.slice(0, 2).map((e) => e.action)).toEqual(['staff.access.end', 'staff.access.begin']);
    expect(log[1]!.detail.access).toBe('read');

    const alice = await f.token(f.users.alice, f.a);
    for (const [method, url, payload] of [
      ['POST', '/staff/access', { tenant: 'bravo', reason }],
      ['POST', '/staff/tenants/bravo/summary', { reason }],
    ] as const) {
      const res = await f.call(method, url, { token: alice, payload });
      expect(res.statusCode, url).toBe(403);
      expect(res.json().error.code).toBe('STAFF_ONLY');
    }
    expect((await f.call('POST', '/staff/access', { payload: { tenant: 'bravo', reason } })).statusCode).toBe(401);
  });

  it('staff sign-in refuses members and wrong passwords alike', async () => {
    for (const payload of [
      { email: f.users.alice.email, password: PASSWORD },
      { email: f.staff.email, password: 'wrong password' },
    ]) {
      const res = await f.call('POST', '/staff/sign-in', { payload });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('INVALID_CREDENTIALS');
    }
    const ok = await f.call('POST', '/staff/sign-in', { payload: { email: f.staff.email, password: PASSWORD } });
    expect(ok.statusCode).toBe(200);
    // a staff token is no member token: without a tenant it is refused on tenant routes
    expect((await f.call('GET', '/me', { token: ok.json().token })).json().error.code).toBe('TENANT_REQUIRED');
  });
});
