/**
 * Paired overhead benchmark, run simultaneously: the variant under test and its reference (e.g.
 * `b+monitor` against `b`) run AT THE SAME TIME, each in its own process with its own pool, over
 * many short rounds, so whatever else the shared machine does in a round (other tenants of the
 * host, other test suites, CPU frequency) hits both alike. bench:isolation runs variants one after
 * the other; on this 2-core shared machine its rounds differ by ±15-80 %, which hides a 3 %
 * difference. Here each round gives one ratio under the same conditions, and the report gives
 * their median, mean and a 95 % interval of the mean.
 *
 * Two child processes each hold a pool of every variant of every pair (application_name
 * `pairs-<child>-<pair>-<side>`, so the parent finds each pool's backends in pg_stat_activity
 * while they are idle). In a round, child 0 runs one side and child 1 the other, and they swap
 * every round, so neither the child nor the side order favours a variant. Per round and side:
 * queries/s, median latency, client CPU per query (the child's process.cpuUsage over the round) and server CPU per
 * query (the side's backends, /proc/<pid>/schedstat; needs the server on this machine).
 *
 * A control pair (the same variant on both sides, `b:b`) shows what the method itself reads as
 * a difference: run it with the pair under test (its rounds are interleaved with theirs).
 *
 *   npm run bench:pairs                                   # pairs b:b and b:b+monitor, embedded PostgreSQL 18
 *   npm run bench:pairs -- --pairs=b:b,b:b+monitor,b:b+noisy --rounds=60 --seconds=3 --concurrency=8
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:pairs
 *
 * Flags: --pairs (reference:variant, comma-separated; default b:b,b:b+monitor), --rounds (per pair,
 * default 40), --seconds (per round, default 3), --concurrency (per side, default 8: 16 in all, as
 * bench:isolation's c=16), --warmup (seconds per side, default 2), --recycle (every so many rounds,
 * every pool is closed and opened again, so a side does not keep the same backends for the whole run;
 * default 10), --tenants, --rows-per-tenant.
 */
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import pg from 'pg';
import { clientCpuUs, runNs } from './support/cpu.js';
import { benchRoles, pairPicker, prepareDatabase, tenantIdOf } from './support/dataset.js';
import { machineLine, vitestProcesses } from './support/report.js';
import { LatencyRecorder } from './support/latency.js';
import { runFor } from './support/runner.js';
import { openServer, type BenchServer } from './support/server.js';
import { VARIANTS, type OpenVariant, type VariantTargets } from './support/variants.js';
import { median } from './support/median.js';

const DATABASE = 'tenantry_bench_pairs';
/** Unsigned mode, for the variants that read it (c, the primed ones), only when a pair names one. */
const UNSIGNED_DATABASE = 'tenantry_bench_pairs_unsigned';
const log = (line = '') => process.stdout.write(`${line}\n`);

interface Shape {
  tenants: number;
  rowsPerTenant: number;
}

interface ChildConfig {
  index: number;
  targets: VariantTargets;
  /** [reference, variant] per pair. */
  pairs: [string, string][];
  concurrency: number;
  shape: Shape;
}

type ToChild = { type: 'run'; slot: string; seconds: number } | { type: 'recycle' } | { type: 'end' };
type FromChild =
  | { type: 'ready' }
  | { type: 'recycled' }
  | {
      type: 'done';
      queries: number;
      errors: number;
      wrongRows: number;
      elapsed: number;
      cpuUs: number;
      /** The round's median latency (ms). */
      p50: number;
      error?: string;
    };

const slotName = (child: number, pair: number, side: 0 | 1) => `pairs-${child}-${pair}-${side}`;

function flag(name: string, fallback: string): string {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
}

