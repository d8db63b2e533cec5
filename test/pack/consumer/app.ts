/**
 * A consumer of the packed `tenantry` tarball (scripts/pack-check.sh): installed into an empty
 * project, compiled under strict TypeScript with skipLibCheck off, then run. It uses the main
 * entry, `tenantry/embedded`, `tenantry/fastify`, `tenantry/express` and `tenantry/testing` the
 * way the docs show, and exits non-zero when any step answers wrongly.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import pg from 'pg';
import { ApiKeys, install, runAs, TenantCatalog, TenantPool, TenantResolver } from 'tenantry';
import { startEmbeddedPostgres } from 'tenantry/embedded';
import { resolutionOfRequest, tenantMiddleware, tenantryErrorHandler } from 'tenantry/express';
import { tenantRoutes } from 'tenantry/fastify';
import { neighbourValues } from 'tenantry/testing';
import { expressTenantRateLimit, fastifyTenantRateLimit, TenantRateLimits } from 'tenantry/limits';
import { hasTracerProvider, installTenantTracing } from 'tenantry/otel';
import { TenantMetrics } from 'tenantry/metrics';
import { usageReport } from 'tenantry/metering';
import { MemoryCacheBackend, TenantCache } from 'tenantry/cache';
import { defineSettings } from 'tenantry/settings';

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`pack check failed: ${what}`);
  console.log(`ok  ${what}`);
}

const server = process.env.DATABASE_URL ? undefined : await startEmbeddedPostgres();
const rootUrl = process.env.DATABASE_URL ?? server!.adminUrl;
const name = `pack_${randomBytes(4).toString('hex')}`;
const password = randomBytes(18).toString('base64url');
const contextSecret = randomBytes(32).toString('base64url');
const urlOf = (user?: string): string => {
  const url = new URL(rootUrl);
  url.pathname = `/${name}`;
  if (user) {
    url.username = user;
    url.password = password;
  }
  return url.toString();
};
const roles = { appRole: `${name}_app`, ownerRole: `${name}_owner` };
const root = new pg.Client({ connectionString: rootUrl });
await root.connect();
await root.query(`create database ${name}`);

const pools: { end(): Promise<void> }[] = [];
try {
  await install(urlOf(), { ...roles, appPassword: password, ownerPassword: password, contextSecret });
  const owner = new pg.Pool({ connectionString: urlOf(roles.ownerRole), max: 2 });
  const app = new TenantPool({ connectionString: urlOf(roles.appRole), contextSecret, max: 4 });
  pools.push(owner, app);
  await owner.query(`
    create table public.notes (
      tenant_id uuid not null default tenantry.current_tenant_id(),
      id bigint generated always as identity,
      body text not null,
      primary key (tenant_id, id));
    select tenantry.register_tenant_table('public.notes');`);
  const catalog = new TenantCatalog(owner);
  const acme = await catalog.create({ slug: 'acme', name: 'Acme' });
  const globex = await catalog.create({ slug: 'globex', name: 'Globex' });
  await runAs(acme.id, () => app.query(`insert into notes (body) values ('acme only')`));
  const seen = await runAs(globex.id, () => app.query('select * from notes'));
  check(seen.rowCount === 0, "globex does not see acme's note");

  const key = await runAs(acme.id, () => new ApiKeys(app).create({ name: 'pack check' }));
  const resolver = new TenantResolver({ pool: app });
  // tenantry/limits: counters in the table the install created (limits migration 001)
  const limits = new TenantRateLimits({
    store: { postgres: owner },
    catalog: owner,
    limits: { api: { durationSeconds: 60 }, web: { durationSeconds: 60 } },
    plans: { free: { api: 1, web: 5 } },
    defaultPlan: 'free',
  });
  await limits.start();

  const fastify = Fastify();
  await fastify.register(async (scope) => {
    tenantRoutes(scope, { resolver });
    fastifyTenantRateLimit(scope, { limits });
    scope.get('/notes', async () => (await app.query('select body from notes')).rows);
  });
  const viaFastify = await fastify.inject({ url: '/notes', headers: { 'x-api-key': key.key } });
  check(
    viaFastify.statusCode === 200 && viaFastify.json()[0]?.body === 'acme only',
    'tenantry/fastify serves the tenant',
  );
  const anonymous = await fastify.inject({ url: '/notes' });
  check(anonymous.statusCode === 401, 'tenantry/fastify refuses no credential');
  const limited = await fastify.inject({ url: '/notes', headers: { 'x-api-key': key.key } });
  check(
    limited.statusCode === 429 && Number(limited.headers['retry-after']) > 0,
    'tenantry/limits answers 429 past the plan',
  );
  await fastify.close();

  const web = express();
  web.use(tenantMiddleware({ resolver }));
  web.use(
    expressTenantRateLimit({
      limits,
      limit: 'web',
      tenantOf: (req: express.Request) => resolutionOfRequest(req).tenantId,
    }),
  );
  web.get('/notes', (_req, res, next) => {
    app.query('select body from notes').then((r) => res.json(r.rows), next);
  });
  web.use(tenantryErrorHandler());
  const listener = web.listen(0, '127.0.0.1');
  await new Promise((resolve) => listener.once('listening', resolve));
  const { port } = listener.address() as AddressInfo;
  const viaExpress = await fetch(`http://127.0.0.1:${port}/notes`, { headers: { 'x-api-key': key.key } });
  const body = (await viaExpress.json()) as { body: string }[];
  check(viaExpress.status === 200 && body[0]?.body === 'acme only', 'tenantry/express serves the tenant');
  listener.close();

  check(neighbourValues('41').includes('42'), 'tenantry/testing loads');

  // the newer subpaths load from the tarball and work with the consumer's own peers
  const tracing = installTenantTracing();
  check(!hasTracerProvider(), 'tenantry/otel loads (no SDK registered here: seen as such)');
  tracing.uninstall();
  const metrics = new TenantMetrics({ topK: 3 }).install();
  await runAs(acme.id, () => app.query('select 1'));
  check((await metrics.registry.metrics()).includes('tenantry_'), 'tenantry/metrics serves its registry');
  metrics.uninstall();
  const usage = await usageReport(owner, { tenantId: acme.id, from: new Date(0), to: new Date(Date.now() + 60_000) });
  check(Array.isArray(usage), 'tenantry/metering reads the ledgers the install created');
  const cache = new TenantCache({ backend: new MemoryCacheBackend() });
  await runAs(acme.id, () => cache.set('k', 'acme value'));
  check((await runAs(globex.id, () => cache.get('k'))) === undefined, 'tenantry/cache keeps tenants apart');
  check(typeof defineSettings === 'function', 'tenantry/settings loads');
} finally {
  // end() resolves before every socket has closed: DROP DATABASE … WITH (FORCE) below may end a
  // backend still closing (57P01), which an idle client reports as an 'error' event
  for (const p of pools) (p as pg.Pool).on('error', () => undefined);
  await Promise.all(pools.map((p) => p.end()));
  await root.query(`drop database ${name} with (force)`);
  await root.query(`drop role if exists ${roles.appRole}; drop role if exists ${roles.ownerRole}`);
  await root.end();
  await server?.stop();
}
console.log('pack check passed');
