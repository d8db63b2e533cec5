import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { TenantryError } from '../../src/errors/tenantry-error.js';
import { ApiKeys } from '../../src/identity/api-keys.js';
import { tenantMiddleware, tenantryErrorHandler } from '../../src/identity/express.js';
import { tenantRoutes } from '../../src/identity/fastify.js';
import type { TenantJobs } from '../../src/jobs/index.js';
import { createIdentityFixture, type IdentityFixture } from '../identity/support/identity-fixture.js';
import { settled, testJobs } from '../jobs/support/jobs-harness.js';
import { everything, otelHarness, type OtelHarness } from './otel-harness.js';

let f: IdentityFixture;
let otel: OtelHarness;
let fastify: FastifyInstance;
let expressServer: Server;
let expressPort = 0;
const keys: Record<'acme' | 'globex', string> = { acme: '', globex: '' };

beforeAll(async () => {
  f = await createIdentityFixture();
  otel = otelHarness();
  const resolver = f.resolver();
  fastify = Fastify();
  fastify.setErrorHandler((error, _request, reply) => {
    const status = error instanceof TenantryError ? error.status : 500;
    return reply.code(status).send({ error: { code: error instanceof TenantryError ? error.code : 'INTERNAL' } });
  });
  fastify.register(async (scope) => {
    tenantRoutes(scope, { resolver, auditStaffRequests: false });
    scope.get('/api/count', async () => (await f.pool.query('select count(*)::int as n from members')).rows[0]);
  });
  await fastify.ready();

  const app = express();
  // what @opentelemetry/instrumentation-http does: a server span active for the request
  app.use((req, res, next) =>
    otel.tracer.startActiveSpan('GET (server)', (span) => {
      res.once('finish', () => span.end());
      next();
    }),
  );
  app.use('/api', tenantMiddleware({ resolver, auditStaffRequests: false }));
  app.get('/api/count', async (_req, res) => {
    res.json((await f.pool.query('select count(*)::int as n from members')).rows[0]);
  });
  app.get('/api/fail', (_req, _res, next) => {
    f.pool.query('select 1').then(() => next(new Error('boom: a value that must not reach a span')), next);
  });
  app.use(tenantryErrorHandler());
  expressServer = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  expressPort = (expressServer.address() as AddressInfo).port;
  keys.acme = (await runAs(f.acme.id, () => new ApiKeys(f.pool).create({ name: 'tracing' }))).key;
  keys.globex = (await runAs(f.globex.id, () => new ApiKeys(f.pool).create({ name: 'tracing' }))).key;
});

afterAll(async () => {
  await new Promise((resolve) => expressServer?.close(resolve));
  await fastify?.close();
  await otel?.close();
  await f?.close();
});
beforeEach(() => otel.exporter.reset());

describe('tenantry/otel on requests', () => {
  it('Fastify: a tenantry.request span with tenant.id, parent of the handler statements; the other tenant gets its own', async () => {
    const [a, g] = await Promise.all([
      fastify.inject({ url: '/api/count', headers: { authorization: `Bearer ${keys.acme}` } }),
      fastify.inject({ url: '/api/count', headers: { authorization: `Bearer ${keys.globex}` } }),
    ]);
    expect([a.statusCode, g.statusCode]).toEqual([200, 200]);
    const requests = otel.named('tenantry.request');
    expect(requests.map((s) => s.attributes['tenant.id']).sort()).toEqual([f.acme.id, f.globex.id].sort());
    for (const request of requests) {
      expect(request.attributes).toMatchObject({ 'http.request.method': 'GET', 'http.route': '/api/count' });
      const children = otel.spans().filter((s) => otel.parentOf(s) === request.spanContext().spanId);
      expect(children.map((c) => c.name)).toEqual(['SELECT']);
      expect(children[0]!.attributes['tenant.id']).toBe(request.attributes['tenant.id']);
    }
    expect(everything(otel.spans())).not.toContain(keys.acme);
  });

  it('Fastify: a refused request has no tenantry.request span', async () => {
    const res = await fastify.inject({ url: '/api/count', headers: { authorization: 'Bearer tnry_nope_nope' } });
    expect(res.statusCode).toBe(401);
    expect(otel.named('tenantry.request')).toHaveLength(0);
  });

  it("Express: a tenantry.request span of its own, under the HTTP server span, parent of the handler's statements", async () => {
    const res = await fetch(`http://127.0.0.1:${expressPort}/api/count`, {
      headers: { authorization: `Bearer ${keys.globex}` },
    });
    expect(res.status).toBe(200);
    await res.json();
    await new Promise((r) => setTimeout(r, 20));
    const [server] = otel.named('GET (server)');
    expect(server!.attributes['tenant.id']).toBe(f.globex.id);
    const requests = otel.named('tenantry.request');
    expect(requests).toHaveLength(1);
    const request = requests[0]!;
    expect(otel.parentOf(request)).toBe(server!.spanContext().spanId);
    expect(request.attributes).toMatchObject({
      'tenant.id': f.globex.id,
      'http.request.method': 'GET',
      'http.route': '/api/count',
      'http.response.status_code': 200,
    });
    const handlerStatements = otel.named('SELECT').filter((s) => otel.parentOf(s) === request.spanContext().spanId);
    expect(handlerStatements.length).toBeGreaterThan(0);
    expect(handlerStatements.every((s) => s.attributes['tenant.id'] === f.globex.id)).toBe(true);
    expect(everything(otel.spans())).not.toContain(keys.globex);
  });

  it('Express: a request answered 5xx ends its span as an error, by code only; a refused one has no span', async () => {
    const res = await fetch(`http://127.0.0.1:${expressPort}/api/fail`, {
      headers: { authorization: `Bearer ${keys.acme}` },
    });
    expect(res.status).toBe(500);
    await res.text();
    await new Promise((r) => setTimeout(r, 20));
    const [request] = otel.named('tenantry.request');
    expect(request!.attributes).toMatchObject({ 'tenant.id': f.acme.id, 'error.type': 'HTTP_500' });
    expect(request!.status.code).toBe(2); // SpanStatusCode.ERROR
    expect(everything(otel.spans())).not.toContain('boom');
    otel.exporter.reset();
    const refused = await fetch(`http://127.0.0.1:${expressPort}/api/count`, {
      headers: { authorization: 'Bearer tnry_nope_nope' },
    });
    expect(refused.status).toBe(401);
    await refused.text();
    await new Promise((r) => setTimeout(r, 20));
    expect(otel.named('tenantry.request')).toHaveLength(0);
  });
});

describe('tenantry/otel on jobs', () => {
  let jobs: TenantJobs;
  beforeAll(async () => {
    ({ jobs } = testJobs(f.db));
    jobs.define('count-members', async () => {
      await f.pool.query('select count(*) from members');
    });
    await jobs.start();
    await jobs.work({ concurrency: 1 });
  });
  afterAll(() => jobs?.stop());

  it('runs each job in a tenantry.job span with its tenant, parent of its statements', async () => {
    const id = await runAs(f.acme.id, () => jobs.enqueue('count-members', {}));
    expect(await settled(jobs, 'count-members', id)).toBe('completed');
    const [job] = otel.named('tenantry.job');
    expect(job!.attributes).toMatchObject({
      'tenant.id': f.acme.id,
      'messaging.destination.name': 'count-members',
      'tenantry.job.id': id,
    });
    const statements = otel.named('SELECT').filter((s) => otel.parentOf(s) === job!.spanContext().spanId);
    expect(statements).toHaveLength(1);
    expect(statements[0]!.attributes['tenant.id']).toBe(f.acme.id);
  });
});
