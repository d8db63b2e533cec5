import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrandAdmin, TenantBrands } from '../../src/branding/index.js';
import { solidPng } from '../branding/images.js';
import { createAppFixture, type AppFixture } from './support/app-fixture.js';

// The reference server's branding: the branded sign-in page and logo by host, the /brand admin
// API, from both tenants' side (and a non-admin's): refusals change nothing.
const BASE = 'localhost';
let f: AppFixture;
let alice: string;
let bob: string;
let carol: string;
const hostOf = (slug: string) => ({ host: `${slug}.${BASE}` });

beforeAll(async () => {
  f = await createAppFixture({
    host: { baseDomain: BASE, customDomains: true },
    branding: (db) => ({
      admin: new BrandAdmin({ db: db.owner }),
      brands: new TenantBrands({ db: db.owner, ttlMs: 1 }),
    }),
  });
  alice = await f.token(f.users.alice, f.a);
  bob = await f.token(f.users.bob, f.a);
  carol = await f.token(f.users.carol, f.b);
}, 60_000);

afterAll(async () => {
  await f?.close();
});

/** What the server stores for a tenant's brand, as the superuser sees it. */
async function stored(tenantId: string) {
  const { rows } = await f.db.admin.query(
    `select (select brand from tenantry_private.tenant_brands where tenant_id = $1) as brand,
            (select count(*) from tenantry_private.tenant_brand_history where tenant_id = $1)::int as history,
            (select count(*) from tenantry_private.tenant_brand_logos where tenant_id = $1)::int as logos,
            (select count(*) from tenantry.audit_log where tenant_id = $1 and action = 'brand.changed')::int as audit`,
    [tenantId],
  );
  return rows[0];
}

describe('the branded sign-in page', () => {
  it('shows each tenant its own brand, and escapes every field', async () => {
    const set = await f.call('PUT', '/brand', {
      token: alice,
      payload: {
        displayName: '<script>alert("owned")</script> Alpha & Co',
        colors: { primary: '#8a1538' },
        emailSenderName: 'Alpha Support',
        reason: 'rebrand',
      },
    });
    expect(set.statusCode).toBe(200);
    const page = await f.call('GET', '/sign-in', { headers: hostOf(f.a.slug) });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'; img-src 'self'; style-src 'nonce-/);
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.body).toContain('&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt; Alpha &amp; Co');
    expect(page.body).not.toContain('<script>alert');
    expect(page.body).toContain('--primary: #8a1538');
    // the one script is the page's own, with the response's nonce
    const nonce = /script-src 'nonce-([^']+)'/.exec(page.headers['content-security-policy'] as string)![1]!;
    expect(page.body.match(/<script/g)).toHaveLength(1);
    expect(page.body).toContain(`<script nonce="${nonce}">`);

    const other = await f.call('GET', '/sign-in', { headers: hostOf(f.b.slug) });
    expect(other.statusCode).toBe(200);
    expect(other.body).toContain('Bravo');
    expect(other.body).not.toContain('Alpha');
    expect(other.body).not.toContain('#8a1538');
  });

  it('an unknown host is 404; no tenant host is a 4xx; a token must agree with the host', async () => {
    for (const host of ['127.0.0.1:3000', 'localhost']) {
      const none = await f.call('GET', '/sign-in', { headers: { host } });
      expect(none.statusCode).toBeGreaterThanOrEqual(400);
      expect(none.statusCode).toBeLessThan(500);
      expect((await f.call('GET', '/brand/logo', { headers: { host } })).statusCode).toBeLessThan(500);
    }
    expect((await f.call('GET', '/sign-in', { headers: hostOf('nobody') })).json().error.code).toBe('TENANT_NOT_FOUND');
    const conflict = await f.call('GET', '/sign-in', { token: carol, headers: hostOf(f.a.slug) });
    expect(conflict.statusCode).toBe(400);
    expect(conflict.json().error.code).toBe('TENANT_CONFLICT');
  });
});

