/**
 * Noisy-neighbour benchmark: a small tenant's latency (p50/p99 of a point select, 2 workers
 * with 5 ms think time) alone, then while a neighbour on the same pool (8 connections)
 *   load10x  runs 10× its load (20 workers, same think time) of a report over its rows,
 *   locks    holds a row lock for 2 s at a time while 10 workers update that row,
 *   slow     runs slow statements (10 workers, `pg_sleep(0.5)`),
 * each "without" protection (a plain TenantPool: the role's default timeouts, FIFO checkout),
 * "with" it (TenantDbLimits by plan in the prefix + fairCheckout), and "budget": as "with", the
 * neighbour's plan also holding a DB time budget (dbTimeMsPerSecond), side by side. Cells run in
 * rounds (every cell once per round, the modes' order rotated) so the machine's drift hits all
 * alike; each cell's samples are pooled over the rounds. Target: the small tenant's p99 with
 * protection ≤ 2× its baseline (alone, same mode).
 *
 *   npm run bench:noisy                 # embedded PostgreSQL 18, ~4 minutes
 *   npm run bench:noisy -- --quick      # smoke run
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:noisy
 * Flags / env: --seconds BENCH_SECONDS (per cell and round, default 6), --rounds BENCH_ROUNDS
 * (default 3), --modes=without,with,budget BENCH_MODES, --budget-ms BENCH_BUDGET_MS (the
 * neighbour's dbTimeMsPerSecond in "budget", default 1000: one connection's worth).
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
type Mode = 'without' | 'with' | 'budget';
const MODES: readonly Mode[] = ['without', 'with', 'budget'];
interface Cell {
  scenario: Scenario;
  mode: Mode;
  /** The small tenant's latencies (ns), pooled over the rounds. */
  recorder: LatencyRecorder;
  /** p99 of each round alone (ms). */
  roundP99: number[];
  seconds: number;
  neighbourOk: number;
  neighbourRefused: Record<string, number>;
  /** The small tenant's own failures by code (a checkout timeout without protection): each counted as a sample of the time it waited. */
  smallRefused: Record<string, number>;
}

function flag(name: string, envName: string): string | undefined {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? process.env[envName];
}

function readSeconds(): number {
  const arg = flag('seconds', 'BENCH_SECONDS');
  if (arg !== undefined) return Number(arg);
  return process.argv.includes('--quick') ? 2 : 6;
}

function readRounds(): number {
  const arg = flag('rounds', 'BENCH_ROUNDS');
  if (arg !== undefined) return Math.max(1, Math.floor(Number(arg)));
  return process.argv.includes('--quick') ? 1 : 3;
}

function readModes(): Mode[] {
  const raw = flag('modes', 'BENCH_MODES');
  if (raw === undefined) return [...MODES];
  const modes = raw.split(',').map((m) => m.trim());
  for (const m of modes)
    if (!MODES.includes(m as Mode)) throw new Error(`unknown mode ${m}; known: ${MODES.join(', ')}`);
  return modes as Mode[];
}

/** Runs `worker` in `n` loops until `stop.done`. */
function loops(n: number, stop: { done: boolean }, worker: (i: number) => Promise<void>): Promise<void[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      while (!stop.done) await worker(i);
    }),
  );
}

