import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentTenant } from '../../src/context/tenant-context.js';
import { resolutionOfRequest, tenantMiddleware, tenantryErrorHandler } from '../../src/identity/express.js';
import { StaffAccess } from '../../src/identity/staff-access.js';
import { AuditLog } from '../../src/identity/audit-log.js';
import { runAs } from '../../src/context/tenant-context.js';
import { createIdentityFixture, type IdentityFixture } from './support/identity-fixture.js';

let f: IdentityFixture;
let server: Server;
let base: string;

beforeAll(async () => {
  f = await createIdentityFixture();
  const app = express();
  app.use(express.json());
  app.use('/api', tenantMiddleware({ resolver: f.resolver() }));
  // the tenant reaches the handler (after the body parser) and every query it makes
  app.post('/api/echo', async (req, res) => {
    const { rows } = await f.pool.query<{ n: number }>(
      'select count(*)::int as n from public.members where tenant_id = tenantry.current_tenant_id()',
    );
    const resolution = resolutionOfRequest(req);
    res.json({ tenant: currentTenant(), principal: resolution.principal.kind, members: rows[0]!.n, body: req.body });
  });
  // a tenant named in the path: honoured for staff, checked against the token for everyone else
  app.use('/t/:tenant', tenantMiddleware({ resolver: f.resolver(), pathParam: 'tenant' }));
  app.get('/t/:tenant/whoami', (req, res) => {
    res.json({ tenant: currentTenant(), principal: resolutionOfRequest(req).principal.kind });
  });
  app.use(tenantryErrorHandler());
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await f?.close();
});

async function post(
  headers: Record<string, string>,
  body: unknown = { hello: 'world' },
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a test double of an untyped shape
): Promise<{ status: number; json: Record<string, any>; headers: Headers }> {
  const res = await fetch(`${base}/api/echo`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a test double of an untyped shape
  return { status: res.status, json: (await res.json()) as Record<string, any>, headers: res.headers };
}

describe('Express adapter', () => {
  it('runs the route as the resolved tenant, with the body parsed', async () => {
    const { token } = await f.signIn(f.users.alice, f.acme.id);
    const res = await post({ authorization: `Bearer ${token}` });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ tenant: f.acme.id, principal: 'user', body: { hello: 'world' } });
    expect(res.json.members).toBeGreaterThan(0);
  });

  it('answers refusals with their status and code, never echoing the credential', async () => {
    const none = await post({});
    expect(none).toMatchObject({ status: 401, json: { error: { code: 'UNAUTHENTICATED' } } });
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    const forged = await post({ authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.' });
    expect(forged.status).toBe(401);
    expect(forged.json.error.code).toBe('TOKEN_INVALID');
    expect(JSON.stringify(forged.json)).not.toContain('eyJ');
    const { token } = await f.signIn(f.users.alice, f.acme.id);
    const conflict = await post({ authorization: `Bearer ${token}`, 'x-tenant': 'globex' });
    expect(conflict).toMatchObject({ status: 400, json: { error: { code: 'TENANT_CONFLICT' } } });
    const grace = await f.signIn(f.users.grace, f.globex.id);
    const foreign = await post({ authorization: `Bearer ${grace.token}`, 'x-tenant': f.acme.id });
    expect(foreign.json.error.code).toBe('TENANT_CONFLICT');
  });

  it('reads a tenant from the path: it must agree with the token, and alone it is no credential', async () => {
    const { token } = await f.signIn(f.users.sam, f.acme.id);
    const get = async (path: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${base}${path}`, { headers });
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a test double of an untyped shape
      return { status: res.status, json: (await res.json()) as Record<string, any> };
    };
    expect(await get('/t/acme/whoami', { authorization: `Bearer ${token}` })).toEqual({
      status: 200,
      json: { tenant: f.acme.id, principal: 'user' },
    });
    expect((await get('/t/globex/whoami', { authorization: `Bearer ${token}` })).json.error.code).toBe(
      'TENANT_CONFLICT',
    );
    // an unknown tenant in the path is the same conflict: existence is not told
    expect((await get('/t/nobody-here/whoami', { authorization: `Bearer ${token}` })).json.error.code).toBe(
      'TENANT_CONFLICT',
    );
    expect((await get('/t/acme/whoami')).json.error.code).toBe('TENANT_SELECTION_FORBIDDEN');
  });

  it("keeps other libraries' client errors as 4xx (bad JSON from express.json)", async () => {
    const { token } = await f.signIn(f.users.alice, f.acme.id);
    const res = await fetch(`${base}/api/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: '{not json',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { code: 'BAD_REQUEST', message: 'The request is malformed' } });
  });

  it('writes an audit entry for each staff request', async () => {
    const { token, sessionId } = await f.staffSignIn();
    await new StaffAccess({ appPool: f.pool }).begin({
      sessionId,
      tenantId: f.globex.id,
      access: 'act_as',
      reason: 'Ticket 99: export stuck',
      minutes: 5,
    });
    const res = await post({ authorization: `Bearer ${token}`, 'x-tenant': 'globex' });
    expect(res).toMatchObject({ status: 200, json: { tenant: f.globex.id, principal: 'staff' } });
    const log = await runAs(f.globex.id, () => new AuditLog(f.pool).list({ limit: 1 }));
    expect(log[0]).toMatchObject({
      action: 'staff.request',
      actorKind: 'staff',
      actorId: f.users.staff,
      detail: { method: 'POST', route: '/api/echo' },
    });
  });
});

describe('Express adapter: the request authority', () => {
  /** A raw GET, so that the target and the Host can disagree (fetch would not send that). */
  async function raw(target: string, host: string, token: string): Promise<{ status: number; body: string }> {
    const { connect } = await import('node:net');
    const port = Number(new URL(base).port);
    return new Promise((resolve, reject) => {
      let text = '';
      const socket = connect(port, '127.0.0.1', () =>
        socket.write(
          `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
        ),
      );
      socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      socket.on('error', reject);
      socket.on('close', () =>
        resolve({ status: Number(text.split(' ')[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) }),
      );
    });
  }

  it('refuses a malformed Host and an absolute-form target naming another host (originalUrl is passed)', async () => {
    const { token } = await f.signIn(f.users.alice, f.acme.id);
    const target = `/t/${f.acme.id}/whoami`;
    const bad = await raw(target, 'acme example.test', token);
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('HOST_INVALID');
    const mismatch = await raw(`http://globex.example.test${target}`, 'acme.example.test', token);
    expect(mismatch.status).toBe(400);
    expect(mismatch.body).toContain('HOST_MISMATCH');
    const same = await raw(`http://acme.example.test${target}`, 'acme.example.test', token);
    expect(same.status, same.body).toBe(200);
  });
});
