import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { median } from './median.js';

/** Result of one (variant, concurrency) cell. */
export interface CellResult {
  variant: string;
  concurrency: number;
  poolSize: number;
  qps: number;
  p50: number;
  p99: number;
  /** Throughput of each round, to show how steady the machine was. */
  roundQps: number[];
  queries: number;
  truncated: boolean;
  /** CPU time per query of this (client) process, µs. */
  clientCpuUs: number;
  /** CPU time per query of the PostgreSQL server (postmaster and children), µs; NaN when not local. */
  serverCpuUs: number;
  /** Client + server CPU per query of each round (µs), in round order, for ratios paired round by round. */
  roundCpuUs?: number[];
}

/** The command lines of the running processes, or undefined when `ps` cannot be run. */
function commandLines(): string[] | undefined {
  try {
    return execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' }).split('\n');
  } catch {
    return undefined;
  }
}

/** Number of running processes whose command line mentions vitest (other engineers' test runs). */
export function vitestProcesses(): number {
  return commandLines()?.filter((l) => /vitest/.test(l)).length ?? -1;
}

/** The benchmark scripts running besides `own` (another agent's run shares the machine), each named once. */
export function otherBenchScripts(own: string): string {
  const lines = commandLines();
  if (lines === undefined) return 'unknown';
  const names = new Set<string>();
  for (const line of lines) {
    const script = /bench\/([\w-]+)\.ts/.exec(line)?.[1];
    if (script !== undefined && script !== own) names.add(script);
  }
  return names.size === 0 ? 'none' : [...names].sort().join(', ');
}

export function machineLine(pgVersion: string, embedded: boolean): string {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown cpu';
  return `${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, PostgreSQL ${pgVersion} (${embedded ? 'embedded, same machine' : 'DATABASE_URL'}), ${os.type()} ${os.release()}`;
}

const fmt = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/** Spread of the rounds' throughput around their mean, in percent. */
function spread(rounds: number[]): string {
  if (rounds.length < 2) return '-';
  const mean = rounds.reduce((a, b) => a + b, 0) / rounds.length;
  return `±${fmt(((Math.max(...rounds) - Math.min(...rounds)) / 2 / mean) * 100, 1)}%`;
}

/** The results as a Markdown table. */
export function resultsTable(results: CellResult[]): string {
  const lines = [
    '| conc. | pool | variant | queries/s | p50 ms | p99 ms | vs (a) | p50 vs (a) | rounds spread | client CPU µs/q | server CPU µs/q |',
    '|---:|---:|:--|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const a = results.find((x) => x.variant === 'a' && x.concurrency === r.concurrency);
    lines.push(
      `| ${r.concurrency} | ${r.poolSize} | ${r.variant} | ${Math.round(r.qps)} | ${fmt(r.p50, 3)} | ${fmt(r.p99, 3)}${r.truncated ? '*' : ''} | ${a ? fmt(r.qps / a.qps, 2) : '-'} | ${a ? fmt(r.p50 / a.p50, 2) : '-'} | ${spread(r.roundQps)} | ${fmt(r.clientCpuUs, 0)} | ${fmt(r.serverCpuUs, 0)} |`,
    );
  }
  return lines.join('\n');
}

/** Throughput ratios b/a, b'/a, b/c, b'/c per concurrency, plus any other variant against (a). */
export function ratiosTable(results: CellResult[]): string {
  const concurrencies = [...new Set(results.map((r) => r.concurrency))];
  const pairs: Array<[string, string]> = [
    ['b', 'floor'],
    ["b'", 'floor'],
    ['b', 'a'],
    ["b'", 'a'],
    ['b', 'c'],
    ["b'", 'c'],
    ['b', "b'"],
    ['b', 'b-full-check'],
  ];
  for (const v of new Set(results.map((r) => r.variant)))
    if (!['a', 'b', "b'", 'c'].includes(v))
      pairs.push([v, 'a'], [v, v.replace('-named', '').replace('+guard', '').replace('-routed', '')]);
  for (const v of new Set(results.map((r) => r.variant)))
    if (v.startsWith('b-token')) pairs.push([v, 'floor'], [v, v.endsWith('-named') ? 'b-named' : 'b'], [v, 'c']);
  const present = pairs.filter(
    ([x, y]) => results.some((r) => r.variant === x) && results.some((r) => r.variant === y) && x !== y,
  );
  const lines = [
    `| conc. | ${present.map(([x, y]) => `${x}/${y}`).join(' | ')} |`,
    `|---:|${present.map(() => '---:').join('|')}|`,
  ];
  for (const c of concurrencies) {
    const q = (v: string) => results.find((r) => r.variant === v && r.concurrency === c)?.qps ?? Number.NaN;
    lines.push(`| ${c} | ${present.map(([x, y]) => fmt(q(x) / q(y), 2)).join(' | ')} |`);
  }
  return lines.join('\n');
}