async function runCell(pool: TenantPool, owner: pg.Pool, into: Cell, seconds: number): Promise<void> {
  const scenario = into.scenario;
  const small = tenantIdOf(SMALL);
  const neighbour = tenantIdOf(NEIGHBOUR);
  const smallIds = (k: number) => SMALL + SHAPE.tenants * (k % SHAPE.rowsPerTenant);
  const stop = { done: false };
  const refused = into.neighbourRefused;
  let measuring = false;
  const neighbourRun = async (sql: string, values: unknown[] = []) => {
    try {
      await runAs(neighbour, () => pool.query(sql, values));
      if (measuring) into.neighbourOk++;
    } catch (error) {
      const code = String((error as { code?: unknown }).code ?? 'ERROR');
      if (measuring) refused[code] = (refused[code] ?? 0) + 1;
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
  measuring = true;
  const round = new LatencyRecorder(100_000);
  let k = 0;
  const started = performance.now();
  const measured = loops(2, stop, async () => {
    const id = smallIds(k++);
    const t = process.hrtime.bigint();
    try {
      await runAs(small, () => pool.query('select payload from items where id = $1', [id]));
    } catch (error) {
      // the small tenant's request failed (e.g. POOL_TIMEOUT: every connection held by the
      // neighbour): its client waited that long for nothing, so the wait is a sample, and counted
      const code = String((error as { code?: unknown }).code ?? 'ERROR');
      into.smallRefused[code] = (into.smallRefused[code] ?? 0) + 1;
    }
    const ns = Number(process.hrtime.bigint() - t);
    into.recorder.record(ns);
    round.record(ns);
    await sleep(THINK_MS);
  });
  await sleep(seconds * 1000);
  stop.done = true;
  await measured;
  measuring = false;
  into.seconds += (performance.now() - started) / 1000;
  into.roundP99.push(round.percentiles(99)[0]!);
  await Promise.all(background);
}

async function main(): Promise<void> {
  const seconds = readSeconds();
  const rounds = readRounds();
  const modes = readModes();
  const budgetMs = Number(flag('budget-ms', 'BENCH_BUDGET_MS') ?? 1000);
  const roles = benchRoles();
  const server = await openServer(process.env.DATABASE_URL);
  try {
    log(`# Tenantry noisy-neighbour benchmark — ${new Date().toISOString()}`);
    log(`machine: ${machineLine(server.version, server.embedded)}`);
    log(`command: ${process.argv.slice(1).join(' ')}`);
    log(`load avg (1 min) at start: ${os.loadavg()[0]!.toFixed(2)}; other vitest processes: ${vitestProcesses()}`);
    log(
      `pool: TenantPool max ${POOL_MAX}, signed context; small tenant: 2 workers, point select, ${THINK_MS} ms think; ${seconds}s per cell and round, ${rounds} round(s)`,
    );
    const budgetPlans = { ...PLANS, free: { ...PLANS.free, dbTimeMsPerSecond: budgetMs } };
    log(`with protection: dbLimits ${JSON.stringify(PLANS)}, fairCheckout on (neighbour on free, small tenant on pro)`);
    log(`budget: as with, the free plan also { dbTimeMsPerSecond: ${budgetMs} } (burst: one second's worth)`);
    await prepareDatabase(server, DB, 'signed', roles, SHAPE);
    const appUrl = server.url(DB, roles.app);
    const owner = new pg.Pool({ connectionString: server.url(DB, roles.owner), max: 2 });
    const limitsOf = (plans: typeof PLANS | typeof budgetPlans) => {
      const dbLimits = new TenantDbLimits({ plans, defaultPlan: 'free' });
      dbLimits.setPlan(tenantIdOf(SMALL), 'pro');
      dbLimits.setPlan(tenantIdOf(NEIGHBOUR), 'free');
      return dbLimits;
    };
    const base = { connectionString: appUrl, contextSecret: roles.contextSecret, max: POOL_MAX, poolerSelfTest: false };
    const pools: Record<Mode, TenantPool> = {
      without: new TenantPool(base),
      with: new TenantPool({ ...base, dbLimits: limitsOf(PLANS), fairCheckout: true }),
      budget: new TenantPool({ ...base, dbLimits: limitsOf(budgetPlans), fairCheckout: true }),
    };
    for (const p of [...Object.values(pools), owner]) p.on('error', () => undefined); // an idle connection dropped
    const scenarios = ['alone', 'load10x', 'locks', 'slow'] as const;
    const cells: Cell[] = scenarios.flatMap((scenario) =>
      modes.map((mode) => ({
        scenario,
        mode,
        recorder: new LatencyRecorder(rounds * 100_000),
        roundP99: [],
        seconds: 0,
        neighbourOk: 0,
        neighbourRefused: {},
        smallRefused: {},
      })),
    );
    for (let round = 0; round < rounds; round++) {
      for (const scenario of scenarios) {
        // the modes' order rotated each round
        for (const mode of modes.map((_, i) => modes[(i + round) % modes.length]!)) {
          const c = cells.find((x) => x.scenario === scenario && x.mode === mode)!;
          await runCell(pools[mode], owner, c, seconds);
          log(
            `  round ${round + 1} ${scenario.padEnd(8)} ${mode.padEnd(8)} p99 ${c.roundP99.at(-1)!.toFixed(2)} ms  (load ${os.loadavg()[0]!.toFixed(1)})`,
          );
        }
      }
    }
    await Promise.all([...Object.values(pools).map((p) => p.end()), owner.end()]);
    log();
    log(`load avg (1 min) at end: ${os.loadavg()[0]!.toFixed(2)}; other vitest processes: ${vitestProcesses()}`);
    log();
    log(
      '| neighbour | protection | small p50 (ms) | small p95 (ms) | small p99 (ms) | small max (ms) | p95 / baseline | p99 / baseline | p99 of each round (ms) | small queries | small failed | neighbour ok/s | neighbour refused |',
    );
    log('|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---|');
    const pct = new Map(cells.map((c) => [c, c.recorder.percentiles(50, 95, 99, 100)]));
    for (const c of cells) {
      const [p50, p95, p99, max] = pct.get(c)!;
      const [, b95, b99] = pct.get(cells.find((b) => b.scenario === 'alone' && b.mode === c.mode)!)!;
      const refusedText =
        Object.entries(c.neighbourRefused)
          .map(([code, n]) => `${code} ${n}`)
          .join(', ') || '–';
      const smallFailed =
        Object.entries(c.smallRefused)
          .map(([code, n]) => `${code} ${n}`)
          .join(', ') || '–';
      log(
        `| ${c.scenario} | ${c.mode} | ${p50!.toFixed(2)} | ${p95!.toFixed(2)} | ${p99!.toFixed(2)} | ${max!.toFixed(1)} | ${(p95! / b95!).toFixed(2)}× | ${(p99! / b99!).toFixed(2)}× | ${c.roundP99.map((x) => x.toFixed(1)).join(' / ')} | ${c.recorder.count} | ${smallFailed} | ${(c.neighbourOk / c.seconds).toFixed(1)} | ${refusedText} |`,
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