describe('logos', () => {
  const logo = solidPng(16, 16, [138, 21, 56]);

  it('an admin uploads one; it is served with its type, nosniff, CSP, ETag and 304', async () => {
    const put = await f.call('PUT', '/brand/logo', {
      token: alice,
      payload: logo,
      headers: { 'content-type': 'image/png' },
    });
    expect(put.statusCode).toBe(200);
    expect(put.json().brand.logo).toMatchObject({ contentType: 'image/png', width: 16, height: 16 });
    const got = await f.call('GET', '/brand/logo', { headers: hostOf(f.a.slug) });
    expect(got.statusCode).toBe(200);
    expect(got.headers['content-type']).toBe('image/png');
    expect(got.headers['x-content-type-options']).toBe('nosniff');
    expect(got.headers['content-security-policy']).toBe("default-src 'none'; sandbox");
    expect(got.headers['cache-control']).toBe('public, max-age=60');
    expect(got.rawPayload.equals(logo)).toBe(true);
    const etag = got.headers.etag as string;
    expect(etag).toMatch(/^"[0-9a-f]{64}"$/);
    const again = await f.call('GET', '/brand/logo', { headers: { ...hostOf(f.a.slug), 'if-none-match': etag } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    // the page shows it; bravo has none
    expect((await f.call('GET', '/sign-in', { headers: hostOf(f.a.slug) })).body).toMatch(
      /<img class="logo" src="\/brand\/logo\?v=/,
    );
    expect((await f.call('GET', '/brand/logo', { headers: hostOf(f.b.slug) })).statusCode).toBe(404);
  });

  it('SVG, a lying content type and an oversized image are refused; nothing changes', async () => {
    const before = await stored(f.a.id);
    const svg = await f.call('PUT', '/brand/logo', {
      token: alice,
      payload: Buffer.concat([Buffer.from([0x89, 0x50]), Buffer.from('<svg onload="alert(1)"/>')]),
      headers: { 'content-type': 'image/png' },
    });
    expect(svg.statusCode).toBe(400);
    expect(svg.json().error).toMatchObject({ code: 'BRAND_LOGO_INVALID', field: 'logo' });
    const lying = await f.call('PUT', '/brand/logo', {
      token: alice,
      payload: solidPng(4, 4, [0, 0, 0]),
      headers: { 'content-type': 'image/webp' },
    });
    expect(lying.json().error.code).toBe('BRAND_LOGO_INVALID');
    const big = await f.call('PUT', '/brand/logo', {
      token: alice,
      payload: Buffer.concat([solidPng(4, 4, [0, 0, 0]), Buffer.alloc(300 * 1024)]),
      headers: { 'content-type': 'image/png' },
    });
    expect(big.statusCode).toBe(400);
    expect(big.json().error.code).toBe('BRAND_LOGO_INVALID');
    const svgType = await f.call('PUT', '/brand/logo', {
      token: alice,
      payload: '<svg/>',
      headers: { 'content-type': 'image/svg+xml' },
    });
    expect(svgType.statusCode).toBe(415);
    expect(svgType.json().error.message).toMatch(/image\/png, image\/jpeg or image\/webp/);
    const json = await f.call('PUT', '/brand/logo', { token: alice, payload: { logo: 'aGk=' } });
    expect(json.statusCode).toBe(415);
    expect(json.json().error).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
    expect(json.json().error.message).toMatch(/image\/png/);
    expect(await stored(f.a.id)).toEqual(before);
  });
});

describe('the /brand API: who may change it', () => {
  it('a bad colour is 400 naming the colour, and nothing changes', async () => {
    const before = await stored(f.a.id);
    const bad = await f.call('PUT', '/brand', { token: alice, payload: { colors: { text: '#aaaaaa' } } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'BRAND_INVALID', field: 'colors.text' });
    expect(bad.json().error.message).toMatch(/WCAG AA needs at least 4.5:1/);
    const crlf = await f.call('PUT', '/brand', { token: alice, payload: { emailSenderName: 'A\r\nBcc: x@y.test' } });
    expect(crlf.json().error).toMatchObject({ code: 'BRAND_INVALID', field: 'emailSenderName' });
    expect(await stored(f.a.id)).toEqual(before);
  });

  it("a member, and another tenant's owner, are refused; nothing of alpha changes", async () => {
    const before = await stored(f.a.id);
    const member = await f.call('PUT', '/brand', { token: bob, payload: { displayName: 'Taken over' } });
    expect(member.statusCode).toBe(403);
    const memberLogo = await f.call('DELETE', '/brand/logo', { token: bob });
    expect(memberLogo.statusCode).toBe(403);
    const cross = await f.call('PUT', '/brand', {
      token: carol,
      payload: { displayName: 'Taken over' },
      headers: hostOf(f.a.slug),
    });
    expect(cross.statusCode).toBe(400);
    expect(cross.json().error.code).toBe('TENANT_CONFLICT');
    const crossTenant = await f.call('PUT', '/brand', {
      token: carol,
      payload: { displayName: 'Taken over' },
      headers: { 'x-tenant': f.a.slug },
    });
    expect(crossTenant.statusCode).toBeGreaterThanOrEqual(400);
    expect(await stored(f.a.id)).toEqual(before);
    // carol's own token changes bravo alone
    const own = await f.call('PUT', '/brand', { token: carol, payload: { displayName: 'Bravo Ltd' } });
    expect(own.statusCode).toBe(200);
    expect(await stored(f.a.id)).toEqual(before);
    expect((await f.call('GET', '/sign-in', { headers: hostOf(f.a.slug) })).body).not.toContain('Bravo Ltd');
  });

  it('members read it; history, rollback; the audit log names the real actor', async () => {
    const read = await f.call('GET', '/brand', { token: bob });
    expect(read.statusCode).toBe(200);
    expect(read.json().source).toBe('tenant');
    expect((await f.call('GET', '/brand/history', { token: bob })).statusCode).toBe(403);
    const history = await f.call('GET', '/brand/history', { token: alice });
    expect(history.json().items.map((i: { version: number }) => i.version)).toEqual([2, 1]);
    expect(history.json().items[1].actor).toBe(`user:${f.users.alice.id}`);
    const back = await f.call('POST', '/brand/rollback', { token: alice, payload: { version: 1 } });
    expect(back.statusCode).toBe(200);
    expect(back.json()).toMatchObject({ version: 3, brand: { logo: null } });
    const missing = await f.call('POST', '/brand/rollback', { token: alice, payload: { version: 99 } });
    expect(missing.json().error.code).toBe('BRAND_VERSION_NOT_FOUND');
    const audit = await f.call('GET', '/audit-log?limit=20', { token: alice });
    const entries = audit.json().items.filter((i: { action: string }) => i.action === 'brand.changed');
    expect(entries).toHaveLength(3);
    for (const e of entries) expect(e).toMatchObject({ actorKind: 'user', actorId: f.users.alice.id });
  });
});
