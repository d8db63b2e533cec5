import pg from 'pg';
import { z } from 'zod';
import { defineSettings } from '../../src/settings/index.js';

/** The settings schema of these tests: one key per layer, and a cross-key refinement. */
export const definition = defineSettings({
  schema: z
    .object({
      maxUploadMb: z.number().int().positive().max(1000).default(10),
      theme: z.enum(['light', 'dark']).default('light'),
      greeting: z.string().max(80).default('Hello'),
      seats: z.number().int().positive().default(5),
      minSeats: z.number().int().positive().default(1),
    })
    .refine((s) => s.minSeats <= s.seats, { message: 'minSeats must not exceed seats', path: ['minSeats'] }),
  defaults: { greeting: 'Welcome' },
  plans: { pro: { maxUploadMb: 100, seats: 50 } },
});

/** Polls `read` until it answers `want` or `withinMs` pass; answers the time it took, or throws. */
export async function within<T>(withinMs: number, read: () => Promise<T>, want: T): Promise<number> {
  const start = performance.now();
  for (;;) {
    const value = await read();
    if (JSON.stringify(value) === JSON.stringify(want)) return performance.now() - start;
    if (performance.now() - start > withinMs)
      throw new Error(`not seen within ${withinMs} ms: ${JSON.stringify(value)} instead of ${JSON.stringify(want)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A row count, for "nothing changed" assertions. */
export async function count(db: pg.Pool, sql: string, params: unknown[]): Promise<number> {
  return Number((await db.query<{ n: string }>(`select count(*)::text as n from (${sql}) q`, params)).rows[0]!.n);
}
