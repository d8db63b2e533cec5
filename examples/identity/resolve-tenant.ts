/**
 * How a request finds its tenant (docs/identity.md): a member's token, the host, and a header
 * must all agree; conflicts are refused, a header choice is not trusted from a member, and the
 * tenant's status, the session and the membership are checked on every request. Then the same
 * resolver behind the Fastify adapter, where each handler runs as the tenant.
 *
 *   npx tsx examples/identity/resolve-tenant.ts
 */
import { randomBytes, randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import {
  currentTenant,
  Sessions,
  TenantryError,
  TenantCatalog,
  TenantResolver,
  TokenIssuer,
  TokenVerifier,
  type RequestFacts,
} from '../../src/index.js';
import { resolutionOf, tenantRoutes } from '../../src/identity/fastify.js';
import { openExampleDatabase } from './example-database.js';

const db = await openExampleDatabase();
try {
  // control plane (owner role): two tenants, alice a member of acme only
  const catalog = new TenantCatalog(db.owner);
  const acme = await catalog.create({ slug: 'acme', name: 'Acme' });
  const globex = await catalog.create({ slug: 'globex', name: 'Globex' });
  const alice = randomUUID();
  await db.owner.query(`insert into public.members (tenant_id, user_id, role) values ($1, $2, 'admin')`, [
    acme.id,
    alice,
  ]);

  // tokens: HS256 here; any TokenVerifier (JWKS, public key) fits (docs/identity-jwt.md)
  const jwt = { issuer: 'https://auth.example.app/', audience: 'api.example.app' };
  const secret = randomBytes(32);
  const issuer = new TokenIssuer({ ...jwt, algorithm: 'HS256', secret });
  const verifier = new TokenVerifier({ ...jwt, algorithms: ['HS256'], secret, tenant: 'optional' });

  const resolver = new TenantResolver({
    pool: db.app,
    tokens: verifier,
    host: { baseDomain: 'example.app' },
    // runs inside runAs(tenant): RLS shows this tenant's members only
    membership: async ({ userId }) => {
      const { rows } = await db.app.query<{ role: string }>(
        'select role from public.members where tenant_id = tenantry.home_tenant_id() and user_id = $1',
        [userId],
      );
      return rows[0] ?? null;
    },
  });

  // sign-in (owner role): a server-side session, and a token naming it
  const { sessionId } = await new Sessions(db.owner).start({
    userId: alice,
    tenantId: acme.id,
    kind: 'user',
    ttlSeconds: 3600,
  });
  const token = await issuer.issue({ subject: alice, tenantId: acme.id, sessionId });
  const auth = { authorization: `Bearer ${token}` };

  const show = async (label: string, facts: RequestFacts): Promise<void> => {
    try {
      const r = await resolver.resolve(facts);
      const tenant = r.tenantId === acme.id ? 'acme' : r.tenantId === globex.id ? 'globex' : r.tenantId;
      console.log(`${label.padEnd(44)} → ${tenant} as ${r.principal.kind}, from ${r.sources.join(' + ') || 'nothing'}`);
    } catch (error) {
      const e = error as { code: string; status: number };
      console.log(`${label.padEnd(44)} → ${e.status} ${e.code}`);
    }
  };

  await show("alice's token", { headers: auth });
  await show("alice's token on acme.example.app", { host: 'acme.example.app', headers: auth });
  await show("alice's token on globex.example.app", { host: 'globex.example.app', headers: auth });
  await show("alice's token + X-Tenant: globex", { headers: { ...auth, 'x-tenant': 'globex' } });
  await show('no credentials + X-Tenant: acme', { headers: { 'x-tenant': 'acme' } });
  await show('no credentials on acme.example.app', { host: 'acme.example.app', headers: {} });
  await show('no credentials on nobody.example.app', { host: 'nobody.example.app', headers: {} });

  // a genuine token for globex, where alice is no member
  const elsewhere = await new Sessions(db.owner).start({
    userId: alice,
    tenantId: globex.id,
    kind: 'user',
    ttlSeconds: 3600,
  });
  await show("alice's token for globex", {
    headers: {
      authorization: `Bearer ${await issuer.issue({ subject: alice, tenantId: globex.id, sessionId: elsewhere.sessionId })}`,
    },
  });

  // the status is read on every request: suspending acme takes effect at once
  await catalog.suspend(acme.id);
  await show("alice's token, acme suspended", { headers: auth });
  await catalog.resume(acme.id);

  // The Fastify adapter: every route of the scope is a tenant route, its handler runs as the tenant.
  const app = Fastify();
  // Tenantry's errors carry their status and a stable code; anything else is a generic 500
  app.setErrorHandler((error, _request, reply) =>
    error instanceof TenantryError && error.status < 500
      ? reply.code(error.status).send({ error: { code: error.code, message: error.message } })
      : reply.code(500).send({ error: { code: 'INTERNAL' } }),
  );
  app.register(async (scope) => {
    tenantRoutes(scope, { resolver });
    scope.get('/whoami', async (request) => {
      const { rows } = await db.app.query<{ n: number }>(
        'select count(*)::int as n from public.members where tenant_id = tenantry.current_tenant_id()',
      );
      return {
        tenant: currentTenant() === acme.id ? 'acme' : currentTenant(),
        principal: resolutionOf(request).principal.kind,
        members: rows[0]!.n,
      };
    });
  });
  for (const [label, headers] of [
    ['fastify GET /whoami with the token', auth],
    ['fastify GET /whoami without credentials', {}],
  ] as const) {
    const res = await app.inject({ method: 'GET', url: '/whoami', headers });
    console.log(`${label.padEnd(44)} → ${res.statusCode} ${res.body}`);
  }
  await app.close();
} finally {
  await db.close();
}
