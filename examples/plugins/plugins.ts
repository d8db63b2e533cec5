/**
 * Plugins per tenant (docs/plugins.md): a plugin with a tenant table, routes, an event handler
 * and its migration; enabled for one tenant by plan and for another by an admin (audited); a
 * tenant without it gets the 404 of a route that does not exist, and its handlers never run.
 *
 *   npx tsx examples/plugins/plugins.ts
 */
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { migrateLocation, runAs, TenantCatalog } from '../../src/index.js';
import { SettingsFeed } from '../../src/settings/index.js';
import { definePlugin, definePlugins, fastifyPluginRoutes, PluginAdmin, PluginHost } from '../../src/plugins/index.js';
import { openExampleDatabase } from '../identity/example-database.js';

const db = await openExampleDatabase();
const feed = new SettingsFeed({ connectionString: db.ownerUrl });
try {
  // 1. the plugin: its table (a tenant table, RLS forced), its routes, its event handler
  const bookmarks = definePlugin<FastifyRequest, FastifyReply>({
    name: 'bookmarks',
    version: '1.0.0',
    migrations: [
      {
        version: 1001,
        name: 'bookmarks',
        sql: `create table bookmarks (
                tenant_id uuid not null default tenantry.current_tenant_id(),
                id uuid not null default gen_random_uuid(),
                url text not null,
                primary key (tenant_id, id));
              select tenantry.register_tenant_table('bookmarks');`,
      },
    ],
    routes(r) {
      r.get('/bookmarks', async () => (await db.app.query('select url from bookmarks order by url')).rows);
      r.post('/bookmarks', async (request, reply) => {
        const { url } = request.body as { url: string };
        await db.app.query('insert into bookmarks (url) values ($1)', [url]);
        return reply.code(201).send({ url });
      });
    },
    events: { 'user.signed-in': () => console.log('  bookmarks heard user.signed-in') },
  });
  const plugins = definePlugins({ plugins: [bookmarks], plans: { pro: ['bookmarks'] } });

  // 2. its migration, through the tenant-aware migrator (here the shared tables of one database)
  await migrateLocation({ clusters: { home: db.ownerUrl }, cluster: 'home', migrations: plugins.migrations() });

  // 3. tenants: acme on pro (entitled), globex on free (an admin enables it), initech on free
  const catalog = new TenantCatalog(db.owner);
  const acme = await catalog.create({ slug: 'acme', name: 'Acme', settings: { plan: 'pro' } });
  const globex = await catalog.create({ slug: 'globex', name: 'Globex', settings: { plan: 'free' } });
  const initech = await catalog.create({ slug: 'initech', name: 'Initech', settings: { plan: 'free' } });
  await feed.start();
  const host = new PluginHost({ registry: plugins, db: db.owner, feed });
  const admin = new PluginAdmin({ registry: plugins, db: db.owner });
  await admin.enable(globex.id, 'bookmarks', { actor: 'staff:ann', reason: 'trial, ticket 88' });
  for (const t of await Promise.all([acme, globex, initech].map(async (t) => ({ t, p: await admin.list(t.id) }))))
    console.log(`${t.t.slug}: bookmarks ${t.p[0]!.enabled ? 'on' : 'off'} (${t.p[0]!.source})`);

  // 4. the routes in a tenant scope (here: the tenant from a header; in an app, tenantry/fastify)
  const app = Fastify();
  await app.register(async (scope) => {
    scope.addHook('onRoute', (route) => {
      const handler = route.handler as (this: unknown, q: FastifyRequest, r: FastifyReply) => unknown;
      route.handler = function (request, reply) {
        return runAs(String(request.headers['x-tenant']), () => handler.call(this, request, reply));
      };
    });
    fastifyPluginRoutes(scope, host);
  });
  const call = async (tenant: { id: string; slug: string }, method: 'GET' | 'POST', payload?: object) => {
    const res = await app.inject({ method, url: '/bookmarks', headers: { 'x-tenant': tenant.id }, payload });
    console.log(`${tenant.slug} ${method} /bookmarks → ${res.statusCode} ${res.body}`);
  };
  await call(acme, 'POST', { url: 'https://acme.example/a' });
  await call(globex, 'POST', { url: 'https://globex.example/g' });
  await call(initech, 'POST', { url: 'https://initech.example/i' });
  await call(acme, 'GET');
  await call(initech, 'GET');

  // 5. events: only the tenants that have the plugin run its handlers
  for (const t of [acme, initech]) {
    const result = await runAs(t.id, () => host.emit('user.signed-in', {}));
    console.log(
      `${t.slug} emit user.signed-in → ran [${result.ran.join(', ')}], skipped [${result.skipped.join(', ')}]`,
    );
  }

  // 6. the audit: who enabled it, when, why
  const [change] = await admin.history(globex.id, { plugin: 'bookmarks' });
  console.log(`globex history: ${change!.change} by ${change!.actor}: ${change!.reason}`);
  await app.close();
  host.close();
} finally {
  await feed.close();
  await db.close();
}
