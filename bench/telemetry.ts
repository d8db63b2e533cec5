/**
 * What telemetry costs on the pool path (`npm run bench:telemetry`): the same point read through a
 * TenantPool with nothing installed (what an application without tenantry/otel and
 * tenantry/metrics pays: one check of a module variable per statement; `@opentelemetry/api` and
 * prom-client are not even loaded), with tracing through the API but no SDK (a no-op tracer),
 * with tracing into an SDK (TenantSpanProcessor + BatchSpanProcessor into an in-memory exporter,
 * every span recorded), with
 * per-tenant metrics, and with both. Variants run interleaved, round after round, so a neighbour's
 * load on the shared machine hits them alike. Reported: wall time per statement, client CPU per
 * statement (process.cpuUsage), and the ratio of each to "none".
 *
 *   npm run bench:telemetry
 *   npm run bench:telemetry -- --statements=4000 --rounds=5 --concurrency=8
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:telemetry
 */
import { performance } from 'node:perf_hooks';
import { runAs } from '../src/context/tenant-context.js';
import { TenantPool } from '../src/data/tenant-pool.js';
import { install } from '../src/policy/installer.js';
import { benchRoles, tenantIdOf } from './support/dataset.js';
import { machineLine, vitestProcesses } from './support/report.js';
import { openServer } from './support/server.js';

const DATABASE = 'tenantry_bench_telemetry';

function flag(name: string, fallback: number): number {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

const log = (line = '') => process.stdout.write(`${line}\n`);

interface Variant {
  name: string;
  /** Installs the variant's telemetry; returns how to remove it. */
  setUp(): Promise<() => Promise<void> | void>;
}

const VARIANTS: Variant[] = [
  { name: 'none (nothing installed)', setUp: async () => () => undefined },
  {
    name: 'otel, API only (no SDK)',
    setUp: async () => {
      const { installTenantTracing } = await import('../src/otel/index.js');
      const tracing = installTenantTracing();
      return () => tracing.uninstall();
    },
  },
  {
    name: 'otel + SDK (batch, in-memory)',
    setUp: async () => {
      const { installTenantTracing, TenantSpanProcessor } = await import('../src/otel/index.js');
      const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } =
        await import('@opentelemetry/sdk-trace-base');
      const exporter = new InMemorySpanExporter();
      const provider = new BasicTracerProvider({
        spanProcessors: [new TenantSpanProcessor(), new SimpleSpanProcessor(exporter)],
      });
      const tracing = installTenantTracing({ tracer: provider.getTracer('tenantry') });
      return async () => {
        tracing.uninstall();
        await provider.shutdown();
        exporter.reset();
      };
    },
  },
  {
    name: 'metrics (prom-client)',
    setUp: async () => {
      const { TenantMetrics } = await import('../src/metrics/index.js');
      const metrics = new TenantMetrics({ topK: 20 }).install();
      return () => metrics.uninstall();
    },
  },
  {
    name: 'otel + SDK + metrics',
    setUp: async () => {
      const removeTracing = await VARIANTS[2]!.setUp();
      const removeMetrics = await VARIANTS[3]!.setUp();
      return async () => {
        await removeTracing();
        await removeMetrics();
      };
    },
  },
];

async function measure(pool: TenantPool, tenants: string[], statements: number, concurrency: number) {
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < statements) {
        const i = next++;
        await runAs(tenants[i % tenants.length]!, () => pool.query('select $1::int as n', [i]));
      }
    }),
  );
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { wallUs: (wallMs * 1000) / statements, cpuUs: (used.user + used.system) / statements };
}

const statements = flag('statements', 3000);
const rounds = flag('rounds', 5);
const concurrency = flag('concurrency', 8);
const server = await openServer(process.env.DATABASE_URL);
const roles = benchRoles();
try {
  await server.createDatabase(DATABASE);
  await install(server.url(DATABASE), {
    appRole: roles.app.name,
    ownerRole: roles.owner.name,
    appPassword: roles.app.password,
    ownerPassword: roles.owner.password,
    contextSecret: roles.contextSecret,
  });
  const pool = new TenantPool({
    connectionString: server.url(DATABASE, roles.app),
    contextSecret: roles.contextSecret,
    max: concurrency,
  });
  const tenants = Array.from({ length: 50 }, (_, k) => tenantIdOf(k));
  log(`bench:telemetry — ${statements} statements × ${rounds} rounds per variant, concurrency ${concurrency}`);
  log(machineLine(server.version, server.embedded));
  if (vitestProcesses() > 0) log(`note: ${vitestProcesses()} vitest processes were running on this machine`);
  await measure(pool, tenants, statements, concurrency); // warm up: connections, JIT
  const results = VARIANTS.map(() => ({ wall: [] as number[], cpu: [] as number[] }));
  for (let round = 0; round < rounds; round++) {
    for (const [i, variant] of VARIANTS.entries()) {
      const remove = await variant.setUp();
      try {
        const { wallUs, cpuUs } = await measure(pool, tenants, statements, concurrency);
        results[i]!.wall.push(wallUs);
        results[i]!.cpu.push(cpuUs);
      } finally {
        await remove();
      }
    }
  }
  await pool.end();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const base = { wall: median(results[0]!.wall), cpu: median(results[0]!.cpu) };
  log('');
  log('| variant | wall µs/stmt (median) | client CPU µs/stmt (median) | wall ratio | CPU ratio |');
  log('| --- | ---: | ---: | ---: | ---: |');
  for (const [i, variant] of VARIANTS.entries()) {
    const wall = median(results[i]!.wall);
    const cpu = median(results[i]!.cpu);
    log(
      `| ${variant.name} | ${wall.toFixed(1)} | ${cpu.toFixed(1)} | ${(wall / base.wall).toFixed(3)} | ${(cpu / base.cpu).toFixed(3)} |`,
    );
  }
} finally {
  await server.close({ databases: [DATABASE], roles: [roles.app.name, roles.owner.name] });
}
