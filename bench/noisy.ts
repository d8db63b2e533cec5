/**
 * Noisy-neighbour benchmark: a small tenant's latency (p50/p99 of a point select, 2 workers
 * with 5 ms think time) alone, then while a neighbour on the same pool (8 connections)
 *   load10x  runs 10× its load (20 workers, same think time) of a report over its rows,
 *   locks    holds a row lock for 2 s at a time while 10 workers update that row,
 *   slow     runs slow statements (10 workers, `pg_sleep(0.5)`),
 * each "without" protection (a plain TenantPool: the role's default timeouts, FIFO checkout) and
 * "with" it (TenantDbLimits by plan in the prefix + fairCheckout), side by side. Target: the
 * small tenant's p99 with protection ≤ 2× its baseline.
 *
 *   npm run bench:noisy                 # embedded PostgreSQL 18, ~1.5 minutes
 *   npm run bench:noisy -- --quick      # smoke run
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:noisy
 * Flags / env: --seconds BENCH_SECONDS (per cell, default 6).
 */
import os from 'node:os';
import pg from 'pg';
import { runAs } from '../src/context/tenant-context.js';
import { TenantDbLimits } from '../src/data/tenant-db-limits.js';
import { TenantPool } from '../src/data/tenant-pool.js';
import { benchRoles, prepareDatabase, tenantIdOf, type DatasetShape } from './support/dataset.js';
import { LatencyRecorder } from './support/latency.js';
import { machineLine, vitestProcesses } from './support/report.js';
import { openServer } from './support/server.js';

const DB = 'tenantry_bench_noisy';
const SHAPE: DatasetShape = { tenants: 20, rowsPerTenant: 5000 };
const SMALL = 1; // tenant k owns the ids ≡ k (mod tenants)
const NEIGHBOUR = 2;
const POOL_MAX = 8;
const THINK_MS = 5;

const log = (line = '') => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The plans of the "with protection" pools: the neighbour is on free, the small tenant on pro. */
const PLANS = {
  free: { statementTimeoutMs: 250, lockTimeoutMs: 100, workMem: '4MB', weight: 1, maxConnections: 3 },
  pro: { statementTimeoutMs: 5000, lockTimeoutMs: 1000, workMem: '16MB', weight: 4 },
};

type Scenario = 'alone' | 'load10x' | 'locks' | 'slow';
interface Cell {
  scenario: Scenario;
  mode: 'without' | 'with';
  p50: number;
  p99: number;
  max: number;
  queries: number;
  neighbourOk: number;
  neighbourRefused: Record<string, number>;
}

function readSeconds(): number {
  const arg = process.argv.find((a) => a.startsWith('--seconds='))?.split('=')[1] ?? process.env.BENCH_SECONDS;
  if (arg !== undefined) return Number(arg);
  return process.argv.includes('--quick') ? 2 : 6;
}

/** Runs `worker` in `n` loops until `stop.done`. */
function loops(n: number, stop: { done: boolean }, worker: (i: number) => Promise<void>): Promise<void[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      while (!stop.done) await worker(i);
    }),
  );
}

async function cell(
  pool: TenantPool,
  owner: pg.Pool,
  scenario: Scenario,
  mode: Cell['mode'],
  seconds: number,
): Promise<Cell> {
  const small = tenantIdOf(SMALL);
  const neighbour = tenantIdOf(NEIGHBOUR);
  const smallIds = (k: number) => SMALL + SHAPE.tenants * (k % SHAPE.rowsPerTenant);
  const stop = { done: false };
  const refused: Record<string, number> = {};
  let neighbourOk = 0;
  const neighbourRun = async (sql: string, values: unknown[] = []) => {
    try {
      await runAs(neighbour, () => pool.query(sql, values));
      neighbourOk++;
    } catch (error) {
      const code = String((error as { code?: unknown }).code ?? 'ERROR');
      refused[code] = (refused[code] ?? 0) + 1;
      await sleep(THINK_MS); // a refused request is retried by its client a little later
    }
  };
  const lockedId = NEIGHBOUR + SHAPE.tenants; // one of the neighbour's rows
  const background: Array<Promise<unknown>> = [];
  if (scenario === 'load10x') {
    background.push(
      loops(20, stop, async () => {
        await neighbourRun(`select count(*), sum(length(payload)) from items where id % 3 = 0`);
        await sleep(THINK_MS);
      }),
    );
  } else if (scenario === 'locks') {
    // the lock holder: the owner role (a migration, a batch job of the neighbour's) keeps the row
    background.push(
      loops(1, stop, async () => {
        const c = await owner.connect();
        try {
          await c.query('begin');
          await c.query('select * from items where tenant_id = $1 and id = $2 for update', [neighbour, lockedId]);
          await sleep(2000);
          await c.query('commit');
        } finally {
          c.release();
        }
      }),
      loops(10, stop, () => neighbourRun(`update items set payload = payload where id = $1`, [lockedId])),
    );
  } else if (scenario === 'slow') {
    background.push(loops(10, stop, () => neighbourRun(`select pg_sleep(0.5)`)));
  }
  await sleep(scenario === 'alone' ? 200 : 600); // the neighbour gets going
  const recorder = new LatencyRecorder(200_000);
  let k = 0;
  const measured = loops(2, stop, async () => {
    const id = smallIds(k++);
    const t = process.hrtime.bigint();
    await runAs(small, () => pool.query('select payload from items where id = $1', [id]));
    recorder.record(Number(process.hrtime.bigint() - t));
    await sleep(THINK_MS);
  });
  await sleep(seconds * 1000);
  stop.done = true;
  await Promise.all([measured, ...background]);
  const [p50, p99, max] = recorder.percentiles(50, 99, 100);
  return {
    scenario,
    mode,
    p50: p50!,
    p99: p99!,
    max: max!,
    queries: recorder.count,
    neighbourOk,
    neighbourRefused: refused,
  };
}

