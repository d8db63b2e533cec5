// The generated suite itself, run programmatically: green on a correctly isolated table and app,
// red (with the leaks in its messages) on a sabotaged table, a route that bypasses the tenant, a
// route that answers a foreign id differently from a missing one, and a mistyped route.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { runAs, type TenantPool } from '../../src/index.js';
import {
  createTenantFactory,
  describeTenantIsolation,
  fastifyDriver,
  fetchDriver,
  type HttpDriver,
  type IsolationContext,
  type RouteSpec,
  type TenantFactory,
  type TenantTableSpec,
} from '../../src/testing/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { CollectingRunner, type CollectedOutcome } from './support/collecting-runner.js';

let db: TestDatabase;
let pool: TenantPool;
let app: FastifyInstance;
let tenants: TenantFactory<undefined>;
let a: IsolationContext['tenantA'];
let b: IsolationContext['tenantB'];

const notes = (table: string): TenantTableSpec => ({
  table,
  columns: (_, i) => ({ body: `secret ${i}` }),
  update: { column: 'body', value: 'changed' },
});

/** A small notes API: the tenant comes from `x-tenant` (401 without). `/leaky/…` reads as the owner role. */
function notesApp(): FastifyInstance {
  const api = Fastify();
  const tenant = (request: FastifyRequest, reply: FastifyReply): string | undefined => {
    const t = request.headers['x-tenant'];
    if (typeof t !== 'string') void reply.code(401).send({ error: 'unauthenticated' });
    return typeof t === 'string' ? t : undefined;
  };
  const notFound = (reply: FastifyReply) => reply.code(404).send({ error: 'not found' });
  type ById = { Params: { id: string } };
  api.get<ById>('/notes/:id', async (req, reply) => {
    const t = tenant(req, reply);
    if (!t) return reply;
    const { rows } = await runAs(t, () => pool.query('select id, body from notes where id = $1', [req.params.id]));
    return rows[0] ? rows[0] : notFound(reply);
  });
  api.patch<ById>('/notes/:id', async (req, reply) => {
    const t = tenant(req, reply);
    if (!t) return reply;
    const { rows } = await runAs(t, () =>
      pool.query('update notes set body = $2 where id = $1 returning id', [
        req.params.id,
        (req.body as { body: string }).body,
      ]),
    );
    return rows[0] ? rows[0] : notFound(reply);
  });
  api.delete<ById>('/notes/:id', async (req, reply) => {
    const t = tenant(req, reply);
    if (!t) return reply;
    const { rowCount } = await runAs(t, () => pool.query('delete from notes where id = $1', [req.params.id]));
    return rowCount ? reply.code(204).send() : notFound(reply);
  });
  api.get('/notes', async (req, reply) => {
    const t = tenant(req, reply);
    if (!t) return reply;
    return (await runAs(t, () => pool.query('select id, body from notes order by id'))).rows;
  });
  api.post('/notes', async (req, reply) => {
    const t = tenant(req, reply);
    if (!t) return reply;
    const { rows } = await runAs(t, () =>
      pool.query('insert into notes (tenant_id, body) values ($1, $2) returning id', [
        t,
        (req.body as { body: string }).body,
      ]),
    );
    return reply.code(201).send(rows[0]);
  });
  // defects: the owner role (BYPASSRLS) on the request path, no authentication
  api.get<ById>('/leaky/notes/:id', async (req, reply) => {
    const { rows } = await db.owner.query('select id, tenant_id, body from notes where id = $1', [req.params.id]);
    return rows[0] ? rows[0] : notFound(reply);
  });
  api.delete<ById>('/leaky/notes/:id', async (req, reply) => {
    const { rowCount } = await db.owner.query('delete from notes where id = $1', [req.params.id]);
    return rowCount ? reply.code(204).send() : notFound(reply);
  });
  // a tell: the 404 of a foreign row differs from the 404 of a missing one
  api.get<ById>('/telling/notes/:id', async (req, reply) => {
    const t = tenant(req, reply);
    if (!t) return reply;
    const { rows } = await runAs(t, () => pool.query('select id from notes where id = $1', [req.params.id]));
    if (rows[0]) return rows[0];
    const exists = await db.owner.query('select 1 from notes where id = $1', [req.params.id]);
    return reply.code(404).send({ error: exists.rowCount ? 'not yours' : 'not found' });
  });
  return api;
}

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(`
    create table notes (tenant_id uuid not null, id uuid not null default gen_random_uuid(), body text not null, primary key (tenant_id, id));
    select tenantry.register_tenant_table('notes');
    create table open_notes (tenant_id uuid not null, id uuid not null default gen_random_uuid(), body text not null, primary key (tenant_id, id));
    select tenantry.register_tenant_table('open_notes');`);
  pool = db.appPool();
  app = notesApp();
  await app.ready();
  tenants = createTenantFactory({ catalog: db.owner, slugPrefix: 'kit' });
  [a, b] = await tenants.pair();
});
afterAll(async () => {
  await app?.close();
  await tenants?.cleanup();
  await db?.drop();
});

