import { isRetryableRouteError } from '../../../src/tiers/routed-tenant-pool.js';

/** The application writing continuously during a move test; what it acknowledged is recorded. */
export interface MoveWriter {
  /** Bodies of the writes acknowledged, in order. */
  acked: string[];
  /** Every error a write got (retryable route errors are expected while frozen; any other stops the writer). */
  failed: unknown[];
  /** Resolves once `n` more writes were acknowledged (or the writer stopped). */
  more(n: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Runs `write(i)` for i = 0, 1, … until stopped; a write that resolves to a body is acknowledged
 * (one that resolves to `undefined` wrote something else: a parent row, a delete). A write that
 * fails with anything but a retryable route error stops the loop: a defect, for the test to
 * report through `failed`. `register` receives the stop function (tests stop leftovers in afterEach).
 */
export function moveWriter(
  write: (i: number) => Promise<string | undefined>,
  register: (stop: () => Promise<void>) => void,
): MoveWriter {
  const acked: string[] = [];
  const failed: unknown[] = [];
  let stopped = false;
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      try {
        const body = await write(i);
        if (body !== undefined) acked.push(body);
      } catch (error) {
        failed.push(error);
        if (!isRetryableRouteError(error)) return;
      }
    }
  })().finally(() => {
    stopped = true;
  });
  const stop = async () => {
    stopped = true;
    await loop;
  };
  register(stop);
  return {
    acked,
    failed,
    async more(n: number) {
      const goal = acked.length + n;
      while (acked.length < goal && !stopped) await new Promise((r) => setTimeout(r, 5));
    },
    stop,
  };
}
