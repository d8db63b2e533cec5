import type pg from 'pg';
import { runAs } from '../../src/context/tenant-context.js';
import { TenantMover } from '../../src/tiers/move/tenant-mover.js';
import type { PlacementTarget, Placements } from '../../src/tiers/placements.js';
import type { RoutedTenantPool } from '../../src/tiers/routed-tenant-pool.js';

/** One online move of the bench, measured, with every acknowledged write looked up at the target. */
export interface HopResult {
  from: PlacementTarget;
  to: PlacementTarget;
  /** The tenant's rows at the source when the move started (before the writes made during it). */
  rowsBefore: number;
  freezeMs: number;
  totalMs: number;
  /** Slowest acknowledged write, including the pool's backoff while frozen. */
  slowestMs: number;
  acked: number;
  /** Acknowledged writes found at the target (distinct). */
  found: number;
  lost: number;
  duplicated: number;
  /** Writes that failed (retryable route errors past `freezeWaitMs`). */
  failed: number;
  /** Acknowledged updates of seeded rows (with `updateIds`; not looked up one by one). */
  updated: number;
  /** The tenant's rows at the target, and what they should be (rowsBefore + acked). */
  rowsAtTarget: number;
  expectedAtTarget: number;
  cleanupMs: number;
  /** The tenant's rows left at the source after the (forced) cleanup: must be 0. */
  leftAtSource: number;
  /** The move reached `done` before the hard limit (2 × `timeoutMs`); when false, only the fields below mean anything. */
  finished: boolean;
  /** Set when the move had not switched after `timeoutMs`: the writers were stopped then (ms after the move's start), so that it could converge. */
  writersStoppedMs?: number;
  /** The last progress the move reported (step, change backlog) when the writers were stopped, else at its end. */
  lastStep?: string;
  lastBacklog?: number;
}

/** Options of {@link runHop}. */
export interface HopOptions {
  placements: Placements;
  /** The home database (catalog) as the owner. */
  catalog: pg.Pool;
  pool: RoutedTenantPool;
  tenant: string;
  from: PlacementTarget;
  to: PlacementTarget;
  rowsBefore: number;
  writers: number;
  batchSize: number;
  /**
   * When set, every other write of each writer updates a random seeded row of the tenant (ids in
   * this range, appending to its body) instead of inserting: changes all over the key space.
   */
  updateIds?: { min: number; max: number };
  /** How the mover verifies in the freeze (TenantMoverOptions.verify; default its own, 'ranges'). */
  verify?: 'ranges' | 'full';
  /** After this long without a switch the writers stop (the move did not converge under load); after twice this the hop is abandoned. */
  timeoutMs: number;
  log: (line: string) => void;
}

/** The schema holding a placement's `notes`. */
export const notesSchema = (where: PlacementTarget) => (where.tier === 'schema' ? where.schema! : 'public');

/**
 * `writers` loops insert as the tenant through the routed pool (1 s before the move, 0.5 s after
 * it); the move runs; then every acknowledged write is looked up at the target, the source is
 * cleaned up (forced) and what is left there counted.
 */
