import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import pg from 'pg';
import { runAs, TenantCatalog, type TenantPool } from '../../src/index.js';
import { migrateLocation } from '../../src/tiers/migrate/migrate-location.js';
import { SettingsFeed } from '../../src/settings/index.js';
import {
  definePlugin,
  definePlugins,
  fastifyPluginRoutes,
  PluginAdmin,
  PluginHost,
  type PluginRegistry,
} from '../../src/plugins/index.js';
import type { TenantJobs } from '../../src/jobs/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { settled, testJobs } from '../jobs/support/jobs-harness.js';
import { within } from '../settings/support.js';
import { calls, registryOf } from './support.js';

const who = { actor: 'staff:test', reason: 'ticket 13' };

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

describe('plugin definitions are checked at start, with codes', () => {
  const sql = (t: string) =>
    `create table ${t} (tenant_id uuid not null); select tenantry.register_tenant_table('${t}');`;
  const plugin = (extra: Record<string, unknown> = {}) =>
    definePlugin({ name: 'good_one', version: '1.0.0', ...extra } as never);

  it('refuses bad names, versions, handlers and migrations', () => {
    expect(codeOf(() => definePlugin({ name: 'Bad-Name', version: '1.0.0' }))).toBe('PLUGIN_INVALID');
    expect(codeOf(() => definePlugin({ name: 'ok_name', version: 'one' }))).toBe('PLUGIN_INVALID');
    expect(codeOf(() => plugin({ jobs: { index: {} } }))).toBe('PLUGIN_INVALID');
    expect(codeOf(() => plugin({ events: { 'Bad Event': () => 1 } }))).toBe('PLUGIN_INVALID');
    // below the plugin range, out of order, a table never registered, a table in a global migration
    expect(codeOf(() => plugin({ migrations: [{ version: 5, name: 'x', sql: sql('x') }] }))).toBe(
      'PLUGIN_MIGRATION_INVALID',
    );
    expect(
      codeOf(() =>
        plugin({
          migrations: [
            { version: 1002, name: 'b', sql: sql('b') },
            { version: 1001, name: 'a', sql: sql('a') },
          ],
        }),
      ),
    ).toBe('PLUGIN_MIGRATION_INVALID');
    expect(
      codeOf(() =>
        plugin({ migrations: [{ version: 1001, name: 'a', sql: 'create table a (tenant_id uuid not null);' }] }),
      ),
    ).toBe('PLUGIN_MIGRATION_INVALID');
    expect(codeOf(() => plugin({ migrations: [{ version: 1001, name: 'a', scope: 'global', sql: sql('a') }] }))).toBe(
      'PLUGIN_MIGRATION_INVALID',
    );
    expect(codeOf(() => plugin({ migrations: [{ version: 1001, name: 'a', sql: sql('public.a') }] }))).toBe(
      'PLUGIN_MIGRATION_INVALID',
    );
  });

  it('refuses duplicates across plugins, and a version the application already uses', () => {
    const a = definePlugin({ name: 'alpha', version: '1.0.0', routes: (r) => r.get('/x', () => 1) });
    const b = definePlugin({ name: 'bravo', version: '1.0.0', routes: (r) => r.get('/x', () => 2) });
    expect(codeOf(() => definePlugins({ plugins: [a, a] }))).toBe('PLUGIN_DUPLICATE');
    expect(codeOf(() => definePlugins({ plugins: [a, b] }))).toBe('PLUGIN_DUPLICATE');
    expect(codeOf(() => definePlugins({ plugins: [a], plans: { pro: ['nope'] } }))).toBe('PLUGIN_UNKNOWN');
    const m = (name: string) =>
      definePlugin({ name, version: '1.0.0', migrations: [{ version: 1001, name: 't', sql: sql(`${name}_t`) }] });
    expect(codeOf(() => definePlugins({ plugins: [m('one'), m('two')] }))).toBe('PLUGIN_MIGRATION_INVALID');
    const registry = definePlugins({ plugins: [m('one')] });
    const app = [{ version: 1001, name: '1001_x.sql', scope: 'tenant' as const, sql: 'select 1', checksum: '' }];
    expect(codeOf(() => registry.migrations(app))).toBe('PLUGIN_MIGRATION_INVALID');
    expect(registry.migrations().map((x) => x.name)).toEqual(['1001_one_t.sql']);
    expect(Object.keys(registry.flagDeclarations)).toEqual(['plugins.one']);
  });
});

