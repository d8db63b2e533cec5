import { FakePostgresStream } from './fake-postgres.js';
import { clientCpuUs } from './cpu.js';
import { runFor } from './runner.js';
import { VARIANTS, type OpenVariant } from './variants.js';

/** Client CPU per query of each variant against the in-process fake server. */
export interface ClientCost {
  variant: string;
  us: number;
  /** µs/query of each round (in round order), for ratios paired round by round. */
  rounds?: number[];
}

/**
 * Measures what each variant costs on the client alone: every pool talks to a
 * FakePostgresStream, so no time goes to the network or to PostgreSQL. (a) is measured
 * first, before anything has called runAs, and again at the end: on Node 20 the first
 * AsyncLocalStorage.run installs promise hooks that then tax every promise in the process.
 */
export async function measureClientCost(
  variants: string[],
  pick: () => { tenant: string; id: number },
  opts: { concurrency: number; seconds: number; rounds: number; prepared: boolean; contextSecret: string },
): Promise<ClientCost[]> {
  const targets = {
    signedOwnerUrl: 'postgres://fake@fake/fake',
    signedAppUrl: 'postgres://fake@fake/fake',
    unsignedAppUrl: 'postgres://fake@fake/fake',
    contextSecret: opts.contextSecret,
    poolExtras: { stream: () => new FakePostgresStream() } as unknown as import('pg').PoolConfig,
    fakeRoutes: true,
  };
  const measure = async (v: OpenVariant, seconds: number) => {
    await runFor(v.run, pick, opts.concurrency, Math.min(0.5, seconds));
    const cpu0 = clientCpuUs();
    const out = await runFor(v.run, pick, opts.concurrency, seconds);
    if (out.errors || out.wrongRows)
      throw new Error(`client-cost ${v.key}: ${out.errors} errors, ${out.wrongRows} wrong`, { cause: out.firstError });
    return { us: clientCpuUs() - cpu0, queries: out.queries };
  };
  const results: ClientCost[] = [];
  const hasA = variants.includes('a');
  if (hasA) {
    const a = VARIANTS.a!.open(targets, opts.concurrency, opts.prepared);
    const m = await measure(a, opts.seconds);
    results.push({ variant: 'a, before any runAs', us: m.us / m.queries });
    await a.end();
  }
  const open = variants.map((k) => VARIANTS[k]!.open(targets, opts.concurrency, opts.prepared));
  const totals = new Map(open.map((v) => [v.key, { us: 0, queries: 0, rounds: [] as number[] }]));
  try {
    for (let round = 0; round < opts.rounds; round++) {
      // order rotated each round, so drift in the machine's load hits every variant alike
      for (const v of open.map((_, i) => open[(i + round) % open.length]!)) {
        const m = await measure(v, opts.seconds / opts.rounds);
        const t = totals.get(v.key)!;
        t.us += m.us;
        t.queries += m.queries;
        t.rounds.push(m.us / m.queries);
      }
    }
  } finally {
    await Promise.all(open.map((v) => v.end()));
  }
  for (const v of open) {
    const t = totals.get(v.key)!;
    results.push({ variant: v.key, us: t.us / t.queries, rounds: t.rounds });
  }
  return results;
}
