import { LatencyRecorder } from './latency.js';
import type { PointQuery } from './variants.js';

/** Outcome of running one variant for a while. */
export interface RunOutcome {
  queries: number;
  /** Queries that returned no row (or more than one): must be 0. */
  wrongRows: number;
  errors: number;
  firstError: unknown;
  elapsedSeconds: number;
}

/**
 * Runs `query` from `concurrency` workers until `seconds` have passed, each worker waiting
 * for its query before sending the next (closed loop). Latencies go to `recorder` when given.
 * Queries still in flight at the deadline finish and count; the elapsed time includes them.
 */
export async function runFor(
  query: PointQuery,
  pick: () => { tenant: string; id: number },
  concurrency: number,
  seconds: number,
  recorder?: LatencyRecorder,
): Promise<RunOutcome> {
  const outcome: RunOutcome = { queries: 0, wrongRows: 0, errors: 0, firstError: undefined, elapsedSeconds: 0 };
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  const worker = async () => {
    for (;;) {
      const t0 = process.hrtime.bigint();
      if (t0 >= deadline) return;
      const { tenant, id } = pick();
      try {
        const rows = await query(tenant, id);
        if (rows !== 1) outcome.wrongRows++;
      } catch (error) {
        outcome.errors++;
        outcome.firstError ??= error;
        if (outcome.errors > 100) throw error;
      }
      recorder?.record(Number(process.hrtime.bigint() - t0));
      outcome.queries++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  outcome.elapsedSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  return outcome;
}
