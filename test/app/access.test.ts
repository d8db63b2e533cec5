import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/index.js';
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

interface Mail {
  template: 'invitation' | 'address_confirmation' | 'invitation_existing_account';
  data: { code?: string; confirmation?: string; tenant?: string; role?: string };
}

/** What the server sent to `recipient`, oldest first (read as the owner: a mailer's view). */
async function mailTo(recipient: string): Promise<Mail[]> {
  const { rows } = await f.db.owner.query<Mail>(
    'select template, data from app_private.outbox where recipient = $1 order by id',
    [recipient],
  );
  return rows;
}

async function invite(token: string, email: string, role = 'member'): Promise<string> {
  const res = await f.call('POST', '/invitations', { token, payload: { email, role } });
  expect(res.statusCode, res.body).toBe(201);
  return (res.json() as { code: string }).code;
}

const accept = (payload: Record<string, unknown>) => f.call('POST', '/invitations/accept', { payload });

async function identity(email: string): Promise<{ id: string; password_hash: string } | undefined> {
  const { rows } = await f.db.admin.query<{ id: string; password_hash: string }>(
    'select id, password_hash from app_private.users where email = $1',
    [email],
  );
  return rows[0];
}

async function codeSpent(code: string): Promise<boolean> {
  const { rows } = await f.db.admin.query<{ spent: boolean }>(
    `select consumed_at is not null as spent from tenantry_private.one_time_codes where code_hash = sha256(convert_to($1, 'UTF8'))`,
    [code],
  );
  return rows[0]!.spent;
}

