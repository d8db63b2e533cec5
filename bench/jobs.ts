/**
 * Background jobs fairness benchmark (tenantry/jobs on pg-boss and graphile-worker, both on the
 * same PostgreSQL; `--adapters=pg-boss` for one): tenant B's wait for its 10
 * jobs on an idle queue, then right after tenant A enqueued 10,000, with the same worker count,
 * under Tenantry's fair ordering and under the adapter's plain FIFO, side by side. Target: B's
 * p99 wait behind A ≤ 2× its p99 wait on the idle queue (fair ordering).
 *
 *   npm run bench:jobs
 *   npm run bench:jobs -- --workers=4 --job-ms=5 --backlog=10000 --rounds=3
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:jobs
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { TenantCatalog } from '../src/catalog/tenant-catalog.js';
import { runAs } from '../src/context/tenant-context.js';
import { TenantPool } from '../src/data/tenant-pool.js';
import { install } from '../src/policy/installer.js';
import { PgBossAdapter, purgeTenantJobs, TenantJobs, type JobQueueAdapter } from '../src/jobs/index.js';
import { GraphileWorkerAdapter } from '../src/jobs/graphile-worker.js';
import { benchRoles } from './support/dataset.js';
import { LatencyRecorder } from './support/latency.js';
import { machineLine, vitestProcesses, runBenchMain } from './support/report.js';
import { openServer } from './support/server.js';

const DATABASE = 'tenantry_bench_jobs';
const B_JOBS = 10;
const WARM_A_JOBS = 200;

function flag(name: string, fallback: number): number {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

const log = (line = '') => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ModeResult {
  mode: string;
  idle: LatencyRecorder;
  busy: LatencyRecorder;
  /** Client CPU per enqueued job of A's backlog (µs): sealing, signing, the fairness ledger. */
  enqueueCpuUs: number;
  /** Wall time per enqueued job of A's backlog (µs). */
  enqueueWallUs: number;
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

type AdapterKind = 'pg-boss' | 'graphile-worker';

/** A fresh adapter of `kind` on the owner URL, and how to close what it opened beyond its stop(). */
function makeAdapter(
  kind: AdapterKind,
  ownerUrl: string,
  workers: number,
): { adapter: JobQueueAdapter; end(): Promise<void> } {
  if (kind === 'pg-boss') {
    const boss = new PgBoss({ connectionString: ownerUrl, max: workers + 4, supervise: false, schedule: false });
    boss.on('error', () => undefined);
    return { adapter: new PgBossAdapter(boss), end: async () => undefined };
  }
  const pgPool = new pg.Pool({ connectionString: ownerUrl, max: workers + 4 });
  pgPool.on('error', () => undefined);
  pgPool.on('connect', (c) => c.on('error', () => undefined));
  return { adapter: new GraphileWorkerAdapter({ pgPool, pollInterval: 100 }), end: () => pgPool.end() };
}

async function runMode(
  kind: AdapterKind,
  fair: boolean,
  o: { ownerUrl: string; owner: pg.Pool; app: TenantPool; secret: string; a: string; b: string },
  p: { workers: number; jobMs: number; backlog: number; rounds: number },
): Promise<ModeResult> {
  const made = makeAdapter(kind, o.ownerUrl, p.workers);
  const jobs = new TenantJobs({
    adapter: made.adapter,
    catalog: o.owner,
    signingSecret: o.secret,
    fair,
    pollIntervalMs: 100,
  });
  const name = fair ? 'bench-fair' : 'bench-fifo';
  let bWaits: number[] = [];
  let aDone = 0;
  jobs.define<{ at: number; who: 'a' | 'b' }>(
    name,
    async ({ at, who }) => {
      if (who === 'b') bWaits.push(performance.now() - at);
      await o.app.query('select 1');
      await sleep(p.jobMs);
      if (who === 'a') aDone++;
    },
    { retryLimit: 0 },
  );
  await jobs.start();
  await jobs.work({ concurrency: p.workers });
  const idle = new LatencyRecorder(B_JOBS * p.rounds);
  const busy = new LatencyRecorder(B_JOBS * p.rounds);
  const bBurst = async (into: LatencyRecorder) => {
    bWaits = [];
    // ten requests of B, one after another, each enqueueing one job
    for (let i = 0; i < B_JOBS; i++) await runAs(o.b, () => jobs.enqueue(name, { at: performance.now(), who: 'b' }));
    await until(() => bWaits.length === B_JOBS, 600_000, "B's jobs");
    for (const ms of bWaits) into.record(ms * 1e6);
  };
  let cpuUs = 0;
  let wallMs = 0;
  try {
    await bBurst(new LatencyRecorder(B_JOBS)); // warm-up: connections, plans, JIT
    for (let r = 0; r < p.rounds; r++) await bBurst(idle);
    for (let r = 0; r < p.rounds; r++) {
      aDone = 0;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let done = 0; done < p.backlog; done += 1000) {
        const n = Math.min(1000, p.backlog - done);
        await runAs(o.a, () =>
          jobs.enqueueMany(
            name,
            Array.from({ length: n }, () => ({ at: performance.now(), who: 'a' as const })),
          ),
        );
      }
      const cpu = process.cpuUsage(cpu0);
      wallMs += performance.now() - t0;
      cpuUs += cpu.user + cpu.system;
      await until(() => aDone >= WARM_A_JOBS, 600_000, "A's first jobs");
      await bBurst(busy);
      // the rest of A's backlog is not needed: the next round starts from the same state
      await purgeTenantJobs(o.owner, o.a);
      await sleep(p.jobMs * 4);
    }
  } finally {
    await jobs.stop();
    await made.end();
  }
  return {
    mode: `${kind}: ${fair ? 'fair (Tenantry)' : `FIFO (${kind} order)`}`,
    idle,
    busy,
    enqueueCpuUs: cpuUs / (p.backlog * p.rounds),
    enqueueWallUs: (wallMs * 1000) / (p.backlog * p.rounds),
  };
}

