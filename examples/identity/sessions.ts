/**
 * Sessions and one-time codes (docs/identity-sessions.md): a token names a server-side session
 * that every request checks, so sign-out and member removal take effect on the next request;
 * one-time codes (invitations) are spent once. The app role can end sessions and spend codes,
 * but cannot start a session nor read what tenantry_private stores.
 *
 *   npx tsx examples/identity/sessions.ts
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  OneTimeCodes,
  runAs,
  Sessions,
  TenantCatalog,
  TenantResolver,
  TokenIssuer,
  TokenVerifier,
} from '../../src/index.js';
import { openExampleDatabase } from './example-database.js';

const db = await openExampleDatabase();
try {
  const catalog = new TenantCatalog(db.owner);
  const acme = await catalog.create({ slug: 'acme', name: 'Acme' });
  const globex = await catalog.create({ slug: 'globex', name: 'Globex' });
  const alice = randomUUID();
  await db.owner.query(`insert into public.members (tenant_id, user_id, role) values ($1, $2, 'admin')`, [
    acme.id,
    alice,
  ]);

  const jwt = { issuer: 'https://auth.example.app/', audience: 'api.example.app' };
  const secret = randomBytes(32);
  const issuer = new TokenIssuer({ ...jwt, algorithm: 'HS256', secret, ttlSeconds: 3600 });
  const resolver = new TenantResolver({
    pool: db.app,
    tokens: new TokenVerifier({ ...jwt, algorithms: ['HS256'], secret }),
    membership: async ({ userId }) =>
      (
        await db.app.query<{ role: string }>(
          'select role from public.members where tenant_id = tenantry.current_tenant_id() and user_id = $1',
          [userId],
        )
      ).rows[0] ?? null,
  });
  const check = async (label: string, token: string): Promise<void> => {
    const outcome = await resolver.resolve({ headers: { authorization: `Bearer ${token}` } }).then(
      (r) => `${r.tenantId === acme.id ? 'acme' : r.tenantId} as ${r.principal.kind}`,
      (error: { status: number; code: string }) => `${error.status} ${error.code}`,
    );
    console.log(`${label.padEnd(48)} → ${outcome}`);
  };

  // sign-in runs as the owner role (in practice: the application's SECURITY DEFINER sign-in function)
  const signIn = async (): Promise<{ token: string; sessionId: string }> => {
    const { sessionId } = await new Sessions(db.owner).start({
      userId: alice,
      tenantId: acme.id,
      kind: 'user',
      ttlSeconds: 3600,
    });
    return { sessionId, token: await issuer.issue({ subject: alice, tenantId: acme.id, sessionId }) };
  };

  // the app role cannot mint a session for anyone
  const forged = await new Sessions(db.app)
    .start({ userId: alice, tenantId: acme.id, kind: 'user', ttlSeconds: 3600 })
    .then(
      () => 'started',
      (error: { code: string }) => error.code,
    );
  console.log(`app role starts a session → ${forged} (permission denied)`);

  const first = await signIn();
  await check("alice's token", first.token);
  const appSessions = new Sessions(db.app);
  console.log(`sign-out (app role ends the session) → ${await appSessions.end(first.sessionId)}`);
  await check("alice's token after sign-out (not expired)", first.token);
  const noSid = await issuer.issue({ subject: alice, tenantId: acme.id });
  await check('a token that names no session', noSid);

  // removing a member ends their sessions in that tenant; the other tenant cannot end them
  const second = await signIn();
  console.log(
    `globex ends alice's sessions → ${await runAs(globex.id, () => appSessions.endMemberSessions(alice))} ended`,
  );
  await check("alice's new token", second.token);
  await db.owner.query('delete from public.members where tenant_id = $1 and user_id = $2', [acme.id, alice]);
  await check("alice's new token, membership removed", second.token);
  console.log(`acme ends alice's sessions → ${await runAs(acme.id, () => appSessions.endMemberSessions(alice))} ended`);
  await check("alice's new token, sessions ended", second.token);

  // one-time codes: an invitation issued inside acme, spent once, by whoever holds the code
  const codes = new OneTimeCodes(db.app);
  const invite = await runAs(acme.id, () =>
    codes.issue({ purpose: 'invite', payload: { email: 'newbie@example.test', role: 'member' }, ttlSeconds: 3600 }),
  );
  console.log(
    `acme issues an invitation: a code of ${invite.code.length} characters (128 bits), expires ${invite.expiresAt.toISOString().slice(0, 10)}`,
  );
  const acmeList = await runAs(acme.id, () => codes.list('invite'));
  const globexList = await runAs(globex.id, () => codes.list('invite'));
  console.log(
    `acme lists ${acmeList.length} invitation(s) for ${String(acmeList[0]!.payload.email)}, the code in none: ${!JSON.stringify(acmeList).includes(invite.code)}; globex lists ${globexList.length}`,
  );
  console.log(
    `spent as another purpose → ${JSON.stringify(await codes.consume({ purpose: 'email-confirm', code: invite.code }))}`,
  );
  const spent = await codes.consume({ purpose: 'invite', code: invite.code });
  console.log(
    `spent → tenant ${spent?.tenantId === acme.id ? 'acme' : spent?.tenantId}, payload ${JSON.stringify(spent?.payload)}`,
  );
  console.log(
    `spent again (a replay) → ${JSON.stringify(await codes.consume({ purpose: 'invite', code: invite.code }))}`,
  );

  const pending = await runAs(globex.id, () =>
    codes.issue({ purpose: 'invite', payload: { email: 'late@example.test' } }),
  );
  await catalog.suspend(globex.id);
  console.log(
    `a code of a suspended tenant → ${JSON.stringify(await codes.consume({ purpose: 'invite', code: pending.code }))}`,
  );

  // without a tenant in context nothing is issued, and tenantry_private stays closed
  for (const [what, attempt] of [
    ['issue a code with no tenant in context', () => codes.issue({ purpose: 'invite' })],
    ['select from tenantry_private.sessions', () => db.app.query('select * from tenantry_private.sessions')],
    [
      'select from tenantry_private.one_time_codes',
      () => db.app.query('select * from tenantry_private.one_time_codes'),
    ],
  ] as const) {
    const outcome = await (attempt as () => Promise<unknown>)().then(
      () => 'done',
      (error: { code: string }) => error.code,
    );
    console.log(`app role: ${what.padEnd(44)} → ${outcome}`);
  }
} finally {
  await db.close();
}
