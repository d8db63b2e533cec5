/**
 * Rate limit benchmark (tenantry/limits): what counting a request costs, side by side: no
 * limiter, the PostgreSQL store and the Redis store (when one answers), each over many tenants
 * (spread keys) and over one tenant (a hot key: every request updates the same row). Reports
 * throughput, p50/p99 latency of `consume()` and client CPU per request.
 *
 *   npm run bench:limits
 *   npm run bench:limits -- --concurrency=16 --seconds=5 --tenants=200
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:limits
 */
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import pg from 'pg';
import { TenantCatalog } from '../src/catalog/tenant-catalog.js';
import { install } from '../src/policy/installer.js';
import { TenantRateLimits, type RateLimitStore } from '../src/limits/index.js';
import { benchRoles } from './support/dataset.js';
import { LatencyRecorder } from './support/latency.js';
import { machineLine, vitestProcesses, runBenchMain } from './support/report.js';
import { openServer } from './support/server.js';

const DATABASE = 'tenantry_bench_limits';
const REDIS_URL = process.env.TENANTRY_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

function flag(name: string, fallback: number): number {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

const log = (line = '') => process.stdout.write(`${line}\n`);

interface Cell {
  mode: string;
  keys: string;
  perSecond: number;
  p50: number;
  p99: number;
  cpuUs: number;
}

async function measure(
  mode: string,
  keys: string,
  consume: (tenant: string) => Promise<unknown>,
  tenants: string[],
  o: { concurrency: number; seconds: number },
): Promise<Cell> {
  // warm-up: connections open, statements prepared, every tenant's plan cached and counter row made
  for (let k = 0; k < tenants.length; k += o.concurrency)
    await Promise.all(tenants.slice(k, k + o.concurrency).map((t) => consume(t)));
  const latency = new LatencyRecorder(2_000_000);
  const end = performance.now() + o.seconds * 1000;
  const cpu = process.cpuUsage();
  const started = performance.now();
  let i = 0;
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (performance.now() < end) {
        const tenant = tenants[i++ % tenants.length]!;
        const t0 = process.hrtime.bigint();
        await consume(tenant);
        latency.record(Number(process.hrtime.bigint() - t0));
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const [p50, p99] = latency.percentiles(50, 99);
  return {
    mode,
    keys,
    perSecond: latency.count / elapsed,
    p50: p50!,
    p99: p99!,
    cpuUs: (used.user + used.system) / latency.count,
  };
}

async function redisClient(): Promise<Redis | undefined> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 1000 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    return redis;
  } catch {
    redis.disconnect();
    return undefined;
  }
}

async function main(): Promise<number> {
  const concurrency = flag('concurrency', 16);
  const seconds = flag('seconds', 5);
  const tenantCount = flag('tenants', 200);
  const server = await openServer(process.env.DATABASE_URL);
  const roles = benchRoles();
  let owner: pg.Pool | undefined;
  let redis: Redis | undefined;
  const opened: TenantRateLimits[] = [];
  try {
    await server.createDatabase(DATABASE);
    await install(server.url(DATABASE), {
      appRole: roles.app.name,
      ownerRole: roles.owner.name,
      appPassword: roles.app.password,
      ownerPassword: roles.owner.password,
      contextSecret: roles.contextSecret,
    });
    owner = new pg.Pool({ connectionString: server.url(DATABASE, roles.owner), max: concurrency });
    const catalog = new TenantCatalog(owner);
    const tenants: string[] = [];
    for (let k = 0; k < tenantCount; k++)
      tenants.push((await catalog.create({ slug: `bench-${k}`, name: `Bench ${k}`, settings: { plan: 'pro' } })).id);
    const make = async (store: RateLimitStore) => {
      const limits = new TenantRateLimits({
        store,
        catalog: owner!,
        listen: { connectionString: server.url(DATABASE, roles.owner) },
        // never refused: the benchmark measures counting, not refusing
        limits: { api: { durationSeconds: 3600 } },
        plans: { pro: { api: 1_000_000_000 } },
        defaultPlan: 'pro',
        storeTimeoutMs: 5000,
        onStoreError: ({ error }) => {
          throw error;
        },
      });
      opened.push(limits);
      await limits.start();
      return limits;
    };
    const o = { concurrency, seconds };
    const cells: Cell[] = [];
    const one = [tenants[0]!];
    cells.push(await measure('no limiter', 'spread', async () => undefined, tenants, o));
    const onPg = await make({ postgres: owner });
    if (!onPg.listening) throw new Error('the plan listener is not connected: plans would be re-read every second');
    cells.push(await measure('PostgreSQL store', 'spread', (t) => onPg.consume(t, 'api'), tenants, o));
    cells.push(await measure('PostgreSQL store', 'one hot key', (t) => onPg.consume(t, 'api'), one, o));
    redis = await redisClient();
    if (redis) {
      const onRedis = await make({ redis });
      cells.push(await measure('Redis store', 'spread', (t) => onRedis.consume(t, 'api'), tenants, o));
      cells.push(await measure('Redis store', 'one hot key', (t) => onRedis.consume(t, 'api'), one, o));
    }
    log(`# bench:limits — ${new Date().toISOString()}`);
    log(machineLine(server.version, server.embedded));
    log(
      `concurrency ${concurrency}, ${seconds} s per cell, ${tenantCount} tenants, owner pool of ${concurrency}; vitest processes running: ${vitestProcesses()}${redis ? '' : '; Redis: not reachable, skipped'}`,
    );
    log();
    log('| store | keys | consume/s | p50 ms | p99 ms | client CPU µs/op |');
    log('| --- | --- | ---: | ---: | ---: | ---: |');
    for (const c of cells)
      log(
        `| ${c.mode} | ${c.keys} | ${c.perSecond.toFixed(0)} | ${c.p50.toFixed(3)} | ${c.p99.toFixed(3)} | ${c.cpuUs.toFixed(1)} |`,
      );
    return 0;
  } finally {
    for (const l of opened) await l.close();
    await owner?.end();
    redis?.disconnect();
    await server
      .close({ databases: [DATABASE], roles: [roles.app.name, roles.owner.name, roles.router.name] })
      .catch((e: unknown) => process.stderr.write(`cleanup failed: ${String(e)}\n`));
  }
}

runBenchMain(main);
