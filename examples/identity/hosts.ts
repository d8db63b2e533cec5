/**
 * Tenants by host (docs/identity-hosts.md): `<slug>.<baseDomain>` subdomains and custom domains
 * a tenant proved it controls with a DNS TXT record. Names are cached for a short while; the
 * tenant's status never is. The DNS lookup is a fake here (a map), so the example runs offline.
 *
 *   npx tsx examples/identity/hosts.ts
 */
import {
  normalizeHost,
  runAs,
  TenantCatalog,
  TenantDomains,
  TenantResolver,
  type RequestFacts,
} from '../../src/index.js';
import { openExampleDatabase } from './example-database.js';

const db = await openExampleDatabase();
try {
  const catalog = new TenantCatalog(db.owner);
  const acme = await catalog.create({ slug: 'acme', name: 'Acme' });
  const globex = await catalog.create({ slug: 'globex', name: 'Globex' });
  const name = (id: string) => (id === acme.id ? 'acme' : id === globex.id ? 'globex' : id);

  for (const host of ['ACME.Example.App:8443', 'acme.example.app.', 'bücher.example', '127.0.0.1:3000', '[::1]:3000']) {
    console.log(`normalizeHost(${JSON.stringify(host)}) = ${JSON.stringify(normalizeHost(host))}`);
  }

  // anonymous requests by host, e.g. a public sign-in page (adapters need allowAnonymous: true for these)
  const resolver = new TenantResolver({ pool: db.app, host: { baseDomain: 'example.app' } });
  const show = async (host: string, note = ''): Promise<void> => {
    const label = `Host: ${host}${note}`.padEnd(50);
    try {
      const r = await resolver.resolve({ host, headers: {} } satisfies RequestFacts);
      console.log(`${label} → ${name(r.tenantId)} (${r.tenantStatus})`);
    } catch (error) {
      const e = error as { code: string; status: number };
      console.log(`${label} → ${e.status} ${e.code}`);
    }
  };
  for (const host of ['acme.example.app', 'Globex.Example.App:443', 'nobody.example.app', 'a.acme.example.app'])
    await show(host);
  await show('www.example.app', ' (reserved: names no tenant)');
  await show('acme..example.app', ' (malformed: refused, not ignored)');

  // custom domains: claim, publish the TXT record, verify
  const dns = new Map<string, string[][]>();
  // baseDomain as the resolver's: nobody claims a name under it (it would shadow a subdomain)
  const domains = new TenantDomains(db.app, {
    baseDomain: 'example.app',
    resolveTxt: async (txtName) => dns.get(txtName) ?? [],
  });
  try {
    await runAs(acme.id, () => domains.add('globex.example.app'));
  } catch (error) {
    const e = error as { code: string; status: number };
    console.log(`acme claims globex.example.app → ${e.status} ${e.code}`);
  }
  const claimed = await runAs(acme.id, () => domains.add('Portal.Acme-Corp.test'));
  console.log(`acme claims ${claimed.domain}: publish TXT ${claimed.txtName} "${claimed.txtValue.slice(0, 16)}…"`);
  await show('portal.acme-corp.test', ' (unverified)');

  // the other tenant's side: globex cannot take it, nor verify it
  for (const [verb, attempt] of [
    ['claims', () => domains.add('portal.acme-corp.test')],
    ['verifies', () => domains.verify('portal.acme-corp.test')],
  ] as const) {
    try {
      await runAs(globex.id, attempt);
    } catch (error) {
      const e = error as { code: string; status: number };
      console.log(`globex ${verb} portal.acme-corp.test → ${e.status} ${e.code}`);
    }
  }
  try {
    await runAs(acme.id, () => domains.verify('portal.acme-corp.test'));
  } catch (error) {
    console.log(`acme verifies before publishing → ${(error as { code: string }).code}`);
  }
  dns.set(claimed.txtName, [[claimed.txtValue]]);
  const verified = await runAs(acme.id, () => domains.verify('portal.acme-corp.test'));
  console.log(`acme verifies after publishing → verified ${verified.verifiedAt !== null}`);
  resolver.forgetNames(); // the unknown name above was remembered for a second
  await show('portal.acme-corp.test', ' (verified)');

  // status is read on every request, names are cached (30 s by default)
  await catalog.suspend(acme.id);
  await show('portal.acme-corp.test', ' (acme suspended)');
  await catalog.resume(acme.id);
  await runAs(acme.id, () => domains.remove('portal.acme-corp.test'));
  await show('portal.acme-corp.test', ' (removed, name cached)');
  resolver.forgetNames();
  await show('portal.acme-corp.test', ' (removed, after forgetNames)');
} finally {
  await db.close();
}