function positive(name: string, fallback: number): number {
  const raw = flag(name, String(fallback));
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${raw}`);
  return n;
}

// ---------------------------------------------------------------------------------------------
// child: holds the pools, runs one slot per request

async function child(): Promise<void> {
  const cfg = JSON.parse(process.env.TENANTRY_PAIRS_CHILD!) as ChildConfig;
  const pick = pairPicker(cfg.shape);
  const slots = new Map<string, OpenVariant>();
  const tenants = Array.from({ length: cfg.shape.tenants }, (_, k) => tenantIdOf(k));
  // each variant as bench:isolation opens it, its own preparation included (b-routed's router
  // starts hearing route changes and reads every route: without it the routed pool checks the
  // route in every prefix, the b-routed+prefix path)
  const open = async () => {
    cfg.pairs.forEach(([reference, variant], p) => {
      for (const side of [0, 1] as const) {
        const name = slotName(cfg.index, p, side);
        const targets = { ...cfg.targets, poolExtras: { application_name: name } };
        slots.set(name, VARIANTS[side === 0 ? reference : variant]!.open(targets, cfg.concurrency, false));
      }
    });
    for (const slot of slots.values()) await slot.prepare?.(tenants);
  };
  await open();
  const send = (m: FromChild) => process.send!(m);
  process.on('message', (m: ToChild) => {
    if (m.type === 'end') {
      void Promise.all([...slots.values()].map((s) => s.end())).finally(() => process.exit(0));
      return;
    }
    if (m.type === 'recycle') {
      // new pools, new backends: a side's backends do not stay the same for the whole run
      void Promise.all([...slots.values()].map((s) => s.end()))
        .then(open)
        .then(() => send({ type: 'recycled' }));
      return;
    }
    const slot = slots.get(m.slot)!;
    const cpu = clientCpuUs();
    // room for 40,000 queries a second; past it the median is the first ones' (never reached here)
    const latencies = new LatencyRecorder(Math.min(4_000_000, Math.ceil(m.seconds * 40_000)));
    runFor(slot.run, pick, cfg.concurrency, m.seconds, latencies).then(
      (out) =>
        send({
          type: 'done',
          queries: out.queries,
          errors: out.errors,
          wrongRows: out.wrongRows,
          elapsed: out.elapsedSeconds,
          cpuUs: clientCpuUs() - cpu,
          p50: latencies.percentiles(50)[0]!,
          error: out.firstError === undefined ? undefined : String(out.firstError),
        }),
      (error: unknown) =>
        send({ type: 'done', queries: 0, errors: 1, wrongRows: 0, elapsed: 0, cpuUs: 0, p50: 0, error: String(error) }),
    );
  });
  send({ type: 'ready' });
}

// ---------------------------------------------------------------------------------------------
// parent

class Child {
  readonly #process: ChildProcess;
  #waiting: ((m: FromChild) => void) | undefined;
  /** Messages that came while nobody waited (a child may be ready before its turn is awaited). */
  readonly #queued: FromChild[] = [];

  constructor(config: ChildConfig) {
    this.#process = fork(process.argv[1]!, ['--child'], {
      env: { ...process.env, TENANTRY_PAIRS_CHILD: JSON.stringify(config) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#process.on('message', (m: FromChild) => {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      if (waiting) waiting(m);
      else this.#queued.push(m);
    });
  }

  /** The next message, or an error when the child exits first or nothing comes in `ms`. */
  next(ms: number): Promise<FromChild> {
    const queued = this.#queued.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`a child sent nothing in ${ms} ms`)), ms);
      const exited = (code: number | null) => reject(new Error(`a child exited (${code})`));
      this.#process.once('exit', exited);
      this.#waiting = (m) => {
        clearTimeout(timer);
        this.#process.off('exit', exited);
        resolve(m);
      };
    });
  }

  send(m: ToChild): void {
    this.#process.send(m);
  }

  async run(slot: string, seconds: number): Promise<FromChild & { type: 'done' }> {
    const answer = this.next(seconds * 1000 + 60_000);
    this.#process.send({ type: 'run', slot, seconds } satisfies ToChild);
    const m = await answer;
    if (m.type !== 'done') throw new Error('unexpected message from a child');
    if (m.errors > 0 || m.wrongRows > 0)
      throw new Error(`slot ${slot}: ${m.errors} errors, ${m.wrongRows} wrong rows (${m.error ?? ''})`);
    return m;
  }

  async end(): Promise<void> {
    if (this.#process.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#process.once('exit', () => resolve()));
    this.#process.send({ type: 'end' } satisfies ToChild);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    this.#process.kill('SIGKILL');
  }
}

/** The backends of each slot, by application_name (read while the pools are idle). */
async function backends(admin: pg.Client): Promise<Map<string, number[]>> {
  const { rows } = await admin.query<{ pid: number; application_name: string }>(
    "select pid, application_name from pg_stat_activity where application_name like 'pairs-%'",
  );
  const out = new Map<string, number[]>();
  for (const r of rows) out.set(r.application_name, [...(out.get(r.application_name) ?? []), r.pid]);
  return out;
}

interface SideRound {
  qps: number;
  clientUs: number;
  serverUs: number;
  /** Median latency (ms). */
  p50: number;
}

interface Stats {
  median: number;
  mean: number;
  /** Half-width of the mean's 95 % interval (normal approximation). */
  half: number;
}

function stats(values: number[]): Stats {
  const n = values.length;
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const sd = n > 1 ? Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1)) : 0;
  return { median: median(values), mean, half: (1.96 * sd) / Math.sqrt(n) };
}

const fmt = (s: Stats) => `${s.median.toFixed(3)} (${s.mean.toFixed(3)} ± ${s.half.toFixed(3)})`;

async function parent(): Promise<number> {
  const pairs = flag('pairs', 'b:b,b:b+monitor')
    .split(',')
    .map((p) => p.split(':') as [string, string]);
  for (const pair of pairs) {
    if (pair.length !== 2) throw new Error(`--pairs takes reference:variant, got ${pair.join(':')}`);
    for (const key of pair) if (!VARIANTS[key]) throw new Error(`unknown variant ${key}`);
  }
  const rounds = Math.round(positive('rounds', 40));
  const seconds = positive('seconds', 3);
  const concurrency = Math.round(positive('concurrency', 8));
  const warmup = positive('warmup', 2);
  const recycle = Math.round(positive('recycle', 10));
  const shape: Shape = {
    tenants: Math.round(positive('tenants', 1000)),
    rowsPerTenant: Math.round(positive('rows-per-tenant', 1000)),
  };
  const loadAtStart = os.loadavg()[0]!;
  const vitestAtStart = vitestProcesses();
  const roles = benchRoles();
  const server = await openServer(process.env.DATABASE_URL);
  const children: Child[] = [];
  let admin: pg.Client | undefined;
  try {
    log(`# Tenantry paired overhead benchmark (simultaneous) — ${new Date().toISOString()}`);
    log(`machine: ${machineLine(server.version, server.embedded)}`);
    log(`command: ${process.argv.slice(1).join(' ')}`);
    log(`load avg (1 min) at start: ${loadAtStart.toFixed(2)}; other vitest processes at start: ${vitestAtStart}`);
    log(
      `pairs: ${pairs.map((p) => p.join(' vs ')).join(', ')}; ${rounds} rounds of ${seconds}s per pair, ` +
        `${concurrency} workers per side (${2 * concurrency} at once), pairs interleaved round by round`,
    );
    const started = Date.now();
    await prepareDatabase(server, DATABASE, 'signed', roles, shape);
    const needsUnsigned = pairs.some((p) => p.some((v) => v.includes("'") || v === 'c'));
    if (needsUnsigned) await prepareDatabase(server, UNSIGNED_DATABASE, 'unsigned', roles, shape);
    log(
      `setup: ${shape.tenants * shape.rowsPerTenant} rows, ${shape.tenants} tenants in ${((Date.now() - started) / 1000).toFixed(1)}s`,
    );
    const targets: VariantTargets = {
      signedOwnerUrl: server.url(DATABASE, roles.owner),
      signedAppUrl: server.url(DATABASE, roles.app),
      unsignedAppUrl: server.url(needsUnsigned ? UNSIGNED_DATABASE : DATABASE, roles.app),
      contextSecret: roles.contextSecret,
    };
    for (const index of [0, 1]) children.push(new Child({ index, targets, pairs, concurrency, shape }));
    for (const c of children) if ((await c.next(120_000)).type !== 'ready') throw new Error('child not ready');
    admin = new pg.Client({ connectionString: server.url(DATABASE) });
    await admin.connect();
    const probe = (await admin.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    const serverVisible = runNs(probe) > 0;
    if (!serverVisible) log('server CPU: not visible from here (remote server): client CPU and throughput only');

    // warm-up: every slot of both children (the children side by side)
    const warmUp = (seconds: number) =>
      Promise.all(
        children.map(async (c, i) => {
          for (let p = 0; p < pairs.length; p++)
            for (const side of [0, 1] as const) await c.run(slotName(i, p, side), seconds);
        }),
      );
    await warmUp(warmup);

    const results = pairs.map(() => ({ ref: [] as SideRound[], variant: [] as SideRound[] }));
    for (let r = 0; r < rounds; r++) {
      if (r > 0 && r % recycle === 0) {
        // every `recycle` rounds, every pool anew (each side's backends stay the same otherwise, and
        // an A/A pair read 0.96-1.04 from run to run without it), then a short warm-up
        await Promise.all(
          children.map(async (c) => {
            const answer = c.next(120_000);
            c.send({ type: 'recycle' });
            if ((await answer).type !== 'recycled') throw new Error('a child did not recycle its pools');
          }),
        );
        await warmUp(Math.min(1, warmup));
      }
      for (let p = 0; p < pairs.length; p++) {
        // child 0 runs the reference in even rounds, the variant in odd ones; child 1 the other side
        const sideOf = (child: number): 0 | 1 => ((r + child) % 2) as 0 | 1;
        const slots = [slotName(0, p, sideOf(0)), slotName(1, p, sideOf(1))];
        const pids = await backends(admin);
        const before = slots.map((s) => new Map((pids.get(s) ?? []).map((pid) => [pid, runNs(pid)])));
        const done = await Promise.all(children.map((c, i) => c.run(slots[i]!, seconds)));
        const after = await backends(admin);
        done.forEach((d, i) => {
          let ns = 0;
          for (const pid of after.get(slots[i]!) ?? []) ns += runNs(pid) - (before[i]!.get(pid) ?? 0);
          const side: SideRound = {
            qps: d.queries / d.elapsed,
            clientUs: d.cpuUs / d.queries,
            serverUs: ns / 1000 / d.queries,
            p50: d.p50,
          };
          (sideOf(i) === 0 ? results[p]!.ref : results[p]!.variant).push(side);
        });
      }
      if ((r + 1) % 10 === 0) log(`  round ${r + 1}/${rounds} done (load ${os.loadavg()[0]!.toFixed(2)})`);
    }

    log('\n### Absolute (medians over rounds; each side runs at the same time as the other)\n');
    log('| pair | side | variant | queries/s | p50 ms | client CPU µs/q | server CPU µs/q |');
    log('|:--|:--|:--|---:|---:|---:|---:|');
    pairs.forEach(([reference, variant], p) => {
      for (const [label, key, rows] of [
        ['reference', reference, results[p]!.ref],
        ['variant', variant, results[p]!.variant],
      ] as const)
        log(
          `| ${reference}:${variant} | ${label} | ${key} | ${stats(rows.map((x) => x.qps)).median.toFixed(0)} | ` +
            `${stats(rows.map((x) => x.p50)).median.toFixed(3)} | ` +
            `${stats(rows.map((x) => x.clientUs)).median.toFixed(1)} | ${serverVisible ? stats(rows.map((x) => x.serverUs)).median.toFixed(1) : '–'} |`,
        );
    });
    log('\n### Per-round ratios variant / reference: median (mean ± 95 % interval of the mean)\n');
    log(
      '| pair | throughput (< 1: variant slower) | p50 latency (> 1: variant slower) | CPU per query (client + server) | client CPU per query | server CPU per query |',
    );
    log('|:--|---:|---:|---:|---:|---:|');
    pairs.forEach(([reference, variant], p) => {
      const { ref, variant: v } = results[p]!;
      const ratio = (f: (x: SideRound) => number) => stats(v.map((x, i) => f(x) / f(ref[i]!)));
      log(
        `| ${variant} / ${reference} | ${fmt(ratio((x) => x.qps))} | ${fmt(ratio((x) => x.p50))} | ` +
          `${serverVisible ? fmt(ratio((x) => x.clientUs + x.serverUs)) : '–'} | ${fmt(ratio((x) => x.clientUs))} | ` +
          `${serverVisible ? fmt(ratio((x) => x.serverUs)) : '–'} |`,
      );
    });
    log(
      `\nload avg (1 min) at end: ${os.loadavg()[0]!.toFixed(2)}; other vitest processes at end: ${vitestProcesses()}`,
    );
    return 0;
  } finally {
    await admin?.end().catch(() => undefined);
    await Promise.all(children.map((c) => c.end()));
    await closeQuietly(server);
  }
}

async function closeQuietly(server: BenchServer): Promise<void> {
  await server
    .close({
      databases: [DATABASE],
      roles: ['tenantry_bench_app', 'tenantry_bench_owner', 'tenantry_bench_router'],
    })
    .catch((e: unknown) => process.stderr.write(`cleanup failed: ${String(e)}\n`));
}

if (process.argv.includes('--child')) {
  child().catch((error: unknown) => {
    process.stderr.write(`pairs child: ${String(error)}\n`);
    process.exit(1);
  });
} else {
  parent().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
