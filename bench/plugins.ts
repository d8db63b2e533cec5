/**
 * What asking "has this tenant the plugin?" costs on the hot path (`npm run bench:plugins`):
 * `PluginHost.isEnabled` for the tenant in context (what `fastifyPluginRoutes` and the job gate
 * call), and for a tenant named outside its scope (one `runAs` more), against a plain property
 * read and a flag evaluation through TenantFlags (what isEnabled is built on). The database is a
 * stub that answers the first load of each tenant: the cached path never queries it. 1,000
 * tenants, round-robin.
 */
import { randomUUID } from 'node:crypto';
import type { Queryable } from '../src/catalog/tenant-catalog.js';
import { runAs } from '../src/context/tenant-context.js';
import { definePlugin, definePlugins, PluginHost } from '../src/plugins/index.js';
import { TenantFlags } from '../src/settings/index.js';

const plugins = definePlugins({
  plugins: [
    definePlugin({ name: 'transcripts', version: '1.0.0' }),
    definePlugin({ name: 'webhooks', version: '1.0.0' }),
  ],
  plans: { pro: ['transcripts'] },
});
const stub = {
  query: async (sql: string) => ({ rows: sql.includes('feature_flags') ? [] : [{ plan: 'pro', overrides: {} }] }),
} as unknown as Queryable;
const flags = new TenantFlags({ definition: plugins.flags, db: stub });
const host = new PluginHost({ registry: plugins, db: stub, flags });
const tenants = Array.from({ length: 1000 }, () => randomUUID());
for (const t of tenants) await host.isEnabled(t, 'transcripts');
const plain = Object.freeze({ enabled: true });

const N = 1_000_000;
const BATCH = 1000;
let sink = 0;

/** N reads inside tenants' scopes (entered once per 1,000 reads); wall and CPU per read. */
async function measure(name: string, read: (t: string) => unknown, isAsync: boolean, baseline?: number) {
  const batch = (t: string) =>
    runAs(t, async () => {
      if (isAsync) for (let k = 0; k < BATCH; k++) await read(t);
      else for (let k = 0; k < BATCH; k++) read(t);
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
    `${name.padEnd(48)} ${(ns / 1000).toFixed(3)} µs/read wall, ${(cpuNs / 1000).toFixed(3)} µs/read CPU${ratio}`,
  );
  return cpuNs;
}

console.log(
  `plugin enablement: ${tenants.length} tenants cached, ${N.toLocaleString('en')} reads each, node ${process.version}`,
);
const base = await measure('plain property read (baseline)', () => (sink += plain.enabled ? 1 : 0), false);
await measure(
  'await flags.evaluate (cached)',
  async () => (sink += (await flags.evaluate('plugins.transcripts')).value ? 1 : 0),
  true,
  base,
);
await measure(
  'await host.isEnabled(current tenant) (cached)',
  async (t) => (sink += (await host.isEnabled(t, 'transcripts')) ? 1 : 0),
  true,
  base,
);
const other = tenants[1]!;
await measure(
  'await host.isEnabled(another tenant) (runAs + cached)',
  async () => (sink += (await host.isEnabled(other, 'transcripts')) ? 1 : 0),
  true,
  base,
);
if (sink === 42) console.log('');
