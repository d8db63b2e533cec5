/**
 * Staff across tenants (docs/identity-staff.md): staff belong to no tenant; they open a grant on
 * one tenant with a reason for a bounded time, act as it with `X-Tenant` (every request audited),
 * or read it through the read-only support role. The tenant's admins read all of it in their
 * append-only audit log. Served here by the Express adapter (`tenantry/express`).
 *
 *   npx tsx examples/identity/staff.ts
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import express from 'express';
import {
  AuditLog,
  runAs,
  Sessions,
  StaffAccess,
  StaffDirectory,
  TenantCatalog,
  TenantResolver,
  TokenIssuer,
  TokenVerifier,
} from '../../src/index.js';
import { tenantMiddleware, tenantryErrorHandler } from '../../src/identity/express.js';
import { openExampleDatabase } from './example-database.js';

const REASON = 'Ticket #4711: uploads missing since Monday';
const db = await openExampleDatabase();
const server = { close: async () => {} };
try {
  const catalog = new TenantCatalog(db.owner);
  const acme = await catalog.create({ slug: 'acme', name: 'Acme' });
  const globex = await catalog.create({ slug: 'globex', name: 'Globex' });
  const alice = randomUUID(); // acme's admin
  const grace = randomUUID(); // globex's admin
  await db.owner.query(
    `insert into public.members (tenant_id, user_id, role) values ($1, $2, 'admin'), ($3, $4, 'admin')`,
    [acme.id, alice, globex.id, grace],
  );

  // control plane (owner role): sasha is staff; a staff session belongs to no tenant
  const sasha = randomUUID();
  await new StaffDirectory(db.owner).add(sasha);
  const { sessionId } = await new Sessions(db.owner).start({ userId: sasha, kind: 'staff', ttlSeconds: 3600 });
  const jwt = { issuer: 'https://auth.example.app/', audience: 'api.example.app' };
  const secret = randomBytes(32);
  const token = await new TokenIssuer({ ...jwt, algorithm: 'HS256', secret }).issue({
    subject: sasha,
    sessionId,
    claims: { kind: 'staff' },
  });

  const resolver = new TenantResolver({
    pool: db.app,
    tokens: new TokenVerifier({ ...jwt, algorithms: ['HS256'], secret, tenant: 'optional' }), // staff tokens have no tid
    membership: async ({ userId }) =>
      (
        await db.app.query<{ role: string }>(
          'select role from public.members where tenant_id = tenantry.current_tenant_id() and user_id = $1',
          [userId],
        )
      ).rows[0] ?? null,
  });

  // an Express API: the tenant middleware after the body parser, the error handler last
  const app = express();
  app.use(express.json());
  app.use('/api', tenantMiddleware({ resolver }));
  app.get('/api/members', async (_request, response) => {
    const { rows } = await db.app.query<{ n: number }>(
      'select count(*)::int as n from public.members where tenant_id = tenantry.current_tenant_id()',
    );
    response.json({ members: rows[0]!.n });
  });
  app.use(tenantryErrorHandler());
  const listening = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => listening.once('listening', resolve));
  server.close = () => new Promise((resolve) => listening.close(() => resolve()));
  const base = `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;
  const get = async (label: string, headers: Record<string, string>): Promise<void> => {
    const res = await fetch(`${base}/api/members`, { headers: { authorization: `Bearer ${token}`, ...headers } });
    const body = (await res.json()) as { members?: number; error?: { code: string } };
    console.log(`${label.padEnd(48)} → ${res.status} ${body.error?.code ?? `members: ${body.members}`}`);
  };

  await get('staff token, no tenant named', {});
  await get('staff token + X-Tenant: acme, no grant', { 'x-tenant': 'acme' });

  const staff = new StaffAccess({ appPool: db.app, supportPool: db.support });
  for (const [reason, minutes] of [
    ['because', 30],
    [REASON, 600],
  ] as const) {
    try {
      await staff.begin({ sessionId, tenantId: acme.id, access: 'act_as', reason, minutes });
    } catch (error) {
      console.log(`grant with reason "${reason.slice(0, 12)}", ${minutes} min → ${(error as { code: string }).code}`);
    }
  }
  const grant = await staff.begin({ sessionId, tenantId: acme.id, access: 'act_as', reason: REASON, minutes: 15 });
  console.log(`grant opened on acme for 15 minutes: ${grant.grantId.slice(0, 8)}…`);
  await get('staff token + X-Tenant: acme, with the grant', { 'x-tenant': 'acme' });
  await get('staff token + X-Tenant: globex (no grant there)', { 'x-tenant': 'globex' });
  await catalog.suspend(acme.id);
  // the resolver still resolves staff on a suspended tenant, but the database refuses its tenant tables
  await get('staff token + X-Tenant: acme, acme suspended', { 'x-tenant': 'acme' });
  await catalog.resume(acme.id);
  await staff.end({ sessionId, grantId: grant.grantId });
  await get('staff token + X-Tenant: acme, grant ended', { 'x-tenant': 'acme' });

  // support reads: the read-only support role, admitted by the database only while a read grant is open
  const count = 'select count(*)::int as n from public.members where tenant_id = tenantry.current_tenant_id()';
  const outside = await runAs(globex.id, () => db.support.query<{ n: number }>(count));
  console.log(`support role reads globex without a grant → ${outside.rows[0]!.n} rows`);
  const inside = await staff.read(
    { sessionId, tenantId: globex.id, reason: 'Billing report for December' },
    async (support) => {
      const members = (await support.query<{ n: number }>(count)).rows[0]!.n;
      const write = await support.query(`insert into public.members (user_id) values ($1)`, [randomUUID()]).then(
        () => 'written',
        (error: { code: string }) => error.code,
      );
      return { members, write };
    },
  );
  console.log(`support read of globex with a reason → ${inside.members} member(s); an insert → ${inside.write}`);

  // each tenant's admins read their own log: staff access, each staff request, its reason
  const log = new AuditLog(db.app);
  for (const [tenant, id] of [
    ['acme', acme.id],
    ['globex', globex.id],
  ] as const) {
    const entries = await runAs(id, () => log.list({ limit: 10 }));
    console.log(
      `${tenant}'s audit log: ${entries
        .reverse()
        .map((e) => `${e.action}${e.detail.access ? `(${String(e.detail.access)})` : ''}`)
        .join(', ')}`,
    );
  }
  const begin = (await runAs(acme.id, () => log.list())).find((e) => e.action === 'staff.access.begin')!;
  console.log(
    `acme sees who and why: ${begin.actorKind} ${begin.actorId === sasha ? 'sasha' : begin.actorId}, "${begin.reason}"`,
  );

  // nobody rewrites history, not even the owner role; nor invents staff entries without a grant
  for (const [who, attempt] of [
    ['owner role deletes audit entries', () => db.owner.query('delete from tenantry.audit_log')],
    [
      'app role updates audit entries',
      () =>
        runAs(acme.id, () =>
          db.app.query(
            `update tenantry.audit_log set reason = 'nothing to see' where tenant_id = tenantry.current_tenant_id()`,
          ),
        ),
    ],
    [
      'app records a staff entry, no grant',
      () => runAs(acme.id, () => log.record({ actorKind: 'staff', actorId: sasha, action: 'staff.request' })),
    ],
  ] as const) {
    const outcome = await (attempt as () => Promise<unknown>)().then(
      () => 'done',
      (error: { code: string }) => error.code,
    );
    console.log(`${who.padEnd(38)} → ${outcome}`);
  }

  // disabling a staff member ends their sessions' access at once
  await staff.begin({ sessionId, tenantId: acme.id, access: 'act_as', reason: REASON, minutes: 5 });
  await new StaffDirectory(db.owner).disable(sasha);
  await get('staff disabled, X-Tenant: acme', { 'x-tenant': 'acme' });
} finally {
  await server.close();
  await db.close();
}
