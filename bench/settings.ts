/**
 * What reading a setting costs on the hot path (`npm run bench:settings`): once a tenant's
 * settings are cached in-process, `peek` (synchronous) and `get` (a Promise) against a plain
 * property read, and a feature flag through TenantFlags and through the OpenFeature client.
 * The database is a stub that answers the first load of each tenant: the cached path never
 * queries it (that is the point being measured). 1,000 tenants, read round-robin.
 */
import { randomUUID } from 'node:crypto';
import { OpenFeature } from '@openfeature/server-sdk';
import { z } from 'zod';
import type { Queryable } from '../src/catalog/tenant-catalog.js';
import { runAs } from '../src/context/tenant-context.js';
import { defineFlags, defineSettings, TenantFlagProvider, TenantFlags, TenantSettings } from '../src/settings/index.js';

const definition = defineSettings({
  schema: z.object({ maxUploadMb: z.number().int().default(10), theme: z.enum(['light', 'dark']).default('light') }),
  plans: { pro: { maxUploadMb: 100 } },
});
const flagsDefinition = defineFlags({ 'new-editor': { off: false, plans: ['pro'], rollout: 20 } });
// answers the settings and flags loads (no database: only the first read of a tenant asks)
const stub = {
  query: async (sql: string) => ({
    rows: sql.includes('feature_flags')
      ? []
      : [{ plan: 'pro', overrides: sql.includes('tenant_flags') ? {} : { theme: 'dark' }, version: '3' }],
  }),
} as unknown as Queryable;

const settings = new TenantSettings({ definition, db: stub });
const flags = new TenantFlags({ definition: flagsDefinition, db: stub });
await OpenFeature.setProviderAndWait(new TenantFlagProvider(flags));
const client = OpenFeature.getClient();
const tenants = Array.from({ length: 1000 }, () => randomUUID());
for (const t of tenants) await runAs(t, async () => (await settings.all(), await flags.evaluate('new-editor')));
const plain = Object.freeze({ maxUploadMb: 100, theme: 'dark' });

const N = 1_000_000;
const BATCH = 1000;
let sink = 0;

/**
 * N reads, inside tenants' scopes as a request handler runs: the scope is entered once per
 * 1,000 reads (round-robin over the tenants), so what is measured is the read, not runAs.
 * Wall time and CPU time per read (the machine is shared: CPU is the steadier figure).
 */
async function measure(name: string, read: () => unknown, isAsync: boolean, baseline?: number): Promise<number> {
  const batch = (t: string) =>
    runAs(t, async () => {
      if (isAsync) for (let k = 0; k < BATCH; k++) await read();
      else for (let k = 0; k < BATCH; k++) read();
    });
  for (let i = 0; i < N / BATCH / 10; i++) await batch(tenants[i % tenants.length]!); // warm up
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  for (let i = 0; i < N / BATCH; i++) await batch(tenants[i % tenants.length]!);
  const ns = Number(process.hrtime.bigint() - started) / N;
  const used = process.cpuUsage(cpu);
  const cpuNs = ((used.user + used.system) * 1000) / N;
  const ratio = baseline ? ` (${(cpuNs / baseline).toFixed(1)}× the plain read's CPU)` : '';
  console.log(
    `${name.padEnd(44)} ${(ns / 1000).toFixed(3)} µs/read wall, ${(cpuNs / 1000).toFixed(3)} µs/read CPU${ratio}`,
  );
  return cpuNs;
}

console.log(
  `settings hot path: ${tenants.length} tenants cached, ${N.toLocaleString('en')} reads each, node ${process.version}`,
);
const base = await measure('plain property read (baseline)', () => (sink += plain.maxUploadMb), false);
await measure('settings.peek (sync, cached)', () => (sink += settings.peek('maxUploadMb') ?? 0), false, base);
await measure('await settings.get (cached)', async () => (sink += await settings.get('maxUploadMb')), true, base);
await measure(
  'await flags.evaluate (cached)',
  async () => (sink += (await flags.evaluate('new-editor')).value ? 1 : 0),
  true,
  base,
);
await measure(
  'await OpenFeature getBooleanValue (cached)',
  async () => (sink += (await client.getBooleanValue('new-editor', false)) ? 1 : 0),
  true,
  base,
);
await OpenFeature.close();
if (sink === 42) console.log('');
