import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppFixture, type AppFixture } from './support/app-fixture.js';
import { rawRequest } from './support/raw-http.js';

// Tenants by host, from an attacker's side (review findings 2 and 3): a custom domain under the
// service's base domain is refused (it would shadow a tenant's subdomain); a malformed Host, or
// an absolute-form target naming another host than Host, is refused with a stable code on every
// route instead of being ignored.

const BASE = 'example.test';
let f: AppFixture;
let port: number;
let alice: string;
let carol: string;

beforeAll(async () => {
  f = await createAppFixture({ host: { baseDomain: BASE, customDomains: true } });
  alice = await f.token(f.users.alice, f.a);
  carol = await f.token(f.users.carol, f.b);
  await f.app.listen({ port: 0, host: '127.0.0.1' });
  port = (f.app.server.address() as { port: number }).port;
}, 120_000);
afterAll(() => f?.close());

const storedDomains = async () =>
  (await f.db.admin.query<{ domain: string }>('select domain from tenantry_private.domains order by domain')).rows;

describe('custom domains under the base domain', () => {
  it("are refused (400 DOMAIN_RESERVED) and stored nowhere; bravo's subdomain stays bravo's", async () => {
    const before = await storedDomains();
    for (const domain of [`${f.b.slug}.${BASE}`, `evil.${BASE}`, BASE, `a.b.${BASE}`, `Evil.${BASE.toUpperCase()}.`]) {
      const res = await f.call('POST', '/domains', { token: alice, payload: { domain } });
      expect(res.statusCode, `${domain}: ${res.body}`).toBe(400);
      expect(res.json().error.code).toBe('DOMAIN_RESERVED');
    }
    expect(await storedDomains()).toEqual(before);
    // verify of one is refused the same way (never a DNS lookup for the service's own names)
    const verify = await f.call('POST', `/domains/${f.b.slug}.${BASE}/verify`, { token: alice });
    expect(verify.statusCode).toBe(400);
    expect(verify.json().error.code).toBe('DOMAIN_RESERVED');

    // from bravo's side: its subdomain resolves to bravo, and alpha's token on it is a conflict
    const own = await f.call('GET', '/me', { token: carol, headers: { host: `${f.b.slug}.${BASE}` } });
    expect(own.statusCode, own.body).toBe(200);
    const other = await f.call('GET', '/me', { token: alice, headers: { host: `${f.b.slug}.${BASE}` } });
    expect(other.statusCode).toBe(400);
    expect(other.json().error.code).toBe('TENANT_CONFLICT');

    // a domain that is no host name: VALIDATION_FAILED naming the field, as on every other route
    for (const domain of ['not a domain', 'exa_mple.test', '-x.example.test']) {
      const bad = await f.call('POST', '/domains', { token: alice, payload: { domain } });
      expect(bad.statusCode, `${domain}: ${bad.body}`).toBe(400);
      expect(bad.json().error).toMatchObject({ code: 'VALIDATION_FAILED', field: 'domain' });
    }
    expect(await storedDomains()).toEqual(before);

    // a domain of its own is still fine
    const ok = await f.call('POST', '/domains', { token: alice, payload: { domain: 'files.alpha-corp.test' } });
    expect(ok.statusCode, ok.body).toBe(201);
  });
});

describe('the Host header', () => {
  const get = (target: string, host: string | undefined, token = alice) =>
    rawRequest(
      port,
      `GET ${target} HTTP/1.1\r\n${host === undefined ? '' : `Host: ${host}\r\n`}Authorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
    );

  it('malformed: 400 HOST_INVALID on tenant and public routes alike, never ignored', async () => {
    for (const host of [
      'a b',
      'exa_mple.test',
      'alpha..example.test',
      '-alpha.example.test',
      'alpha.example.test:99999',
      'alpha.example.test:x',
      'user@alpha.example.test',
      'alpha.example.test/x',
    ]) {
      const tenant = await get('/me', host);
      expect(tenant.status, `${host}: ${tenant.body}`).toBe(400);
      expect(JSON.parse(tenant.body).error.code).toBe('HOST_INVALID');
      const open = await rawRequest(
        port,
        `POST /auth/sign-in HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
      );
      expect(open.status, `${host}: ${open.body}`).toBe(400);
      expect(JSON.parse(open.body).error.code).toBe('HOST_INVALID');
    }
  });

  it('missing on HTTP/1.1: 400 HOST_INVALID with a JSON body (Node would answer an empty 400)', async () => {
    const res = await get('/me', undefined);
    expect(res.status, res.body).toBe(400);
    expect(JSON.parse(res.body).error).toMatchObject({
      code: 'HOST_INVALID',
      message: expect.stringContaining('Host'),
    });
    const open = await rawRequest(
      port,
      `POST /auth/sign-in HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
    );
    expect(open.status).toBe(400);
    expect(JSON.parse(open.body).error.code).toBe('HOST_INVALID');
  });

  it('more than one Host: 400 HOST_INVALID (a proxy may route by the other one)', async () => {
    for (const target of ['/me', '/sign-in']) {
      const res = await rawRequest(
        port,
        `GET ${target} HTTP/1.1\r\nHost: ${f.b.slug}.${BASE}\r\nHost: ${f.a.slug}.${BASE}\r\nAuthorization: Bearer ${alice}\r\nConnection: close\r\n\r\n`,
      );
      expect(res.status, `${target}: ${res.body}`).toBe(400);
      expect(JSON.parse(res.body).error.code).toBe('HOST_INVALID');
    }
  });

  it('valid forms pass: a name with a port, an IP address, an IPv6 literal, localhost, a trailing dot', async () => {
    for (const host of [
      `127.0.0.1:${port}`,
      '[::1]:3000',
      'localhost:3000',
      `${f.a.slug}.${BASE}:3000`,
      `${f.a.slug}.${BASE}.`,
    ]) {
      const res = await get('/me', host);
      expect(res.status, `${host}: ${res.body}`).toBe(200);
    }
  });

  it('an absolute-form target naming another host than Host: 400 HOST_MISMATCH; the same host passes', async () => {
    // bravo's host in the target, alpha's in Host: a proxy routing by one and the app by the other
    const mismatch = await get(`http://${f.b.slug}.${BASE}/me`, `${f.a.slug}.${BASE}`);
    expect(mismatch.status, mismatch.body).toBe(400);
    expect(JSON.parse(mismatch.body).error.code).toBe('HOST_MISMATCH');
    const reversed = await get(`http://${f.a.slug}.${BASE}/me`, `${f.b.slug}.${BASE}`, carol);
    expect(reversed.status).toBe(400);
    expect(JSON.parse(reversed.body).error.code).toBe('HOST_MISMATCH');
    const port80 = await get(`http://${f.a.slug}.${BASE}:80/me`, `${f.a.slug}.${BASE}:8080`);
    expect(JSON.parse(port80.body).error.code).toBe('HOST_MISMATCH');

    const same = await get(`http://${f.a.slug.toUpperCase()}.${BASE}/me`, `${f.a.slug}.${BASE}:80`);
    expect(same.status, same.body).toBe(200);
    expect(JSON.parse(same.body).tenant.id).toBe(f.a.id);
  });
});
