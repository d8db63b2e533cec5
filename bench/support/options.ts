/** Settings of the isolation benchmark, from flags (`--seconds=2`) or environment (`BENCH_SECONDS=2`). */
export interface BenchOptions {
  /** Measured seconds per (variant, concurrency) cell, summed over the rounds. */
  seconds: number;
  /** Each cell's time is split into this many rounds, variants interleaved round by round. */
  rounds: number;
  /** Unmeasured seconds per variant and concurrency before the first round. */
  warmupSeconds: number;
  concurrency: number[];
  /** Pool size is min(concurrency, poolMax) for every variant. */
  poolMax: number;
  tenants: number;
  rowsPerTenant: number;
  /** Variant keys to run, in round order. */
  variants: string[];
  /** A superuser URL of an existing server; an embedded PostgreSQL 18 is started when absent. */
  databaseUrl: string | undefined;
  /** Statement styles to measure, one table each: unnamed (parsed and planned per query) and/or prepared (named). */
  statements: Array<'unnamed' | 'prepared'>;
  /** Measure each variant's client-side CPU against an in-process fake server (default on). */
  clientCost: boolean;
  /** Also run the signed-function study (alternative formulations of current_tenant_id). */
  study: boolean;
  /** Skip the throughput table (e.g. with --study to run the study alone). */
  skipMain: boolean;
  /** Only the client-side CPU per query against the in-process fake server: no PostgreSQL at all. */
  clientCostOnly: boolean;
  /** With a b-token variant: µs per call of the token check against core 007's signed check (best of rounds). */
  tokenMicro: boolean;
}

const DEFAULTS: BenchOptions = {
  seconds: 6,
  rounds: 3,
  warmupSeconds: 1.5,
  concurrency: [1, 16, 64],
  poolMax: 32,
  tenants: 1000,
  rowsPerTenant: 1000,
  variants: ['a', 'floor', 'b', "b'", 'c'],
  databaseUrl: undefined,
  statements: ['unnamed'],
  clientCost: true,
  study: false,
  skipMain: false,
  clientCostOnly: false,
  tokenMicro: false,
};

/** `--quick`: a smoke run of about a minute including data generation. */
const QUICK: Partial<BenchOptions> = { seconds: 1.5, rounds: 1, warmupSeconds: 0.5 };

function flagValues(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const arg of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (m) out.set(m[1]!, m[2] ?? 'true');
  }
  return out;
}

function number(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number ≥ ${min}, got ${raw}`);
  return n;
}

/**
 * The data's shape. `--rows=N` (BENCH_ROWS) gives the total: the tenants then default to one per
 * 1,000 rows (at least the default 1,000), so `--rows=10000000` is the 10M rows / 10,000 tenants
 * of the P2 check; `--tenants` still wins, and `--rows-per-tenant` without `--rows`.
 */
function shapeOf(
  get: (flag: string, envName: string) => string | undefined,
  base: BenchOptions,
): { tenants: number; rowsPerTenant: number } {
  const rows = get('rows', 'BENCH_ROWS');
  const tenantsRaw = get('tenants', 'BENCH_TENANTS');
  if (rows !== undefined && rows !== '') {
    const total = Math.floor(number('rows', rows, 0, 1));
    const tenants = Math.floor(number('tenants', tenantsRaw, Math.max(base.tenants, Math.round(total / 1000)), 1));
    return { tenants, rowsPerTenant: Math.max(1, Math.floor(total / tenants)) };
  }
  return {
    tenants: Math.floor(number('tenants', tenantsRaw, base.tenants, 1)),
    rowsPerTenant: Math.floor(
      number('rows-per-tenant', get('rows-per-tenant', 'BENCH_ROWS_PER_TENANT'), base.rowsPerTenant, 1),
    ),
  };
}

/** Reads the options; flags win over environment variables. */
export function readOptions(argv = process.argv.slice(2), env = process.env): BenchOptions {
  const flags = flagValues(argv);
  const get = (flag: string, envName: string) => flags.get(flag) ?? env[envName];
  const base = { ...DEFAULTS, ...(flags.has('quick') || env.BENCH_QUICK === '1' ? QUICK : {}) };
  const list = (raw: string | undefined) =>
    raw
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const concurrency =
    list(get('concurrency', 'BENCH_CONCURRENCY'))?.map((s) => number('concurrency', s, 1, 1)) ?? base.concurrency;
  const variants = list(get('variants', 'BENCH_VARIANTS')) ?? base.variants;
  return {
    seconds: number('seconds', get('seconds', 'BENCH_SECONDS'), base.seconds, 0.1),
    rounds: Math.floor(number('rounds', get('rounds', 'BENCH_ROUNDS'), base.rounds, 1)),
    warmupSeconds: number('warmup', get('warmup', 'BENCH_WARMUP'), base.warmupSeconds, 0),
    concurrency,
    poolMax: Math.floor(number('pool-max', get('pool-max', 'BENCH_POOL_MAX'), base.poolMax, 1)),
    ...shapeOf(get, base),
    variants,
    statements:
      flags.has('prepared-only') || env.BENCH_PREPARED === 'only'
        ? ['prepared']
        : flags.has('prepared') || env.BENCH_PREPARED === '1'
          ? ['unnamed', 'prepared']
          : base.statements,
    databaseUrl: flags.get('database-url') ?? env.DATABASE_URL ?? undefined,
    clientCost: !(flags.has('no-client-cost') || env.BENCH_CLIENT_COST === '0'),
    study: flags.has('study') || flags.has('study-only') || env.BENCH_STUDY === '1' || env.BENCH_STUDY_ONLY === '1',
    skipMain: flags.has('study-only') || env.BENCH_STUDY_ONLY === '1',
    clientCostOnly: flags.has('client-cost-only') || env.BENCH_CLIENT_COST_ONLY === '1',
    tokenMicro: flags.has('token-micro') || env.BENCH_TOKEN_MICRO === '1',
  };
}
