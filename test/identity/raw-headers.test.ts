import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { TenantryError } from '../../src/errors/tenantry-error.js';
import { ApiKeys } from '../../src/identity/api-keys.js';
import { resolutionOfRequest, tenantMiddleware, tenantryErrorHandler } from '../../src/identity/express.js';
import { resolutionOf, tenantRoutes } from '../../src/identity/fastify.js';
import { bearerCredential, headerValue } from '../../src/identity/request-facts.js';
import { rawRequest } from '../app/support/raw-http.js';
import { createIdentityFixture, type IdentityFixture } from './support/identity-fixture.js';

/*
 * Node keeps the first of two Authorization (or Host) headers and joins two X-Tenant with a comma
 * before any framework sees them: the adapters hand the resolver the raw header list, so a
 * repetition is refused by every user of tenantry/fastify and tenantry/express. Sent on a raw
 * socket: Node's own client would not send these requests.
 */

let f: IdentityFixture;
let expressServer: Server;
let fastify: FastifyInstance;
const ports: Record<'express' | 'fastify', number> = { express: 0, fastify: 0 };
let key: string;

beforeAll(async () => {
  f = await createIdentityFixture();
  const resolver = f.resolver({ host: { baseDomain: 'example.test' } });
  const app = express();
  app.use('/api', tenantMiddleware({ resolver }));
  app.get('/api/who', (req, res) => {
    res.json({ principal: resolutionOfRequest(req).principal.kind });
  });
  app.use(tenantryErrorHandler());
  expressServer = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  ports.express = (expressServer.address() as AddressInfo).port;

  fastify = Fastify();
  fastify.setErrorHandler((error, _request, reply) => {
    const status = error instanceof TenantryError ? error.status : 500;
    return reply.code(status).send({ error: { code: error instanceof TenantryError ? error.code : 'INTERNAL' } });
  });
  fastify.register(async (scope) => {
    tenantRoutes(scope, { resolver });
    scope.get('/api/who', async (request) => ({ principal: resolutionOf(request).principal.kind }));
  });
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  ports.fastify = (fastify.server.address() as AddressInfo).port;
  key = (await runAs(f.acme.id, () => new ApiKeys(f.pool).create({ name: 'raw headers' }))).key;
});

afterAll(async () => {
  await new Promise((resolve) => expressServer?.close(resolve));
  await fastify?.close();
  await f?.close();
});

describe.each(['express', 'fastify'] as const)('%s adapter, raw headers', (name) => {
  const get = async (lines: string[]) => {
    const head = lines.map((l) => `${l}\r\n`).join('');
    const answer = await rawRequest(ports[name], `GET /api/who HTTP/1.1\r\n${head}Connection: close\r\n\r\n`);
    return { status: answer.status, code: (JSON.parse(answer.body) as { error?: { code: string } }).error?.code };
  };

  it('refuses two Authorization headers, even with the same token', async () => {
    const { token } = await f.signIn(f.users.alice, f.acme.id);
    expect(await get(['Host: api.example.test', `Authorization: Bearer ${token}`])).toEqual({
      status: 200,
      code: undefined,
    });
    expect(
      await get(['Host: api.example.test', `Authorization: Bearer ${token}`, `Authorization: Bearer ${token}`]),
    ).toEqual({
      status: 401,
      code: 'UNAUTHENTICATED',
    });
  });

  it('refuses two X-Tenant headers (Node would join them into "acme, acme")', async () => {
    const { token } = await f.signIn(f.users.alice, f.acme.id);
    expect(await get(['Host: api.example.test', `Authorization: Bearer ${token}`, 'X-Tenant: acme'])).toMatchObject({
      status: 200,
    });
    expect(
      await get(['Host: api.example.test', `Authorization: Bearer ${token}`, 'X-Tenant: acme', 'x-tenant: acme']),
    ).toEqual({ status: 400, code: 'TENANT_CONFLICT' });
  });

  it('refuses two Host headers when the host names the tenant', async () => {
    const { token } = await f.signIn(f.users.alice, f.acme.id);
    expect(await get(['Host: acme.example.test', `Authorization: Bearer ${token}`])).toMatchObject({ status: 200 });
    expect(
      await get(['Host: acme.example.test', 'Host: globex.example.test', `Authorization: Bearer ${token}`]),
    ).toEqual({
      status: 400,
      code: 'TENANT_CONFLICT',
    });
  });

  it('reads the scheme in any case', async () => {
    const { token } = await f.signIn(f.users.alice, f.acme.id);
    for (const scheme of ['bearer', 'BEARER', 'bEaReR'])
      expect(await get(['Host: api.example.test', `Authorization: ${scheme} ${token}`])).toMatchObject({ status: 200 });
  });

  it('refuses an API key sent both in X-Api-Key and in Authorization', async () => {
    expect(await get(['Host: api.example.test', `X-Api-Key: ${key}`])).toMatchObject({ status: 200 });
    expect(await get(['Host: api.example.test', `Authorization: Bearer ${key}`])).toMatchObject({ status: 200 });
    expect(await get(['Host: api.example.test', `X-Api-Key: ${key}`, `Authorization: Bearer ${key}`])).toEqual({
      status: 400,
      code: 'TENANT_CONFLICT',
    });
  });
});

describe('request facts', () => {
  it('count a header sent twice from the raw list, whatever Node merged', () => {
    const facts = {
      headers: { authorization: 'Bearer a.b.c', 'x-tenant': 'acme, acme' },
      rawHeaders: ['Authorization', 'Bearer a.b.c', 'X-Tenant', 'acme', 'x-tenant', 'acme'],
    };
    expect(headerValue(facts, 'x-tenant')).toEqual({ value: undefined, repeated: true });
    expect(headerValue(facts, 'authorization')).toEqual({ value: 'Bearer a.b.c', repeated: false });
    expect(bearerCredential({ ...facts, rawHeaders: [...facts.rawHeaders, 'AUTHORIZATION', 'Bearer x'] })).toBe(
      'malformed',
    );
  });

  it('read Bearer in any case, with one or more spaces, and nothing else', () => {
    for (const value of ['Bearer abc', 'bearer abc', 'BEARER  abc'])
      expect(bearerCredential({ headers: { authorization: value } })).toBe('abc');
    for (const value of ['Bearerabc', 'Basic abc', 'Bearer a b', 'Bearer'])
      expect(bearerCredential({ headers: { authorization: value } })).toBe('malformed');
  });
});