async function main(): Promise<void> {
  const seconds = readSeconds();
  const roles = benchRoles();
  const server = await openServer(process.env.DATABASE_URL);
  try {
    log(`# Tenantry noisy-neighbour benchmark — ${new Date().toISOString()}`);
    log(`machine: ${machineLine(server.version, server.embedded)}`);
    log(`command: ${process.argv.slice(1).join(' ')}`);
    log(`load avg (1 min) at start: ${os.loadavg()[0]!.toFixed(2)}; other vitest processes: ${vitestProcesses()}`);
    log(
      `pool: TenantPool max ${POOL_MAX}, signed context; small tenant: 2 workers, point select, ${THINK_MS} ms think; ${seconds}s per cell`,
    );
    log(`with protection: dbLimits ${JSON.stringify(PLANS)}, fairCheckout on (neighbour on free, small tenant on pro)`);
    await prepareDatabase(server, DB, 'signed', roles, SHAPE);
    const appUrl = server.url(DB, roles.app);
    const owner = new pg.Pool({ connectionString: server.url(DB, roles.owner), max: 2 });
    const dbLimits = new TenantDbLimits({ plans: PLANS, defaultPlan: 'free' });
    dbLimits.setPlan(tenantIdOf(SMALL), 'pro');
    dbLimits.setPlan(tenantIdOf(NEIGHBOUR), 'free');
    const base = { connectionString: appUrl, contextSecret: roles.contextSecret, max: POOL_MAX, poolerSelfTest: false };
    const pools = {
      without: new TenantPool(base),
      with: new TenantPool({ ...base, dbLimits, fairCheckout: true }),
    };
    for (const p of [pools.without, pools.with, owner]) p.on('error', () => undefined); // an idle connection dropped
    const cells: Cell[] = [];
    for (const scenario of ['alone', 'load10x', 'locks', 'slow'] as const) {
      for (const mode of ['without', 'with'] as const) {
        const c = await cell(pools[mode], owner, scenario, mode, seconds);
        cells.push(c);
        log(
          `  ${scenario.padEnd(8)} ${mode.padEnd(8)} p50 ${c.p50.toFixed(2)} ms  p99 ${c.p99.toFixed(2)} ms  (${c.queries} queries)`,
        );
      }
    }
    await Promise.all([pools.without.end(), pools.with.end(), owner.end()]);
    log();
    log(
      '| neighbour | protection | small p50 (ms) | small p99 (ms) | small max (ms) | p99 / baseline | small queries | neighbour ok | neighbour refused |',
    );
    log('|---|---|---:|---:|---:|---:|---:|---:|---|');
    for (const c of cells) {
      const baseline = cells.find((b) => b.scenario === 'alone' && b.mode === c.mode)!;
      const refusedText =
        Object.entries(c.neighbourRefused)
          .map(([code, n]) => `${code} ${n}`)
          .join(', ') || '–';
      log(
        `| ${c.scenario} | ${c.mode} | ${c.p50.toFixed(2)} | ${c.p99.toFixed(2)} | ${c.max.toFixed(1)} | ${(c.p99 / baseline.p99).toFixed(2)}× | ${c.queries} | ${c.neighbourOk} | ${refusedText} |`,
      );
    }
  } finally {
    await server.close({ databases: [DB], roles: [roles.app.name, roles.owner.name, roles.router.name] });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
