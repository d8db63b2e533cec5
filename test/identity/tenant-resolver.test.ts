import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { AccessError } from '../../src/identity/access-error.js';
import { ApiKeys } from '../../src/identity/api-keys.js';
import { Sessions } from '../../src/identity/sessions.js';
import { TenantDomains } from '../../src/identity/tenant-domains.js';
import { TenantResolver } from '../../src/identity/tenant-resolver.js';
import { bearer, createIdentityFixture, type IdentityFixture } from './support/identity-fixture.js';

let f: IdentityFixture;
beforeAll(async () => {
  f = await createIdentityFixture();
});
afterAll(async () => {
  await f?.close();
});

/** The code of the error `promise` rejects with. */
async function refusal(promise: Promise<unknown>): Promise<{ code: string; status: number; message: string }> {
  const error = (await promise.then(
    () => {
      throw new Error('expected a refusal, got a resolution');
    },
    (e: unknown) => e,
  )) as { code: string; status: number; message: string };
  return { code: error.code, status: error.status, message: error.message };
}

describe('member tokens', () => {
  it('resolve the token tenant for a member with a live session', async () => {
    const { token, sessionId } = await f.signIn(f.users.alice, f.acme.id);
    const r = await f.resolver().resolve({ headers: bearer(token) });
    expect(r.tenantId).toBe(f.acme.id);
    expect(r.principal).toEqual({ kind: 'user', userId: f.users.alice, sessionId, member: { role: 'admin' } });
    expect(r.sources).toEqual(['token']);
  });

  it('a signed token naming a tenant the user is not a member of is refused (403 NOT_A_MEMBER)', async () => {
    const { sessionId } = await new Sessions(f.db.owner).start({
      userId: f.users.alice,
      tenantId: f.globex.id,
      kind: 'user',
      ttlSeconds: 600,
    });
    const token = await f.sign({ sub: f.users.alice, tid: f.globex.id, sid: sessionId });
    expect(await refusal(f.resolver().resolve({ headers: bearer(token) }))).toMatchObject({
      code: 'NOT_A_MEMBER',
      status: 403,
    });
  });

  it('a token of tenant A with a session of tenant B is refused (the session binds the tenant)', async () => {
    const { sessionId } = await f.signIn(f.users.sam, f.globex.id);
    const token = await f.sign({ sub: f.users.sam, tid: f.acme.id, sid: sessionId });
    expect(await refusal(f.resolver().resolve({ headers: bearer(token) }))).toMatchObject({
      code: 'SESSION_REVOKED',
      status: 401,
    });
  });

  it('a removed member is refused on the next request, with the same unexpired token', async () => {
    const { token } = await f.signIn(f.users.sam, f.acme.id);
    const resolver = f.resolver();
    expect((await resolver.resolve({ headers: bearer(token) })).tenantId).toBe(f.acme.id);
    await f.db.owner.query('delete from public.members where tenant_id = $1 and user_id = $2', [
      f.acme.id,
      f.users.sam,
    ]);
    try {
      expect(await refusal(resolver.resolve({ headers: bearer(token) }))).toMatchObject({
        code: 'NOT_A_MEMBER',
        status: 403,
      });
    } finally {
      await f.db.owner.query(`insert into public.members (tenant_id, user_id, role) values ($1, $2, 'member')`, [
        f.acme.id,
        f.users.sam,
      ]);
    }
  });

  it('sign-out ends the session at once: the same token is refused', async () => {
    const { token, sessionId } = await f.signIn(f.users.alice, f.acme.id);
    const resolver = f.resolver();
    await resolver.resolve({ headers: bearer(token) });
    expect(await new Sessions(f.pool).end(sessionId)).toBe(true);
    expect(await refusal(resolver.resolve({ headers: bearer(token) }))).toMatchObject({
      code: 'SESSION_REVOKED',
      status: 401,
    });
    expect(await new Sessions(f.pool).end(sessionId)).toBe(false);
  });

  it('a token without a session id is refused while sessions are on', async () => {
    const token = await f.sign({ sub: f.users.alice, tid: f.acme.id });
    expect(await refusal(f.resolver().resolve({ headers: bearer(token) }))).toMatchObject({ code: 'SESSION_REVOKED' });
    // and accepted where the deployment opted out of sessions (an external identity provider)
    const r = await f.resolver({ sessions: false }).resolve({ headers: bearer(token) });
    expect(r.tenantId).toBe(f.acme.id);
  });

  it('a session id made up by the client is refused', async () => {
    const token = await f.sign({ sub: f.users.alice, tid: f.acme.id, sid: randomUUID() });
    expect(await refusal(f.resolver().resolve({ headers: bearer(token) }))).toMatchObject({ code: 'SESSION_REVOKED' });
  });

  it('unknown and deleted tenants answer 404, a suspended one 403 TENANT_SUSPENDED (members only)', async () => {
    const ghost = randomUUID();
    const token = await f.sign({ sub: f.users.alice, tid: ghost, sid: randomUUID() });
    expect(await refusal(f.resolver().resolve({ headers: bearer(token) }))).toMatchObject({
      code: 'TENANT_NOT_FOUND',
      status: 404,
    });

    const doomed = await f.catalog.create({ slug: 'doomed', name: 'Doomed' });
    await f.db.owner.query(`insert into public.members (tenant_id, user_id) values ($1, $2)`, [
      doomed.id,
      f.users.alice,
    ]);
    const { token: doomedToken } = await f.signIn(f.users.alice, doomed.id);
    const { token: outsider } = await f.signIn(f.users.grace, doomed.id);
    await f.catalog.suspend(doomed.id);
    expect(await refusal(f.resolver().resolve({ headers: bearer(doomedToken) }))).toMatchObject({
      code: 'TENANT_SUSPENDED',
      status: 403,
    });
    // a non-member learns nothing about the tenant's state
    expect(await refusal(f.resolver().resolve({ headers: bearer(outsider) }))).toMatchObject({
      code: 'NOT_A_MEMBER',
      status: 403,
    });
    await f.catalog.softDelete(doomed.id);
    expect(await refusal(f.resolver().resolve({ headers: bearer(doomedToken) }))).toMatchObject({
      code: 'TENANT_NOT_FOUND',
      status: 404,
    });
  });

  it('no credentials: 401; a malformed Authorization header: 401; the credential never appears in the message', async () => {
    expect(await refusal(f.resolver().resolve({ headers: {} }))).toMatchObject({
      code: 'UNAUTHENTICATED',
      status: 401,
    });
    const garbage = 'Bearer not a token at all';
    const r = await refusal(f.resolver().resolve({ headers: { authorization: garbage } }));
    expect(r).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
    expect(r.message).not.toContain('not a token');
  });

  it('staff-shaped claims in a member token (kind staff with a tid) are refused', async () => {
    const { sessionId } = await f.staffSignIn();
    const token = await f.sign({ sub: f.users.staff, sid: sessionId, kind: 'staff', tid: f.acme.id });
    expect(await refusal(f.resolver().resolve({ headers: bearer(token) }))).toMatchObject({
      code: 'TOKEN_INVALID',
      status: 401,
    });
    for (const claims of [
      { sub: 'alice', tid: f.acme.id, sid: sessionId },
      { sub: f.users.alice, sid: sessionId },
      { sub: f.users.alice, tid: f.acme.id, sid: sessionId, kind: 'robot' },
    ]) {
      expect(await refusal(f.resolver().resolve({ headers: bearer(await f.sign(claims)) }))).toMatchObject({
        code: 'TOKEN_INVALID',
        status: 401,
      });
    }
  });
});