describe('plugins per tenant', () => {
  let db: TestDatabase;
  let app: TenantPool;
  let registry: PluginRegistry;
  let feed: SettingsFeed;
  let host: PluginHost;
  let admin: PluginAdmin;
  let server: FastifyInstance;
  let bare: FastifyInstance;
  let a: string; // plan pro: enabled by its plan
  let b: string; // plan free, enabled by an admin
  let c: string; // plan free: disabled
  const closers: (() => Promise<unknown> | unknown)[] = [];

  /** A Fastify app whose scope runs each route as the tenant of the X-Tenant header (tenantRoutes' stand-in). */
  function serverWith(withPlugins: boolean): FastifyInstance {
    const f = Fastify();
    void f.register(async (scope) => {
      scope.addHook('onRoute', (route) => {
        const handler = route.handler as (this: unknown, q: FastifyRequest, r: FastifyReply) => unknown;
        route.handler = function (request, reply) {
          return runAs(String(request.headers['x-tenant']), () => handler.call(this, request, reply));
        };
      });
      if (withPlugins) fastifyPluginRoutes(scope, host);
    });
    return f;
  }

  const call = (tenant: string, method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object) =>
    server.inject({ method, url, headers: { 'x-tenant': tenant }, ...(payload ? { payload } : {}) });

  async function rows(): Promise<{ tenant_id: string; body: string }[]> {
    return (await db.owner.query('select tenant_id, body from plugin_notes order by tenant_id, body')).rows;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    app = db.appPool();
    registry = registryOf(() => app);
    await migrateLocation({ clusters: { home: db.ownerUrl }, cluster: 'home', migrations: registry.migrations() });
    const catalog = new TenantCatalog(db.owner);
    a = (await catalog.create({ slug: 'alpha', name: 'A', settings: { plan: 'pro' } })).id;
    b = (await catalog.create({ slug: 'bravo', name: 'B', settings: { plan: 'free' } })).id;
    c = (await catalog.create({ slug: 'charlie', name: 'C', settings: { plan: 'free' } })).id;
    feed = new SettingsFeed({ connectionString: db.ownerUrl });
    await feed.start();
    host = new PluginHost({ registry, db: db.owner, feed });
    admin = new PluginAdmin({ registry, db: db.owner });
    await admin.enable(b, 'notes_plus', who);
    server = serverWith(true);
    bare = serverWith(false);
    await server.ready();
    await bare.ready();
  });

  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await server?.close();
    await bare?.close();
    host?.close();
    await feed?.close();
    await db?.drop();
  });

  it('is enabled by plan or by an admin, and the admin change is audited (who, when, why)', async () => {
    expect(await host.isEnabled(a, 'notes_plus')).toBe(true);
    expect(await host.isEnabled(b, 'notes_plus')).toBe(true);
    expect(await host.isEnabled(c, 'notes_plus')).toBe(false);
    expect((await admin.list(a))[0]).toMatchObject({ plugin: 'notes_plus', enabled: true, source: 'plan' });
    expect((await admin.list(b))[0]).toMatchObject({ enabled: true, source: 'override', version: '1.2.0' });
    expect((await admin.list(c))[0]).toMatchObject({ enabled: false, source: 'off' });
    const history = await admin.history(b, { plugin: 'notes_plus' });
    expect(history[0]).toMatchObject({
      plugin: 'notes_plus',
      change: 'enable',
      actor: 'staff:test',
      reason: 'ticket 13',
    });
    expect(history[0]!.changedAt).toBeInstanceOf(Date);
    const audit = await db.owner.query(
      `select action, reason, detail from tenantry.audit_log where tenant_id = $1 and action = 'flag.changed'`,
      [b],
    );
    expect(audit.rows[0]).toMatchObject({ reason: 'ticket 13', detail: { flag: 'plugins.notes_plus' } });
    await expect(host.isEnabled(a, 'nope')).rejects.toMatchObject({ code: 'PLUGIN_UNKNOWN' });
  });

  it("runs an enabled plugin's routes as the tenant", async () => {
    const created = await call(a, 'POST', '/plugin-notes', { body: 'a1' });
    expect(created.statusCode).toBe(201);
    expect((await call(b, 'POST', '/plugin-notes', { body: 'b1' })).statusCode).toBe(201);
    expect((await call(a, 'GET', '/plugin-notes')).json().items.map((n: { body: string }) => n.body)).toEqual(['a1']);
  });

  it("tenant B (enabled) cannot read or write tenant A's plugin rows; nothing changes", async () => {
    const before = await rows();
    const aNote = before.find((r) => r.tenant_id === a)!;
    const { rows: ids } = await db.owner.query<{ id: string }>('select id from plugin_notes where tenant_id = $1', [a]);
    const id = ids[0]!.id;
    const read = await call(b, 'GET', `/plugin-notes/${id}`);
    expect(read.statusCode).toBe(404);
    const write = await call(b, 'PATCH', `/plugin-notes/${id}`, { body: 'stolen' });
    expect(write.statusCode).toBe(404);
    expect((await call(b, 'GET', '/plugin-notes')).json().items.map((n: { body: string }) => n.body)).toEqual(['b1']);
    // straight at the database as B: RLS refuses A's rows too
    const direct = await runAs(b, () => app.query('update plugin_notes set body = $2 where id = $1', [id, 'x']));
    expect(direct.rowCount).toBe(0);
    expect(await rows()).toEqual(before);
    expect(aNote.body).toBe('a1');
  });

  it('tenant C (disabled) gets exactly the 404 of a route that does not exist, no handler runs, nothing changes', async () => {
    const before = await rows();
    const handled = calls.route.length;
    for (const [method, url, payload] of [
      ['GET', '/plugin-notes', undefined],
      ['POST', '/plugin-notes', { body: 'c1' }],
      ['GET', `/plugin-notes/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`, undefined],
      ['PATCH', `/plugin-notes/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`, { body: 'c2' }],
    ] as const) {
      const res = await call(c, method, url, payload);
      const unknown = await bare.inject({ method, url, headers: { 'x-tenant': c }, ...(payload ? { payload } : {}) });
      expect(res.statusCode).toBe(404);
      expect(res.body).toBe(unknown.body);
    }
    expect(calls.route.length).toBe(handled);
    expect(await rows()).toEqual(before);
  });

  it('event handlers run only for tenants with the plugin', async () => {
    const onA = await runAs(a, () => host.emit('note.created', { body: 'ev-a' }));
    const onC = await runAs(c, () => host.emit('note.created', { body: 'ev-c' }));
    expect(onA).toEqual({ ran: ['notes_plus'], skipped: [], failed: [] });
    expect(onC).toEqual({ ran: [], skipped: ['notes_plus'], failed: [] });
    expect(calls.event).toEqual(['ev-a']);
  });

  it('a disable reaches every instance within 1 s, and back', async () => {
    const pools: pg.Pool[] = [];
    const others: PluginHost[] = [];
    for (let i = 0; i < 2; i++) {
      const pool = new pg.Pool({ connectionString: db.ownerUrl, max: 2 });
      const own = new SettingsFeed({ connectionString: db.ownerUrl });
      await own.start();
      pools.push(pool);
      others.push(new PluginHost({ registry, db: pool, feed: own }));
      closers.push(
        () => own.close(),
        () => pool.end(),
      );
    }
    for (const h of others) expect(await h.isEnabled(b, 'notes_plus')).toBe(true); // cached now
    await admin.disable(b, 'notes_plus', { actor: 'staff:test', reason: 'contract ended' });
    for (const h of others) expect(await within(1000, () => h.isEnabled(b, 'notes_plus'), false)).toBeLessThan(1000);
    await admin.reset(b, 'notes_plus', who);
    for (const h of others) await within(1000, () => h.isEnabled(b, 'notes_plus'), false); // free plan: still off
    await admin.enable(b, 'notes_plus', who);
    for (const h of others) await within(1000, () => h.isEnabled(b, 'notes_plus'), true);
    for (const h of others) h.close();
    expect((await admin.history(b, { plugin: 'notes_plus' })).map((h) => h.change).slice(0, 3)).toEqual([
      'enable',
      'reset',
      'disable',
    ]);
  });

  describe('jobs (tenantry/jobs on pg-boss)', () => {
    let jobs: TenantJobs;
    let refusals: { code: string; tenantId?: string }[];
    let jobHost: PluginHost;

    beforeAll(async () => {
      ({ jobs, refusals } = testJobs(db));
      jobHost = new PluginHost({ registry, db: db.owner, feed, jobs });
      await jobs.start();
      closers.push(
        () => jobs.stop(),
        () => jobHost.close(),
      );
    });

    it('a job enqueued while enabled, then the plugin disabled: 0 handler calls, refused PLUGIN_DISABLED', async () => {
      const ctx = jobHost.context('notes_plus');
      const onA = await runAs(a, () => ctx.enqueue('index', { body: 'job-a' }));
      const onB = await runAs(b, () => ctx.enqueue('index', { body: 'job-b' })); // the positive control
      await admin.disable(a, 'notes_plus', { actor: 'staff:test', reason: 'downgrade' });
      await within(1000, () => jobHost.isEnabled(a, 'notes_plus'), false);
      await jobs.work({ queues: ['notes_plus.index'], concurrency: 1 });
      expect(await settled(jobs, 'notes_plus.index', onA)).toBe('refused');
      expect(await settled(jobs, 'notes_plus.index', onB)).toBe('completed');
      expect(calls.job).toEqual(['job-b']);
      expect(refusals).toContainEqual(expect.objectContaining({ code: 'PLUGIN_DISABLED', tenantId: a }));
      // and a disabled tenant cannot enqueue the plugin's jobs at all
      await expect(runAs(a, () => ctx.enqueue('index', { body: 'again' }))).rejects.toMatchObject({
        code: 'PLUGIN_DISABLED',
      });
      await admin.reset(a, 'notes_plus', who);
    });
  });
});
