import { applyDelta, catchUp } from './delta-applier.js';
import { dropCaptureTriggers } from './capture-triggers.js';
import { MoveError } from './move-error.js';
import type { MoveContext, MoveRun } from './move-run.js';
import { verifyAll } from './move-verifier.js';
import { precheck, verifyRanges } from './range-verifier.js';

/** Deltas until small, the freeze, the final delta, verification, the route switch. */
export async function switchRoute(ctx: MoveContext, run: MoveRun): Promise<void> {
  const { move } = run;
  if (move.step === 'copied' && run.logical) {
    // caught up before the freeze, so that the frozen wait is short
    ctx.progress({ moveId: move.id, step: 'catching_up' });
    if (!(await run.logical.waitApplied(await run.logical.mark(), 600_000, ctx.replication?.failAfterMs))) {
      throw new MoveError(
        'MOVE_REPLICATION_FAILED',
        "The subscription did not catch up within 10 minutes (see the target server's log)",
        { moveId: move.id },
      );
    }
    await ctx.journal.record(move, 'freezing');
    run.move.step = 'freezing';
  } else if (move.step === 'copied') {
    await catchUp(ctx, run);
    if (ctx.verify === 'ranges') await precheck(ctx, run);
    await ctx.journal.record(move, 'freezing');
    run.move.step = 'freezing';
  }
  const frozenAt = performance.now();
  // waits for every write in flight (they hold the row FOR SHARE in the capture trigger)
  await ctx.placements.setLocalState(move.source, move.tenantId, 'frozen', move.source.epoch);
  await ctx.journal.reached('freezing', run.move);
  try {
    if (run.logical) {
      // the marker is set after every write of the tenant at the source has committed (the
      // freeze waited for them): once the target shows it, the target has them all
      const timeout = ctx.replication?.freezeTimeoutMs ?? 30_000;
      if (!(await run.logical.waitApplied(await run.logical.mark(), timeout, ctx.replication?.failAfterMs))) {
        throw new MoveError(
          'MOVE_REPLICATION_FAILED',
          `The subscription did not apply the final changes within ${timeout} ms`,
          { moveId: move.id },
        );
      }
    }
    while (!run.logical && (await applyDelta(ctx, run, Number.POSITIVE_INFINITY)) > 0);
    ctx.progress({ moveId: move.id, step: 'verifying', deltaBacklog: 0 });
    const mismatch = run.ranges ? await verifyRanges(ctx, run) : await verifyAll(run);
    if (mismatch) {
      const message = `Verification failed for table ${mismatch.table}: the route was not switched and the source is serving again; roll the move back or run it again`;
      throw new MoveError('MOVE_VERIFICATION_FAILED', message, { moveId: move.id, details: mismatch });
    }
    for (const copier of run.copiers.values()) await copier.bumpSequences(run.target);
  } catch (error) {
    // nothing has switched: the source serves the tenant again while someone looks
    await ctx.placements.setLocalState(move.source, move.tenantId, 'active', move.source.epoch);
    run.move = await ctx.journal.record(move, 'copied', {
      error: String((error as Error)?.message ?? error).slice(0, 1000),
    });
    throw error;
  }
  // from here the catalog may switch: on an error the move stays frozen until run again (or rolled back)
  await ctx.placements.assign(move.tenantId, move.target);
  run.move = await ctx.journal.advance(run.move, 'switched', {
    freeze_ms: Math.round(performance.now() - frozenAt),
    switched_at: new Date(),
    error: null,
  });
}

/** After the switch: the capture goes (the subscription first), the source is kept for the grace period. */
export async function finishMove(ctx: MoveContext, run: MoveRun): Promise<void> {
  // the subscription goes before the move is done: cleanup's deletes at the source must not replicate
  if (run.logical) await run.logical.drop();
  await dropCaptureTriggers(run.source, run.move.id);
  run.move = await ctx.journal.advance(run.move, 'done', {
    cleanup_after: new Date(Date.now() + ctx.graceMs),
    finished_at: new Date(),
  });
}