describe('conflicting signals are refused, never resolved by precedence', () => {
  it("a token of tenant A on tenant B's subdomain", async () => {
    const { token } = await f.signIn(f.users.alice, f.acme.id);
    const resolver = f.resolver({ host: { baseDomain: 'example.test' } });
    expect((await resolver.resolve({ host: 'acme.example.test', headers: bearer(token) })).sources).toEqual([
      'token',
      'host',
    ]);
    expect(await refusal(resolver.resolve({ host: 'globex.example.test', headers: bearer(token) }))).toMatchObject({
      code: 'TENANT_CONFLICT',
      status: 400,
    });
  });

  it("a token of tenant A with tenant B's API key", async () => {
    const { key } = await runAs(f.globex.id, () => new ApiKeys(f.pool).create({ name: 'globex ci' }));
    const { token } = await f.signIn(f.users.alice, f.acme.id);
    expect(await refusal(f.resolver().resolve({ headers: { ...bearer(token), 'x-api-key': key } }))).toMatchObject({
      code: 'TENANT_CONFLICT',
    });
  });

  it('a token of tenant A with tenant B named in the header or the path', async () => {
    const { token } = await f.signIn(f.users.sam, f.acme.id);
    const resolver = f.resolver();
    expect(await refusal(resolver.resolve({ headers: { ...bearer(token), 'x-tenant': 'globex' } }))).toMatchObject({
      code: 'TENANT_CONFLICT',
    });
    expect(await refusal(resolver.resolve({ headers: { ...bearer(token), 'x-tenant': f.globex.id } }))).toMatchObject({
      code: 'TENANT_CONFLICT',
    });
    expect(await refusal(resolver.resolve({ headers: bearer(token), pathTenant: 'globex' }))).toMatchObject({
      code: 'TENANT_CONFLICT',
    });
    // naming the token's own tenant is fine
    expect((await resolver.resolve({ headers: { ...bearer(token), 'x-tenant': 'acme' } })).tenantId).toBe(f.acme.id);
  });

  it('a header or path naming a tenant is never trusted on its own', async () => {
    const resolver = f.resolver({ host: { baseDomain: 'example.test' } });
    expect(await refusal(resolver.resolve({ headers: { 'x-tenant': 'acme' } }))).toMatchObject({
      code: 'TENANT_SELECTION_FORBIDDEN',
      status: 403,
    });
    expect(await refusal(resolver.resolve({ headers: {}, pathTenant: f.acme.id }))).toMatchObject({
      code: 'TENANT_SELECTION_FORBIDDEN',
    });
    // not even with a host that agrees: a host is no credential
    expect(
      await refusal(resolver.resolve({ host: 'acme.example.test', headers: { 'x-tenant': 'acme' } })),
    ).toMatchObject({ code: 'TENANT_SELECTION_FORBIDDEN' });
  });

  it('a repeated tenant header is refused', async () => {
    const { token } = await f.signIn(f.users.alice, f.acme.id);
    expect(
      await refusal(f.resolver().resolve({ headers: { ...bearer(token), 'x-tenant': ['acme', 'globex'] } })),
    ).toMatchObject({ code: 'TENANT_CONFLICT' });
  });

  it("with a credential, an unknown subdomain is a conflict like another tenant's: whether a tenant exists is never told", async () => {
    const { token } = await f.signIn(f.users.alice, f.acme.id);
    const resolver = f.resolver({ host: { baseDomain: 'example.test' } });
    const unknown = await refusal(resolver.resolve({ host: 'nobody.example.test', headers: bearer(token) }));
    const other = await refusal(resolver.resolve({ host: 'globex.example.test', headers: bearer(token) }));
    expect(unknown).toMatchObject({ code: 'TENANT_CONFLICT', status: 400 });
    expect(other).toMatchObject({ code: 'TENANT_CONFLICT', status: 400 });
    // without a credential, an unknown host is 404: a host is a public name, like a workspace URL
    expect(await refusal(resolver.resolve({ host: 'nobody.example.test', headers: {} }))).toMatchObject({
      code: 'TENANT_NOT_FOUND',
    });
    // a non-staff X-Tenant choice is refused the same way whether the tenant exists or not
    const chosen = (tenant: string) => refusal(resolver.resolve({ headers: { 'x-tenant': tenant } }));
    expect(await chosen('globex')).toMatchObject({ code: 'TENANT_SELECTION_FORBIDDEN' });
    expect(await chosen('nobody')).toMatchObject({ code: 'TENANT_SELECTION_FORBIDDEN' });
    const withToken = (tenant: string) =>
      refusal(resolver.resolve({ headers: { ...bearer(token), 'x-tenant': tenant } }));
    expect(await withToken('globex')).toMatchObject({ code: 'TENANT_CONFLICT' });
    expect(await withToken('nobody')).toMatchObject({ code: 'TENANT_CONFLICT' });
    // reserved and bare hosts name no tenant
    expect((await resolver.resolve({ host: 'www.example.test', headers: bearer(token) })).sources).toEqual(['token']);
    expect((await resolver.resolve({ host: 'example.test:8443', headers: bearer(token) })).sources).toEqual(['token']);
  });
});