describe('invitations', () => {
  it('a member may not invite; an admin may; the code goes to the address and works once, for it only', async () => {
    const bob = await f.token(f.users.bob, f.a);
    const denied = await f.call('POST', '/invitations', { token: bob, payload: { email: 'newbie@example.test' } });
    expect(denied.statusCode).toBe(403);

    const sam = await f.token(f.users.sam, f.a); // admin of A
    // an admin cannot hand out the owner role
    expect(
      (await f.call('POST', '/invitations', { token: sam, payload: { email: 'boss@example.test', role: 'owner' } }))
        .statusCode,
    ).toBe(403);
    const code = await invite(sam, 'Newbie@Example.test');
    expect(await mailTo('newbie@example.test')).toEqual([
      { template: 'invitation', data: { code, role: 'member', tenant: 'alpha' } },
    ]);

    // wrong email: refused, and the code is NOT spent
    const wrong = await accept({ code, email: 'someone-else@example.test', password: 'long enough pw' });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().error.code).toBe('CODE_INVALID');

    // a new identity first proves the address: the confirmation goes there, nothing is created yet
    const first = await accept({ code, email: 'newbie@example.test', password: 'long enough pw' });
    expect(first.statusCode, first.body).toBe(202);
    expect(first.json().status).toBe('confirmation_sent');
    expect(await identity('newbie@example.test')).toBeUndefined();
    expect(await codeSpent(code)).toBe(false);
    const confirmation = (await mailTo('newbie@example.test')).at(-1)!;
    expect(confirmation).toMatchObject({ template: 'address_confirmation', data: { tenant: 'alpha' } });

    const accepted = await accept({
      code,
      email: 'newbie@example.test',
      password: 'long enough pw',
      displayName: 'Newbie',
      confirmation: confirmation.data.confirmation,
    });
    expect(accepted.statusCode, accepted.body).toBe(201);
    const { token, tenantId } = accepted.json() as { token: string; tenantId: string };
    expect(tenantId).toBe(f.a.id);
    const me = await f.call('GET', '/me', { token });
    expect(me.json()).toMatchObject({ role: 'member', tenant: { id: f.a.id }, user: { email: 'newbie@example.test' } });

    // replay: refused, nothing changes
    const before = await members(f.a.id);
    const replay = await accept({
      code,
      email: 'newbie@example.test',
      password: 'long enough pw',
      confirmation: confirmation.data.confirmation,
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

  it('an existing user joins with their password, which the accept never changes', async () => {
    const carol = await f.token(f.users.carol, f.b);
    const code = await invite(carol, f.users.bob.email);
    const { password_hash: hash } = (await identity(f.users.bob.email))!;
    const bad = await accept({ code, email: f.users.bob.email, password: 'not bobs password' });
    expect(bad.statusCode).toBe(202); // the same answer as an address without an account
    expect((await members(f.b.id)).map((m) => m.user_id)).not.toContain(f.users.bob.id);
    // bob is told, at his address, to accept with his password (no code: he has nothing to create)
    expect((await mailTo(f.users.bob.email)).at(-1)).toEqual({
      template: 'invitation_existing_account',
      data: { tenant: 'bravo' },
    });
    const good = await accept({ code, email: f.users.bob.email, password: PASSWORD, displayName: 'Not Bob' });
    expect(good.statusCode).toBe(201);
    expect((await members(f.b.id)).map((m) => m.user_id)).toContain(f.users.bob.id);
    expect((await identity(f.users.bob.email))!.password_hash).toBe(hash);
    const joined = await f.db.admin.query(
      'select display_name from public.members where tenant_id = $1 and user_id = $2',
      [f.b.id, f.users.bob.id],
    );
    expect(joined.rows[0].display_name).toBe('Bob'); // the identity's, not the caller's
  });
});

describe("invitations, from the inviting admin's side", () => {
  const attackerPassword = 'chosen by the admin';

  it('an admin holding the code cannot create the identity of an address he does not control', async () => {
    const sam = await f.token(f.users.sam, f.a); // admin of A: invites an address, keeps the code
    const victim = 'victim@example.test';
    const code = await invite(sam, victim);
    expect((await accept({ code, email: victim, password: attackerPassword, displayName: 'Victim' })).statusCode).toBe(
      202,
    );
    // guessed, made-up and other invitations' confirmations: refused, nothing created or spent
    const other = await invite(sam, 'other-victim@example.test');
    await accept({ code: other, email: 'other-victim@example.test', password: attackerPassword });
    const foreign = (await mailTo('other-victim@example.test')).at(-1)!.data.confirmation!;
    for (const confirmation of [foreign, code, 'A'.repeat(22), other]) {
      const res = await accept({ code, email: victim, password: attackerPassword, confirmation });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('CONFIRMATION_INVALID');
    }
    expect(await identity(victim)).toBeUndefined();
    expect(await codeSpent(code)).toBe(false);
    // the confirmation went to the address only; the app role (the server, injected SQL) cannot read it
    expect((await mailTo(victim)).map((m) => m.template)).toEqual(['invitation', 'address_confirmation']);
    await expect(f.appPool.query('select data from app_private.outbox')).rejects.toMatchObject({ code: '42501' });
    await expect(f.appPool.query('select * from app_private.address_confirmations')).rejects.toMatchObject({
      code: '42501',
    });

    // the address's owner accepts with the confirmation, and the password is theirs
    const confirmation = (await mailTo(victim)).at(-1)!.data.confirmation!;
    const owned = await accept({ code, email: victim, password: 'the owner chose this', confirmation });
    expect(owned.statusCode, owned.body).toBe(201);
    const signIn = (password: string) =>
      f.call('POST', '/auth/sign-in', { payload: { email: victim, password, tenant: 'alpha' } });
    expect((await signIn(attackerPassword)).statusCode).toBe(401);
    expect((await signIn('the owner chose this')).statusCode).toBe(200);
    // the same confirmation does not serve twice, nor another invitation to the same address
    const again = await invite(await f.token(f.users.carol, f.b), victim);
    expect((await accept({ code: again, email: victim, password: attackerPassword, confirmation })).statusCode).toBe(
      400,
    );
  });

  it('answers an address with an account exactly like one without: status, body, headers, timing', async () => {
    const sam = await f.token(f.users.sam, f.a);
    const fresh = 'nobody-yet@example.test';
    const existing = f.users.carol.email; // an account, not a member of A
    const codes = { fresh: await invite(sam, fresh), existing: await invite(sam, existing) };
    const hashBefore = (await identity(existing))!.password_hash;
    const shape = (res: Awaited<ReturnType<typeof accept>>) => {
      const { date: _date, ...headers } = res.headers;
      return { status: res.statusCode, body: res.body, headers };
    };
    const attempts: Array<(email: 'fresh' | 'existing') => Record<string, unknown>> = [
      (w) => ({ code: codes[w], email: w === 'fresh' ? fresh : existing, password: attackerPassword }),
      (w) => ({
        code: codes[w],
        email: w === 'fresh' ? fresh : existing,
        password: attackerPassword,
        displayName: 'X',
      }),
      (w) => ({
        code: codes[w],
        email: w === 'fresh' ? fresh : existing,
        password: attackerPassword,
        confirmation: 'B'.repeat(22),
      }),
    ];
    for (const attempt of attempts) {
      const a = shape(await accept(attempt('fresh')));
      const b = shape(await accept(attempt('existing')));
      expect(b).toEqual(a);
      expect(a.status === 202 || a.status === 400).toBe(true);
    }

    // timing: one bcrypt comparison either way (a dummy hash for the address without an account)
    const times = { fresh: [] as number[], existing: [] as number[] };
    for (let i = 0; i < 7; i++) {
      for (const which of ['fresh', 'existing'] as const) {
        const t0 = performance.now();
        expect((await accept(attempts[0]!(which))).statusCode).toBe(202);
        times[which].push(performance.now() - t0);
      }
    }
    // the fastest of each: a loaded machine only adds time, so the minima are the work itself
    const ratio = Math.min(...times.fresh) / Math.min(...times.existing);
    // generous bounds for a noisy machine; skipping bcrypt for one side would be ~10x
    expect(ratio).toBeGreaterThan(0.4);
    expect(ratio).toBeLessThan(2.5);

    // nothing created, nothing joined, nothing spent, the existing password untouched; the
    // addresses got at most one message each a minute, however often the admin called
    expect(await identity(fresh)).toBeUndefined();
    expect((await identity(existing))!.password_hash).toBe(hashBefore);
    expect((await members(f.a.id)).map((m) => m.user_id)).not.toContain(f.users.carol.id);
    expect(await codeSpent(codes.fresh)).toBe(false);
    expect(await codeSpent(codes.existing)).toBe(false);
    expect((await mailTo(fresh)).map((m) => m.template)).toEqual(['invitation', 'address_confirmation']);
    expect((await mailTo(existing)).filter((m) => m.data.tenant === 'alpha').map((m) => m.template)).toEqual([
      'invitation',
      'invitation_existing_account',
    ]);
  });

  it('does not take over an identity made for the address while the confirmed accept runs', async () => {
    const sam = await f.token(f.users.sam, f.a);
    const address = 'racing@example.test';
    const code = await invite(sam, address);
    await accept({ code, email: address, password: attackerPassword });
    const confirmation = (await mailTo(address)).at(-1)!.data.confirmation!;
    const other = await f.db.owner.connect();
    try {
      // another path creates the identity and has not committed yet: the accept cannot see it
      await other.query('begin');
      await other.query(
        `insert into app_private.users (email, password_hash, display_name)
         values ($1, public.crypt('made elsewhere', public.gen_salt('bf', 8)), 'First')`,
        [address],
      );
      const pending = accept({ code, email: address, password: 'the owner chose this', confirmation });
      // bounded: until the accept waits on the uncommitted row
      const deadline = Date.now() + 10_000;
      for (;;) {
        const { rows } = await f.db.admin.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%accept_invitation%'`,
        );
        if (rows[0]!.n > 0) break;
        if (Date.now() > deadline) throw new Error('the accept never waited on the row');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await other.query('commit');
      const res = await pending;
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('CONFIRMATION_INVALID');
    } finally {
      other.release();
    }
    const { rows } = await f.db.admin.query<{ kept: boolean }>(
      `select password_hash = public.crypt('made elsewhere', password_hash) as kept from app_private.users where email = $1`,
      [address],
    );
    expect(rows[0]!.kept).toBe(true);
    expect(await codeSpent(code)).toBe(false);
  });

  it('bounds the mail one invitation can cause: one message a minute, ten in all', async () => {
    const sam = await f.token(f.users.sam, f.a);
    const target = 'flooded@example.test';
    const code = await invite(sam, target);
    for (let i = 0; i < 15; i++) {
      expect((await accept({ code, email: target, password: attackerPassword })).statusCode).toBe(202);
      expect((await accept({ code, email: target, password: attackerPassword })).statusCode).toBe(202); // same minute
      // a minute passes (the outbox's clock moved back instead of waiting)
      await f.db.owner.query(
        `update app_private.outbox set created_at = created_at - interval '2 minutes' where recipient = $1`,
        [target],
      );
    }
    const mail = await mailTo(target);
    expect(mail.filter((m) => m.template === 'address_confirmation')).toHaveLength(10);
    expect(mail.filter((m) => m.template === 'invitation')).toHaveLength(1);
  });

  it("the app role delivers only its own tenant's live invitations, once each", async () => {
    const sam = await f.token(f.users.sam, f.a);
    const code = await invite(sam, 'once@example.test');
    const send = (tenantId: string, value: string) =>
      runAs(tenantId, () => f.appPool.query<{ sent: boolean }>('select app.send_invitation($1) as sent', [value]));
    expect((await send(f.b.id, code)).rows[0]!.sent).toBe(false); // another tenant's code
    expect((await send(f.a.id, code)).rows[0]!.sent).toBe(false); // already sent
    expect((await send(f.a.id, 'C'.repeat(22))).rows[0]!.sent).toBe(false); // unknown
    expect((await mailTo('once@example.test')).length).toBe(1);
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

describe('audit log ids', () => {
  it("number each tenant's log on its own: B's activity leaves no gap in A's ids; before pages", async () => {
    const alice = await f.token(f.users.alice, f.a);
    const carol = await f.token(f.users.carol, f.b);
    const key = async (token: string, name: string) =>
      expect((await f.call('POST', '/api-keys', { token, payload: { name } })).statusCode).toBe(201);
    const ids = async (token: string, query = 'limit=500') =>
      (
        (await f.call('GET', `/audit-log?${query}`, { token })).json().items as Array<{ id: string; action: string }>
      ).map((e) => Number(e.id));
    await key(alice, 'a-1');
    for (let i = 0; i < 25; i++) await key(carol, `b-${i}`); // B is busy
    await key(alice, 'a-2');
    const [second, first] = await ids(alice, 'limit=2');
    expect(second).toBe(first! + 1); // nothing of B's 25 entries shows

    // A's whole log: 1..n, every number once; paging with before walks it all
    const all = await ids(alice);
    expect([...all].sort((x, y) => x - y)).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    const paged: number[] = [];
    let before: string | null = null;
    do {
      const res = await f.call('GET', `/audit-log?limit=3${before ? `&before=${before}` : ''}`, { token: alice });
      const body = res.json() as { items: Array<{ id: string }>; nextBefore: string | null };
      paged.push(...body.items.map((e) => Number(e.id)));
      before = body.nextBefore;
    } while (before !== null);
    expect(paged).toEqual(all);
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
    // GET /me names the staff member (their own email and name, not an empty one)
    const me = await f.call('GET', '/me', { token: staff, headers: { 'x-tenant': 'alpha' } });
    expect(me.statusCode, me.body).toBe(200);
    expect(me.json()).toMatchObject({ role: 'staff', user: { email: expect.stringMatching(/@/) } });
    expect(me.json().user.displayName).not.toBe('');
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

  it('refuses invisible reasons with REASON_INVALID on every staff route, and records nothing', async () => {
    const staff = await f.staffToken();
    const state = async () =>
      (
        await f.db.admin.query(
          `select (select count(*) from tenantry_private.staff_grants)::int as grants, (select count(*) from tenantry.audit_log)::int as entries`,
        )
      ).rows[0];
    const before = await state();
    for (const reason of ['\u200B'.repeat(12), ' '.repeat(12), '\u0301'.repeat(12), '\u3164'.repeat(12), 'short']) {
      for (const [url, payload] of [
        ['/staff/access', { tenant: 'alpha', reason }],
        ['/staff/access', { tenant: 'alpha', access: 'read', reason }],
        ['/staff/tenants/bravo/summary', { reason }],
        ['/staff/tenants/no-such-tenant/summary', { reason }], // refused before the tenant is looked up
      ] as const) {
        const res = await f.call('POST', url, { token: staff, payload });
        expect(res.statusCode, `${url} ${JSON.stringify(reason)}`).toBe(400);
        expect(res.json().error).toMatchObject({ code: 'REASON_INVALID', field: 'reason' });
      }
    }
    expect(await state()).toEqual(before);
  });

  it('a read grant does not open requests as the tenant, and the refusal says why', async () => {
    const staff = await f.staffToken();
    const grant = await f.call('POST', '/staff/access', {
      token: staff,
      payload: { tenant: 'bravo', access: 'read', reason, minutes: 5 },
    });
    expect(grant.statusCode).toBe(201);
    const refused = await f.call('GET', '/recordings', { token: staff, headers: { 'x-tenant': 'bravo' } });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.code).toBe('STAFF_ACCESS_REQUIRED');
    expect(refused.json().error.message).toMatch(/read-only/);
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