async function runSuite(
  tables: TenantTableSpec[],
  routes: RouteSpec[],
  driver?: HttpDriver,
): Promise<CollectedOutcome[]> {
  const runner = new CollectingRunner();
  describeTenantIsolation(
    {
      context: () => ({
        pool,
        privileged: db.owner,
        tenantA: a,
        tenantB: b,
        http: { driver: driver ?? fastifyDriver(app), credentials: (party) => ({ 'x-tenant': party.tenant.id }) },
      }),
      tables,
      routes,
    },
    runner,
  );
  return runner.run();
}

const failed = (outcomes: CollectedOutcome[]) => outcomes.filter((o) => o.error).map((o) => o.name);

const GOOD_ROUTES: RouteSpec[] = [
  { method: 'GET', path: '/notes/:id' },
  { method: 'PATCH', path: '/notes/:id', body: { body: 'changed by an intruder' } },
  { method: 'DELETE', path: '/notes/:id' },
  { method: 'GET', path: '/notes' },
  { method: 'POST', path: '/notes', body: { body: 'new' }, crossTenant: 201, control: 201 },
];

describe('describeTenantIsolation', () => {
  it('declares one test per attack, table and route, and passes them all on an isolated app', async () => {
    const runner = new CollectingRunner();
    describeTenantIsolation(
      { context: () => ({}) as IsolationContext, tables: [notes('notes')], routes: GOOD_ROUTES },
      runner,
    );
    const names = runner.names();
    expect(names).toHaveLength(13 + 5 * 3);
    expect(names).toContain(
      "tenant isolation > table notes > tenant B: reads none of A's rows by id, nor by id and A's tenant id",
    );
    expect(names).toContain(
      "tenant isolation > table notes > no tenant: cannot insert a row carrying A's tenant id (42501)",
    );
    expect(names).toContain(
      "tenant isolation > route GET /notes/:id > tenant B: 404 for A's ids and guessed ids, nothing of A in the answer, nothing changed",
    );
    expect(names).toContain('tenant isolation > route DELETE /notes/:id > tenant A: 2xx for its own row (control)');
    expect(names).toContain(
      'tenant isolation > route POST /notes > no credentials: 401 for the route, nothing changed',
    );

    const outcomes = await runSuite([notes('notes')], GOOD_ROUTES);
    expect(outcomes).toHaveLength(28);
    expect(outcomes.filter((o) => o.error).map((o) => `${o.name}: ${o.error!.message}`)).toEqual([]);
  });

  it('fails every attack on a table with a permissive policy planted, naming the leaks', async () => {
    await db.owner.query('create policy open_door on open_notes using (true) with check (true)');
    try {
      const outcomes = await runSuite([notes('open_notes')], []);
      expect(outcomes).toHaveLength(13);
      expect(failed(outcomes)).toEqual(outcomes.map((o) => o.name));
      const read = outcomes.find((o) =>
        o.name.endsWith("tenant B: reads none of A's rows by id, nor by id and A's tenant id"),
      )!;
      expect(read.error!.name).toBe('TenantIsolationLeakError');
      expect(read.error!.message).toMatch(
        /^open_notes read \(tenant B\): 4 leak\(s\) in 4 tries\n {2}- open_notes: select by id \(row 1\): reached 1 row\(s\) of another tenant/,
      );
    } finally {
      await db.owner.query('drop policy open_door on open_notes');
    }
  });

  it('fails the cross-tenant and no-credential tests of a route that bypasses the tenant', async () => {
    const outcomes = await runSuite(
      [notes('notes')],
      [
        { method: 'GET', path: '/leaky/notes/:id' },
        { method: 'DELETE', path: '/leaky/notes/:id' },
      ],
    );
    const routeFailures = failed(outcomes).filter((n) => n.includes('route'));
    expect(routeFailures).toEqual([
      "tenant isolation > route GET /leaky/notes/:id > tenant B: 404 for A's ids and guessed ids, nothing of A in the answer, nothing changed",
      "tenant isolation > route GET /leaky/notes/:id > no credentials: 401 for A's ids and guessed ids, nothing changed",
      "tenant isolation > route DELETE /leaky/notes/:id > tenant B: 404 for A's ids and guessed ids, nothing of A in the answer, nothing changed",
      "tenant isolation > route DELETE /leaky/notes/:id > no credentials: 401 for A's ids and guessed ids, nothing changed",
    ]);
    const get = outcomes.find((o) => o.name === routeFailures[0])!.error!.message;
    expect(get).toContain("GET /leaky/notes/:id (A's row 1): 200 instead of 404");
    expect(get).toContain(
      "GET /leaky/notes/:id (A's row 1): the answer contains 1 value(s) of tenant A (its tenant id or row ids)",
    );
    const del = outcomes.find((o) => o.name === routeFailures[2])!.error!.message;
    expect(del).toContain(
      'DELETE /leaky/notes/:id: rows of other tenants in notes changed: 0 added, 2 removed, 0 modified',
    );
  });

  it("fails a route whose 404 for A's row differs from the 404 for a missing row", async () => {
    const outcomes = await runSuite([notes('notes')], [{ method: 'GET', path: '/telling/notes/:id' }]);
    expect(failed(outcomes)).toEqual([
      "tenant isolation > route GET /telling/notes/:id > tenant B: 404 for A's ids and guessed ids, nothing of A in the answer, nothing changed",
    ]);
    expect(outcomes.find((o) => o.error)!.error!.message).toContain(
      "(A's row 1): the answer differs from the one for an id that does not exist (404 vs 404): it tells the row exists",
    );
    const off = await runSuite([notes('notes')], [{ method: 'GET', path: '/telling/notes/:id', sameAsMissing: false }]);
    expect(failed(off)).toEqual([]);
  });

  it('fails the control of a mistyped route instead of passing its attacks for the wrong reason', async () => {
    const outcomes = await runSuite([notes('notes')], [{ method: 'GET', path: '/note/:id' }]);
    expect(failed(outcomes)).toEqual([
      'tenant isolation > route GET /note/:id > tenant A: 2xx for its own row (control)',
      "tenant isolation > route GET /note/:id > no credentials: 401 for A's ids and guessed ids, nothing changed",
    ]);
    expect(outcomes.find((o) => o.error)!.error!.message).toContain(
      '404 instead of 2xx: the route or its spec is wrong, so the attacks prove nothing',
    );
  });

  it('fails every test when the set-up is wrong (a privileged connection that cannot see through RLS)', async () => {
    const runner = new CollectingRunner();
    describeTenantIsolation(
      { context: () => ({ pool, privileged: pool, tenantA: a, tenantB: b }), tables: [notes('notes')] },
      runner,
    );
    const outcomes = await runner.run();
    expect(outcomes).toHaveLength(13);
    expect(outcomes.every((o) => o.error?.message.includes('not visible to the privileged connection'))).toBe(true);
  });

  it('drives a running server over HTTP with fetchDriver', async () => {
    const server = notesApp();
    const url = await server.listen({ port: 0, host: '127.0.0.1' });
    try {
      const good = await runSuite(
        [notes('notes')],
        [
          { method: 'GET', path: '/notes/:id' },
          { method: 'DELETE', path: '/notes/:id' },
        ],
        fetchDriver(url),
      );
      expect(good.filter((o) => o.error).map((o) => o.error!.message)).toEqual([]);
      const leaky = await runSuite([notes('notes')], [{ method: 'GET', path: '/leaky/notes/:id' }], fetchDriver(url));
      expect(failed(leaky)).toHaveLength(2);
    } finally {
      await server.close();
    }
  });

  it('refuses, when declared, a route with :id and no table to take ids from', () => {
    expect(() =>
      describeTenantIsolation(
        {
          context: () => ({}) as IsolationContext,
          tables: [notes('notes'), notes('open_notes')],
          routes: [{ method: 'GET', path: '/x/:id' }],
        },
        new CollectingRunner(),
      ),
    ).toThrow(/name the table whose ids fill :id/);
  });
});
