import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';

const exec = promisify(execFile);
const TSX = path.resolve('node_modules/.bin/tsx');

/**
 * Runs `npx tsx examples/identity/<name>.ts` as a subprocess on the test server (DATABASE_URL:
 * the example makes and drops its own database and roles there) and returns its output, one
 * line per entry with runs of spaces collapsed, so assertions read like the docs.
 */
async function runExample(name: string): Promise<string[]> {
  const { stdout } = await exec(TSX, [path.resolve('examples/identity', `${name}.ts`)], {
    env: { ...process.env, DATABASE_URL: inject('adminUrl') },
    timeout: 60_000,
  });
  return stdout
    .trimEnd()
    .split('\n')
    .map((line) => line.replace(/ {2,}/g, ' '));
}

describe('identity examples (docs/identity*.md)', () => {
  it('resolve-tenant: signals agree or are refused; status, session and membership checked; Fastify runs the handler as the tenant', async () => {
    const out = await runExample('resolve-tenant');
    expect(out).toEqual([
      "alice's token → acme as user, from token",
      "alice's token on acme.example.app → acme as user, from token + host",
      "alice's token on globex.example.app → 400 TENANT_CONFLICT",
      "alice's token + X-Tenant: globex → 400 TENANT_CONFLICT",
      'no credentials + X-Tenant: acme → 403 TENANT_SELECTION_FORBIDDEN',
      'no credentials on acme.example.app → acme as anonymous, from host',
      'no credentials on nobody.example.app → 404 TENANT_NOT_FOUND',
      "alice's token for globex → 403 NOT_A_MEMBER",
      "alice's token, acme suspended → 403 TENANT_SUSPENDED",
      'fastify GET /whoami with the token → 200 {"tenant":"acme","principal":"user","members":1}',
      'fastify GET /whoami without credentials → 401 {"error":{"code":"UNAUTHENTICATED","message":"Send credentials: Authorization: Bearer <token> or an API key"}}',
    ]);
  });

  it('api-keys: shown once, verified by the key, never for another tenant, revoked at once', async () => {
    const out = await runExample('api-keys');
    expect(out[0]).toMatch(/^acme created "CI upload": tnry_[0-9a-f]{9}… \(81 characters, shown once\)$/);
    expect(out.slice(1)).toEqual([
      'X-Api-Key: <key> → acme as key "CI upload"',
      'Authorization: Bearer <key> → acme as key "CI upload"',
      'the key on globex.example.app → 400 TENANT_CONFLICT',
      'the key + X-Tenant: globex → 400 TENANT_CONFLICT',
      'the key with its last character changed → 401 API_KEY_INVALID',
      'acme lists 1 key(s): CI upload; the secret is in none: true',
      'globex lists 0 key(s)',
      "globex revokes acme's key: false",
      'X-Api-Key: <key> (after globex tried) → acme as key "CI upload"',
      'app role reads tenantry_private.api_keys → 42501 (permission denied)',
      'acme revokes its key: true',
      'X-Api-Key: <key> (revoked) → 401 API_KEY_INVALID',
      'another acme key, acme suspended → 403 TENANT_SUSPENDED',
    ]);
  });

  it('hosts: subdomains, verified custom domains only, names cached but never the status', async () => {
    const out = await runExample('hosts');
    expect(out).toEqual([
      'normalizeHost("ACME.Example.App:8443") = "acme.example.app"',
      'normalizeHost("acme.example.app.") = "acme.example.app"',
      'normalizeHost("bücher.example") = "xn--bcher-kva.example"',
      'normalizeHost("127.0.0.1:3000") = undefined',
      'normalizeHost("[::1]:3000") = undefined',
      'Host: acme.example.app → acme (active)',
      'Host: Globex.Example.App:443 → globex (active)',
      'Host: nobody.example.app → 404 TENANT_NOT_FOUND',
      'Host: a.acme.example.app → 404 TENANT_NOT_FOUND',
      'Host: www.example.app (reserved: names no tenant) → 401 UNAUTHENTICATED',
      'Host: acme..example.app (malformed: refused, not ignored) → 400 HOST_INVALID',
      'acme claims globex.example.app → 400 DOMAIN_RESERVED',
      'acme claims portal.acme-corp.test: publish TXT _tenantry.portal.acme-corp.test "tenantry-verify=…"',
      'Host: portal.acme-corp.test (unverified) → 404 TENANT_NOT_FOUND',
      'globex claims portal.acme-corp.test → 409 DOMAIN_TAKEN',
      'globex verifies portal.acme-corp.test → 409 DOMAIN_UNVERIFIED',
      'acme verifies before publishing → DOMAIN_UNVERIFIED',
      'acme verifies after publishing → verified true',
      'Host: portal.acme-corp.test (verified) → acme (active)',
      'Host: portal.acme-corp.test (acme suspended) → 403 TENANT_SUSPENDED',
      'Host: portal.acme-corp.test (removed, name cached) → acme (active)',
      'Host: portal.acme-corp.test (removed, after forgetNames) → 404 TENANT_NOT_FOUND',
    ]);
  });

  it('staff: a grant with a reason and a bounded time, act-as audited, support reads read-only, an append-only log', async () => {
    const out = await runExample('staff');
    expect(out[4]).toMatch(/^grant opened on acme for 15 minutes: [0-9a-f]{8}…$/);
    out.splice(4, 1);
    expect(out).toEqual([
      'staff token, no tenant named → 400 TENANT_REQUIRED',
      'staff token + X-Tenant: acme, no grant → 403 STAFF_ACCESS_REQUIRED',
      'grant with reason "because", 30 min → REASON_INVALID',
      'grant with reason "Ticket #4711", 600 min → INVALID_ARGUMENT',
      'staff token + X-Tenant: acme, with the grant → 200 members: 1',
      'staff token + X-Tenant: globex (no grant there) → 403 STAFF_ACCESS_REQUIRED',
      'staff token + X-Tenant: acme, acme suspended → 403 TENANT_SUSPENDED',
      'staff token + X-Tenant: acme, grant ended → 403 STAFF_ACCESS_REQUIRED',
      'support role reads globex without a grant → 0 rows',
      'support read of globex with a reason → 1 member(s); an insert → 42501',
      "acme's audit log: staff.access.begin(act_as), staff.request, staff.request, staff.access.end",
      "globex's audit log: staff.access.begin(read), staff.access.end",
      'acme sees who and why: staff sasha, "Ticket #4711: uploads missing since Monday"',
      'owner role deletes audit entries → 42501',
      'app role updates audit entries → 42501',
      'app records a staff entry, no grant → STAFF_ACCESS_REQUIRED',
      'staff disabled, X-Tenant: acme → 401 SESSION_REVOKED',
    ]);
  });

  it('sessions: revocation on the next request, codes spent once, what the app role cannot do', async () => {
    const out = await runExample('sessions');
    expect(out[10]).toMatch(
      /^acme issues an invitation: a code of 22 characters \(128 bits\), expires \d{4}-\d{2}-\d{2}$/,
    );
    out.splice(10, 1);
    expect(out).toEqual([
      'app role starts a session → 42501 (permission denied)',
      "alice's token → acme as user",
      'sign-out (app role ends the session) → true',
      "alice's token after sign-out (not expired) → 401 SESSION_REVOKED",
      'a token that names no session → 401 SESSION_REVOKED',
      "globex ends alice's sessions → 0 ended",
      "alice's new token → acme as user",
      "alice's new token, membership removed → 403 NOT_A_MEMBER",
      "acme ends alice's sessions → 1 ended",
      "alice's new token, sessions ended → 401 SESSION_REVOKED",
      'acme lists 1 invitation(s) for newbie@example.test, the code in none: true; globex lists 0',
      'spent as another purpose → undefined',
      'spent → tenant acme, payload {"role":"member","email":"newbie@example.test"}',
      'spent again (a replay) → undefined',
      'a code of a suspended tenant → undefined',
      'app role: issue a code with no tenant in context → 42501',
      'app role: select from tenantry_private.sessions → 42501',
      'app role: select from tenantry_private.one_time_codes → 42501',
    ]);
  });
});
