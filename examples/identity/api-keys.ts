/**
 * Per-tenant API keys (docs/identity-api-keys.md): created inside the tenant, shown once, stored
 * as a SHA-256 the app role cannot read, verified by the key alone, revoked at once. The other
 * tenant can neither list nor revoke them, and a key never speaks for another tenant.
 *
 *   npx tsx examples/identity/api-keys.ts
 */
import { ApiKeys, runAs, TenantCatalog, TenantResolver, type RequestFacts } from '../../src/index.js';
import { openExampleDatabase } from './example-database.js';

const db = await openExampleDatabase();
try {
  const catalog = new TenantCatalog(db.owner);
  const acme = await catalog.create({ slug: 'acme', name: 'Acme' });
  const globex = await catalog.create({ slug: 'globex', name: 'Globex' });
  const name = (id: string) => (id === acme.id ? 'acme' : id === globex.id ? 'globex' : id);

  const keys = new ApiKeys(db.app); // the app role: create, list and revoke act on the tenant in context
  const created = await runAs(acme.id, () => keys.create({ name: 'CI upload' }));
  console.log(
    `acme created "${created.name}": ${created.key.slice(0, 14)}… (${created.key.length} characters, shown once)`,
  );

  // no token verifier configured: this resolver takes API keys (X-Api-Key or Bearer tnry_…) and hosts
  const resolver = new TenantResolver({ pool: db.app, host: { baseDomain: 'example.app' } });
  const show = async (label: string, facts: RequestFacts): Promise<void> => {
    try {
      const r = await resolver.resolve(facts);
      const who = r.principal.kind === 'apiKey' ? `key "${r.principal.name}"` : r.principal.kind;
      console.log(`${label.padEnd(40)} → ${name(r.tenantId)} as ${who}`);
    } catch (error) {
      const e = error as { code: string; status: number };
      console.log(`${label.padEnd(40)} → ${e.status} ${e.code}`);
    }
  };
  await show('X-Api-Key: <key>', { headers: { 'x-api-key': created.key } });
  await show('Authorization: Bearer <key>', { headers: { authorization: `Bearer ${created.key}` } });
  await show('the key on globex.example.app', { host: 'globex.example.app', headers: { 'x-api-key': created.key } });
  await show('the key + X-Tenant: globex', { headers: { 'x-api-key': created.key, 'x-tenant': 'globex' } });
  const tampered = created.key.slice(0, -1) + (created.key.endsWith('A') ? 'B' : 'A');
  await show('the key with its last character changed', { headers: { 'x-api-key': tampered } });

  // what each tenant sees: never the secret, never the other tenant's keys
  const acmeList = await runAs(acme.id, () => keys.list());
  const globexList = await runAs(globex.id, () => keys.list());
  console.log(
    `acme lists ${acmeList.length} key(s): ${acmeList.map((k) => k.name).join(', ')}; the secret is in none: ${!JSON.stringify(acmeList).includes(created.key.slice(-43))}`,
  );
  console.log(`globex lists ${globexList.length} key(s)`);

  // the other tenant's side: globex revokes acme's key → refused (false), the key still works
  console.log(`globex revokes acme's key: ${await runAs(globex.id, () => keys.revoke(created.id))}`);
  await show('X-Api-Key: <key> (after globex tried)', { headers: { 'x-api-key': created.key } });

  // the app role cannot read the stored hashes at all
  try {
    await db.app.query('select secret_hash from tenantry_private.api_keys');
  } catch (error) {
    console.log(`app role reads tenantry_private.api_keys → ${(error as { code: string }).code} (permission denied)`);
  }

  console.log(`acme revokes its key: ${await runAs(acme.id, () => keys.revoke(created.id))}`);
  await show('X-Api-Key: <key> (revoked)', { headers: { 'x-api-key': created.key } });

  // a key of a suspended tenant verifies, but the resolver refuses the tenant
  const second = await runAs(acme.id, () =>
    keys.create({ name: 'nightly export', expiresAt: new Date(Date.now() + 86_400_000) }),
  );
  await catalog.suspend(acme.id);
  await show('another acme key, acme suspended', { headers: { 'x-api-key': second.key } });
} finally {
  await db.close();
}