describe('host resolution', () => {
  it("a custom domain under the base domain is refused (DOMAIN_RESERVED), from the claimer's side and the slug owner's", async () => {
    const domains = new TenantDomains(f.pool, { baseDomain: 'example.test', resolveTxt: async () => [] });
    const before = await f.db.admin.query('select domain from tenantry_private.domains order by domain');
    for (const domain of [`${f.globex.slug}.example.test`, 'example.test', 'x.y.EXAMPLE.test.']) {
      expect(await refusal(runAs(f.acme.id, () => domains.add(domain)))).toMatchObject({
        code: 'DOMAIN_RESERVED',
        status: 400,
      });
    }
    expect((await f.db.admin.query('select domain from tenantry_private.domains order by domain')).rows).toEqual(
      before.rows,
    );
    // globex's subdomain still names globex
    const resolver = f.resolver({ host: { baseDomain: 'example.test', cacheSeconds: 0 } });
    const { token } = await f.signIn(f.users.grace, f.globex.id);
    const r = await resolver.resolve({ host: `${f.globex.slug}.example.test`, headers: bearer(token) });
    expect(r.tenantId).toBe(f.globex.id);
    expect(() => new TenantDomains(f.pool, { baseDomain: 'not a domain' })).toThrow(/baseDomain/);
  });

  it('a malformed Host, or an absolute-form target naming another host, is refused before anything is looked up', async () => {
    const resolver = f.resolver({ host: { baseDomain: 'example.test' } });
    const { token } = await f.signIn(f.users.alice, f.acme.id);
    for (const host of ['acme example.test', 'acme..example.test', 'acme.example.test:65536', '_x.example.test']) {
      expect(await refusal(resolver.resolve({ host, headers: bearer(token) }))).toMatchObject({
        code: 'HOST_INVALID',
        status: 400,
      });
    }
    expect(
      await refusal(
        resolver.resolve({
          host: `${f.acme.slug}.example.test`,
          target: `http://${f.globex.slug}.example.test/recordings`,
          headers: bearer(token),
        }),
      ),
    ).toMatchObject({ code: 'HOST_MISMATCH', status: 400 });
    const same = await resolver.resolve({
      host: `${f.acme.slug}.example.test`,
      target: `http://${f.acme.slug}.example.test/recordings`,
      headers: bearer(token),
    });
    expect(same.tenantId).toBe(f.acme.id);
  });

  it('a custom domain resolves only once verified, and only to its tenant', async () => {
    const txt = new Map<string, string[][]>();
    const domains = new TenantDomains(f.pool, { resolveTxt: async (name) => txt.get(name) ?? [] });
    const claimed = await runAs(f.acme.id, () => domains.add('Files.Acme-Corp.TEST'));
    expect(claimed).toMatchObject({
      domain: 'files.acme-corp.test',
      txtName: '_tenantry.files.acme-corp.test',
      verifiedAt: null,
    });
    const { token } = await f.signIn(f.users.alice, f.acme.id);
    const resolver = f.resolver({ host: { customDomains: true, cacheSeconds: 0 } });
    // unverified: no tenant by that name (with a credential, that is a conflict: existence is not told)
    expect(await refusal(resolver.resolve({ host: 'files.acme-corp.test', headers: bearer(token) }))).toMatchObject({
      code: 'TENANT_CONFLICT',
    });
    expect(await refusal(resolver.resolve({ host: 'files.acme-corp.test', headers: {} }))).toMatchObject({
      code: 'TENANT_NOT_FOUND',
    });
    // globex cannot take it, nor verify it
    expect(await refusal(runAs(f.globex.id, () => domains.add('files.acme-corp.test')))).toMatchObject({
      code: 'DOMAIN_TAKEN',
      status: 409,
    });
    expect(await refusal(runAs(f.globex.id, () => domains.verify('files.acme-corp.test')))).toMatchObject({
      code: 'DOMAIN_UNVERIFIED',
    });
    // a wrong record does not verify
    txt.set(claimed.txtName, [['tenantry-verify=wrong']]);
    expect(await refusal(runAs(f.acme.id, () => domains.verify('files.acme-corp.test')))).toMatchObject({
      code: 'DOMAIN_UNVERIFIED',
    });
    txt.set(claimed.txtName, [[claimed.txtValue.slice(0, 10), claimed.txtValue.slice(10)]]);
    expect((await runAs(f.acme.id, () => domains.verify('files.acme-corp.test'))).verifiedAt).toBeInstanceOf(Date);

    expect((await resolver.resolve({ host: 'files.acme-corp.test:443', headers: bearer(token) })).sources).toEqual([
      'token',
      'host',
    ]);
    const { token: graceToken } = await f.signIn(f.users.grace, f.globex.id);
    expect(
      await refusal(resolver.resolve({ host: 'files.acme-corp.test', headers: bearer(graceToken) })),
    ).toMatchObject({ code: 'TENANT_CONFLICT' });
    // globex sees none of acme's domains, and cannot remove them
    expect(await runAs(f.globex.id, () => domains.list())).toEqual([]);
    expect(await runAs(f.globex.id, () => domains.remove('files.acme-corp.test'))).toBe(false);
    expect(await domains.resolve('files.acme-corp.test')).toMatchObject({ tenantId: f.acme.id });
    expect(await runAs(f.acme.id, () => domains.remove('files.acme-corp.test'))).toBe(true);
    expect(await domains.resolve('files.acme-corp.test')).toBeUndefined();
  });

  it('adds racing removes of the same domain end in the domain or a DOMAIN_TAKEN refusal, never a crash (fuzz: CI run 10)', async () => {
    const domains = new TenantDomains(f.pool, { resolveTxt: async () => [] });
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        runAs(f.acme.id, () =>
          i % 2 ? domains.remove('race.acme-corp.test') : domains.add('race.acme-corp.test'),
        ).then(
          (v) => (typeof v === 'boolean' ? 'removed' : v.domain),
          (error: unknown) => (error instanceof AccessError ? error.code : String(error)),
        ),
      ),
    );
    for (const outcome of outcomes) expect(['removed', 'race.acme-corp.test', 'DOMAIN_TAKEN']).toContain(outcome);
    await runAs(f.acme.id, () => domains.remove('race.acme-corp.test'));
    expect((await runAs(f.acme.id, () => domains.list())).map((d) => d.domain)).not.toContain('race.acme-corp.test');
  });

  it('host names are normalized and junk hosts name nothing', async () => {
    const { normalizeHost } = await import('../../src/identity/tenant-domains.js');
    expect(normalizeHost('ACME.Example.test.:8080')).toBe('acme.example.test');
    expect(normalizeHost('bücher.example')).toBe('xn--bcher-kva.example');
    for (const junk of [
      '127.0.0.1',
      '[::1]:80',
      'localhost',
      '',
      'a..b',
      '-a.b',
      'a_b.example',
      'x'.repeat(300),
      'fuzz.9999example',
    ])
      expect(normalizeHost(junk)).toBeUndefined();
  });

  it('a domain the table would refuse is INVALID_ARGUMENT (400) before any statement, not a database error', async () => {
    const domains = new TenantDomains(f.pool, { resolveTxt: async () => [] });
    await expect(runAs(f.acme.id, () => domains.add('fuzz.9999999999999999999example'))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});

describe('API keys', () => {
  it('resolve their tenant with no other credential; revoked, tampered, unknown and foreign keys are refused', async () => {
    const keys = new ApiKeys(f.pool);
    const created = await runAs(f.acme.id, () => keys.create({ name: 'uploader', createdBy: f.users.alice }));
    expect(created.key).toMatch(/^tnry_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    const resolver = f.resolver();
    const r = await resolver.resolve({ headers: { 'x-api-key': created.key } });
    expect(r).toMatchObject({
      tenantId: f.acme.id,
      principal: { kind: 'apiKey', keyId: created.id, name: 'uploader' },
    });
    // also as a bearer credential
    expect((await resolver.resolve({ headers: bearer(created.key) })).principal.kind).toBe('apiKey');

    const tampered = created.key.slice(0, -1) + (created.key.endsWith('A') ? 'B' : 'A');
    for (const bad of [tampered, `tnry_${'0'.repeat(32)}_${'A'.repeat(43)}`, 'tnry_short', 'plain-garbage']) {
      const answer = await refusal(resolver.resolve({ headers: { 'x-api-key': bad } }));
      expect(answer).toMatchObject({ code: 'API_KEY_INVALID', status: 401 });
      expect(answer.message).not.toContain(bad);
    }
    // globex cannot list or revoke acme's key
    expect((await runAs(f.globex.id, () => keys.list())).map((k) => k.id)).not.toContain(created.id);
    expect(await runAs(f.globex.id, () => keys.revoke(created.id))).toBe(false);
    expect((await resolver.resolve({ headers: { 'x-api-key': created.key } })).tenantId).toBe(f.acme.id);

    const listed = await runAs(f.acme.id, () => keys.list());
    expect(listed.find((k) => k.id === created.id)).toMatchObject({
      name: 'uploader',
      createdBy: f.users.alice,
      revokedAt: null,
    });
    expect(listed.find((k) => k.id === created.id)!.lastUsedAt).toBeInstanceOf(Date);
    expect(await runAs(f.acme.id, () => keys.revoke(created.id))).toBe(true);
    expect(await refusal(resolver.resolve({ headers: { 'x-api-key': created.key } }))).toMatchObject({
      code: 'API_KEY_INVALID',
    });
  });

  it('are stored only as a hash', async () => {
    const created = await runAs(f.acme.id, () => new ApiKeys(f.pool).create({ name: 'hash check' }));
    const secret = created.key.split('_').slice(2).join('_'); // the secret (base64url) may hold '_' itself
    const { rows } = await f.db.admin.query(
      `select to_jsonb(k)::text as row from tenantry_private.api_keys k where id = $1`,
      [created.id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0].row).not.toContain(secret);
  });

  it('of a suspended tenant answer 403', async () => {
    const paused = await f.catalog.create({ slug: 'paused', name: 'Paused' });
    const { key } = await runAs(paused.id, () => new ApiKeys(f.pool).create({ name: 'k' }));
    await f.catalog.suspend(paused.id);
    expect(await refusal(f.resolver().resolve({ headers: { 'x-api-key': key } }))).toMatchObject({
      code: 'TENANT_SUSPENDED',
      status: 403,
    });
  });

  it('cannot be created without a tenant in context', async () => {
    await expect(new ApiKeys(f.pool).create({ name: 'nobody' })).rejects.toMatchObject({ code: '42501' });
  });
});

describe('configuration', () => {
  it('refuses resolvers that are listed but not configured, and tokens without a membership lookup', () => {
    expect(() => new TenantResolver({ pool: f.pool, resolvers: ['host'] })).toThrow(
      /host is listed but not configured/,
    );
    expect(() => new TenantResolver({ pool: f.pool, tokens: { verify: async () => ({ claims: {} }) } })).toThrow(
      /membership/,
    );
    expect(() => new TenantResolver({ pool: f.pool, host: { baseDomain: 'Not A Host' } })).toThrow(/baseDomain/);
  });
});