/**
 * For each `+guard` variant against the same variant without the guard, and each `b+…` variant
 * (monitoring, noisy-neighbour protection) against b: the throughput ratio,
 * the median of the per-round throughput ratios (rounds run back to back, so a burst of other
 * work on a shared machine skews one round's pair, not the median), and the ratio of CPU per
 * query (client + server), steadier than throughput on a loaded machine. Undefined when no such pair ran.
 */
export function guardPairsTable(results: CellResult[]): string | undefined {
  // +guard against the same variant without it; b+monitor, b+noisy, b+fair… against b
  const pairs = [...new Set(results.map((r) => r.variant))].flatMap((v) =>
    v.endsWith('+guard')
      ? [[v, v.slice(0, -'+guard'.length)] as const]
      : /^b\+/.test(v) || v === 'b-full-check'
        ? [[v, 'b'] as const]
        : [],
  );
  return pairsTable(results, pairs);
}

/** The token variants (issue 15) against floor, b, b' and a: throughput and CPU per query, paired round by round. */
export function tokenPairsTable(results: CellResult[]): string | undefined {
  const pairs = [...new Set(results.map((r) => r.variant))]
    .filter((v) => v.startsWith('b-token'))
    .flatMap((v) =>
      [
        'floor',
        v.endsWith('-named') ? 'b-named' : 'b',
        "b'",
        'a',
        ...(v.endsWith('-named') ? [v.slice(0, -'-named'.length)] : []),
        ...(v.startsWith('b-token-inline') ? [v.replace('-inline', '')] : []),
      ].map((y) => [v, y] as const),
    );
  return pairsTable(results, pairs);
}

function pairsTable(results: CellResult[], pairs: ReadonlyArray<readonly [string, string]>): string | undefined {
  const present = pairs.filter(
    ([x, y]) => results.some((r) => r.variant === y) && results.some((r) => r.variant === x),
  );
  if (present.length === 0) return undefined;
  const lines = [
    '| conc. | pair | throughput ratio | median of per-round ratios | CPU per query ratio | median of per-round CPU ratios |',
    '|---:|:--|---:|---:|---:|---:|',
  ];
  for (const c of new Set(results.map((r) => r.concurrency))) {
    for (const [x, y] of present) {
      const with_ = results.find((r) => r.variant === x && r.concurrency === c);
      const without = results.find((r) => r.variant === y && r.concurrency === c);
      if (!with_ || !without) continue;
      const qpsRatio = median(with_.roundQps.map((q, i) => q / without.roundQps[i]!));
      const cpu = (with_.clientCpuUs + with_.serverCpuUs) / (without.clientCpuUs + without.serverCpuUs);
      // each round's CPU per query against the other's in the same round: the machine's drift
      // (other processes, CPU frequency) cancels round by round, as for throughput
      const cpuRatio =
        with_.roundCpuUs && without.roundCpuUs
          ? fmt(median(with_.roundCpuUs.map((u, i) => u / without.roundCpuUs![i]!)), 3)
          : '–';
      lines.push(
        `| ${c} | ${x} / ${y} | ${fmt(with_.qps / without.qps, 3)} | ${fmt(qpsRatio, 3)} | ${fmt(cpu, 3)} | ${cpuRatio} |`,
      );
    }
  }
  return lines.join('\n');
}

/** Runs a benchmark's `main` and exits with its code (1, with the stack on stderr, if it throws). */
export function runBenchMain(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
