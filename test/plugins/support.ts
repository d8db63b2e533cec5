import { definePlugin, definePlugins, type PluginRoutes } from '../../src/plugins/index.js';
import type { TenantPool } from '../../src/index.js';

type Req = { params: Record<string, string>; body: unknown };
type Rep = { code(status: number): Rep };

/** Handler calls per plugin entry point, with the tenant they ran as. */
export const calls: { route: string[]; event: string[]; job: string[] } = { route: [], event: [], job: [] };

/** The tests' plugin: a tenant table `plugin_notes`, routes over it, an event and a job. */
export function notesPlugin(pool: () => TenantPool) {
  return definePlugin<Req, Rep>({
    name: 'notes_plus',
    version: '1.2.0',
    migrations: [
      {
        version: 1001,
        name: 'plugin_notes',
        sql: `create table plugin_notes (
            tenant_id uuid not null default tenantry.current_tenant_id(),
            id uuid not null default gen_random_uuid(),
            body text not null,
            primary key (tenant_id, id)
          );
          select tenantry.register_tenant_table('plugin_notes');`,
      },
    ],
    routes(r: PluginRoutes<Req, Rep>) {
      r.get('/plugin-notes', async () => {
        calls.route.push('list');
        return { items: (await pool().query('select id, body from plugin_notes order by body')).rows };
      });
      r.post('/plugin-notes', async (request, reply) => {
        calls.route.push('create');
        const { body } = request.body as { body: string };
        const { rows } = await pool().query('insert into plugin_notes (body) values ($1) returning id, body', [body]);
        reply.code(201);
        return rows[0];
      });
      r.get('/plugin-notes/:id', async (request, reply) => {
        calls.route.push('read');
        const { rows } = await pool().query('select id, body from plugin_notes where id = $1', [request.params.id]);
        if (!rows[0]) return reply.code(404) && { code: 'NOT_FOUND' };
        return rows[0];
      });
      r.patch('/plugin-notes/:id', async (request, reply) => {
        calls.route.push('update');
        const { body } = request.body as { body: string };
        const { rows } = await pool().query('update plugin_notes set body = $2 where id = $1 returning id, body', [
          request.params.id,
          body,
        ]);
        if (!rows[0]) return reply.code(404) && { code: 'NOT_FOUND' };
        return rows[0];
      });
    },
    events: {
      'note.created': (payload) => {
        calls.event.push(String((payload as { body: string }).body));
      },
    },
    jobs: {
      index: {
        handler: (payload: { body: string }) => {
          calls.job.push(payload.body);
        },
        options: { retryLimit: 0 },
      },
    },
    settings: undefined,
    flags: { 'fast-index': { off: false, plans: ['pro'] } },
  });
}

/** The registry: `pro` includes the plugin; others get it by an admin's override only. */
export function registryOf(pool: () => TenantPool) {
  return definePlugins({ plugins: [notesPlugin(pool)], plans: { pro: ['notes_plus'] } });
}