export async function runHop(o: HopOptions): Promise<HopResult> {
  const acked: string[] = [];
  let failed = 0;
  let updated = 0;
  let slowest = 0;
  let stopped = false;
  const tag = Math.random().toString(36).slice(2, 6); // bodies stay distinct across hops
  const loops = Array.from({ length: o.writers }, (_, w) =>
    (async () => {
      for (let i = 0; !stopped; i++) {
        const body = `w-${tag}-${w}-${i}`;
        const start = performance.now();
        try {
          if (o.updateIds && i % 2 === 1) {
            const id = o.updateIds.min + Math.floor(Math.random() * (o.updateIds.max - o.updateIds.min + 1));
            await runAs(o.tenant, () => o.pool.query(`update notes set body = body || '.' where id = $1`, [id]));
            updated++;
          } else {
            await runAs(o.tenant, () => o.pool.query('insert into notes (body) values ($1)', [body]));
            acked.push(body);
          }
          slowest = Math.max(slowest, Math.round(performance.now() - start));
        } catch {
          failed++;
        }
      }
    })(),
  );
  let move: Awaited<ReturnType<TenantMover['move']>> | undefined;
  let mover: TenantMover;
  let totalMs: number;
  let writersStoppedMs: number | undefined;
  let lastStep: string | undefined;
  let lastBacklog: number | undefined;
  let stalledAt: { step?: string; backlog?: number } | undefined;
  const timers: NodeJS.Timeout[] = [];
  try {
    await new Promise((resolve) => setTimeout(resolve, 1000)); // writes under way before the move starts
    let lastLine = 0;
    let t0 = performance.now();
    mover = new TenantMover({
      placements: o.placements,
      catalog: o.catalog,
      batchSize: o.batchSize,
      verify: o.verify,
      onProgress: (p) => {
        lastStep = p.step;
        if (p.deltaBacklog !== undefined) lastBacklog = p.deltaBacklog;
        if (Date.now() - lastLine < 2000 && (p.step === 'copying' || p.step === 'cleaning' || p.ranges)) return;
        lastLine = Date.now();
        o.log(
          `  ${((performance.now() - t0) / 1000).toFixed(1)} s  ${p.step}${p.table ? ` ${p.table}` : ''}${p.copied !== undefined ? ` ${p.copied}/${p.total ?? '?'}` : ''}${p.deltaBacklog !== undefined ? ` backlog ${p.deltaBacklog}` : ''}${p.ranges ? ` key range ${p.ranges.checked + 1}/${p.ranges.total}` : ''}`,
        );
      },
    });
    // durations on the monotonic clock: this VM's wall clock has been seen to jump
    t0 = performance.now();
    const moving = mover.move(o.tenant, o.to);
    moving.catch(() => undefined); // raced below: an abandoned move fails once its pools close
    timers.push(
      setTimeout(() => {
        writersStoppedMs = performance.now() - t0;
        stopped = true;
        stalledAt = { step: lastStep, backlog: lastBacklog };
        o.log(
          `  ${(writersStoppedMs / 1000).toFixed(1)} s  not switched after ${o.timeoutMs / 1000} s: writers stopped (step ${lastStep ?? '?'}, backlog ${lastBacklog ?? '?'})`,
        );
      }, o.timeoutMs),
    );
    move = await Promise.race([
      moving,
      new Promise<undefined>((resolve) => timers.push(setTimeout(() => resolve(undefined), 2 * o.timeoutMs))),
    ]);
    totalMs = performance.now() - t0;
    if (move) await new Promise((resolve) => setTimeout(resolve, writersStoppedMs === undefined ? 500 : 0)); // and writes at the new placement
  } finally {
    for (const t of timers) clearTimeout(t);
    stopped = true;
    await Promise.all(loops);
  }
  const nan = Number.NaN;
  if (!move) {
    o.log(
      `  ${(totalMs / 1000).toFixed(1)} s  abandoned: not done after ${(2 * o.timeoutMs) / 1000} s (step ${lastStep ?? '?'}, backlog ${lastBacklog ?? '?'})`,
    );
    return {
      from: o.from,
      to: o.to,
      rowsBefore: o.rowsBefore,
      freezeMs: nan,
      totalMs,
      slowestMs: slowest,
      acked: acked.length,
      found: nan,
      lost: nan,
      duplicated: nan,
      failed,
      updated,
      rowsAtTarget: nan,
      expectedAtTarget: o.rowsBefore + acked.length,
      cleanupMs: nan,
      leftAtSource: nan,
      finished: false,
      writersStoppedMs,
      lastStep: stalledAt?.step ?? lastStep,
      lastBacklog: stalledAt?.backlog ?? lastBacklog,
    };
  }

  const schema = notesSchema(o.to);
  const found = (
    await o.placements
      .ownerPool(o.to)
      .query<{ n: string; d: string; total: string }>(
        `select count(*) as n, count(distinct body) as d, (select count(*) from ${schema}.notes where tenant_id = $1) as total from ${schema}.notes where tenant_id = $1 and body = any($2)`,
        [o.tenant, acked],
      )
  ).rows[0]!;
  const t1 = performance.now();
  await mover.cleanup(move.id, { force: true });
  const cleanupMs = performance.now() - t1;
  const left = await o.placements
    .ownerPool(o.from)
    .query<{ n: string }>(`select count(*) as n from ${notesSchema(o.from)}.notes where tenant_id = $1`, [o.tenant]);
  return {
    from: o.from,
    to: o.to,
    rowsBefore: o.rowsBefore,
    freezeMs: move.freezeMs!,
    totalMs,
    slowestMs: slowest,
    acked: acked.length,
    found: Number(found.d),
    lost: acked.length - Number(found.d),
    duplicated: Number(found.n) - Number(found.d),
    failed,
    updated,
    rowsAtTarget: Number(found.total),
    expectedAtTarget: o.rowsBefore + acked.length,
    cleanupMs,
    leftAtSource: Number(left.rows[0]!.n),
    finished: true,
    writersStoppedMs,
    lastStep: stalledAt?.step ?? lastStep,
    lastBacklog: stalledAt?.backlog ?? lastBacklog,
  };
}

/** Not finished, lost, duplicated, wrong count at the target or rows left at the source: the hop failed. */
export const hopOk = (h: HopResult) =>
  h.finished && h.lost === 0 && h.duplicated === 0 && h.rowsAtTarget === h.expectedAtTarget && h.leftAtSource === 0;