async function main(): Promise<number> {
  const workers = flag('workers', 4);
  const jobMs = flag('job-ms', 5);
  const backlog = flag('backlog', 10_000);
  const rounds = flag('rounds', 3);
  const kinds = (process.argv.find((a) => a.startsWith('--adapters='))?.split('=')[1] ?? 'pg-boss,graphile-worker')
    .split(',')
    .map((k) => {
      if (k !== 'pg-boss' && k !== 'graphile-worker') throw new Error('--adapters: pg-boss and/or graphile-worker');
      return k as AdapterKind;
    });
  const roles = benchRoles();
  const server = await openServer(process.env.DATABASE_URL);
  let owner: pg.Pool | undefined;
  let app: TenantPool | undefined;
  try {
    log(`# Tenantry background jobs fairness benchmark — ${new Date().toISOString()}`);
    log(`machine: ${machineLine(server.version, server.embedded)}`);
    log(`load avg (1 min) at start: ${os.loadavg()[0]!.toFixed(2)}; other vitest processes: ${vitestProcesses()}`);
    await server.createDatabase(DATABASE);
    await install(server.url(DATABASE), {
      appRole: roles.app.name,
      ownerRole: roles.owner.name,
      appPassword: roles.app.password,
      ownerPassword: roles.owner.password,
      contextSecret: roles.contextSecret,
    });
    owner = new pg.Pool({ connectionString: server.url(DATABASE, roles.owner), max: 4 });
    app = new TenantPool({
      connectionString: server.url(DATABASE, roles.app),
      contextSecret: roles.contextSecret,
      max: workers + 2,
    });
    // the server is dropped at the end: idle connections' errors are expected then
    owner.on('error', () => undefined);
    app.on('error', () => undefined);
    const catalog = new TenantCatalog(owner);
    const a = (await catalog.create({ slug: 'tenant-a', name: 'A' })).id;
    const b = (await catalog.create({ slug: 'tenant-b', name: 'B' })).id;
    log(
      `\n${workers} workers in one process; each job: one statement as its tenant + ${jobMs} ms; A enqueues ${backlog} (in batches of 1,000), B then enqueues ${B_JOBS} one at a time once ${WARM_A_JOBS} of A's ran; ${rounds} rounds each\n`,
    );
    const o = { ownerUrl: server.url(DATABASE, roles.owner), owner, app, secret: roles.contextSecret, a, b };
    const results: ModeResult[] = [];
    for (const kind of kinds)
      for (const fair of [true, false]) results.push(await runMode(kind, fair, o, { workers, jobMs, backlog, rounds }));
    log(
      '| order | B idle p50 ms | B idle p99 ms | B behind A p50 ms | B behind A p99 ms | p99 ratio | enqueue µs/job (wall) | enqueue client CPU µs/job |',
    );
    log('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of results) {
      const [ip50, ip99] = r.idle.percentiles(50, 99);
      const [bp50, bp99] = r.busy.percentiles(50, 99);
      log(
        `| ${r.mode} | ${ip50!.toFixed(1)} | ${ip99!.toFixed(1)} | ${bp50!.toFixed(1)} | ${bp99!.toFixed(1)} | ${(bp99! / ip99!).toFixed(2)}× | ${Math.round(r.enqueueWallUs)} | ${Math.round(r.enqueueCpuUs)} |`,
      );
    }
    let ok = true;
    log('');
    for (const [i, kind] of kinds.entries()) {
      const fair = results[i * 2]!;
      const ratio = fair.busy.percentiles(99)[0]! / fair.idle.percentiles(99)[0]!;
      ok &&= ratio <= 2;
      log(
        `- ${ratio <= 2 ? 'PASS' : 'FAIL'}: ${kind}, fair ordering, B's p99 wait behind A's ${backlog} jobs is ${ratio.toFixed(2)}× its idle p99 (target ≤ 2×)`,
      );
    }
    return ok ? 0 : 1;
  } finally {
    await app?.end();
    await owner?.end();
    await server
      .close({ databases: [DATABASE], roles: [roles.app.name, roles.owner.name] })
      .catch((e: unknown) => process.stderr.write(`cleanup failed: ${String(e)}\n`));
  }
}

runBenchMain(main);
