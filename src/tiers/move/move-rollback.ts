import { dropCaptureTriggers } from './capture-triggers.js';
import { LogicalCapture } from './logical-capture.js';
import { MoveError } from './move-error.js';
import { sameLocation } from './move-location.js';
import type { MoveRecord } from './move-record.js';
import { OPEN_STEPS, openMoveRun, type MoveContext, type MoveRun } from './move-run.js';

/**
 * Undoes a move that has not switched: drops the capture (the subscription first), deletes what
 * was copied to the target, closes the target's route again and unfreezes the source.
 */
export async function rollbackMove(ctx: MoveContext, move: MoveRecord): Promise<MoveRecord> {
  if (move.step === 'rolled_back') return move;
  if (!OPEN_STEPS.includes(move.step) && move.step !== 'rolling_back') {
    throw new MoveError(
      'MOVE_ALREADY_SWITCHED',
      'The route has switched: the target is live; move the tenant back instead',
      { moveId: move.id },
    );
  }
  move = await ctx.journal.record(move, 'rolling_back');
  const source = ctx.placements.ownerPool(move.source);
  await dropCaptureTriggers(source, move.id);
  if (move.capture.mode === 'logical') {
    // first: a running initial sync or apply would write at the target again after the delete below
    const logical = await LogicalCapture.open(
      move,
      { source, target: ctx.placements.ownerPool(move.target) },
      ctx.replication,
    );
    try {
      await logical.drop();
    } finally {
      await logical.end();
    }
  }
  const run = await openMoveRun(ctx, move, false).catch(() => undefined); // the target may never have been made ready
  if (run) await deleteAtTarget(ctx, run);
  // an unreachable target (never prepared) has no route to close
  if (run && !sameLocation(move.source, move.target))
    await ctx.placements.setLocalState(move.target, move.tenantId, 'moved', 0);
  await ctx.placements.setLocalState(move.source, move.tenantId, 'active', move.source.epoch);
  const done = await ctx.journal.record(move, 'rolled_back', { finished_at: new Date() });
  await ctx.journal.reached('rolled_back', done);
  return done;
}

/** Deletes the tenant's rows at the target, children first. */
export async function deleteAtTarget(ctx: MoveContext, run: MoveRun): Promise<void> {
  for (const t of [...run.tables].reverse()) {
    const copier = run.copiers.get(t.sourceOid)!;
    while ((await copier.deleteSome(run.target, 'target', ctx.batch * 4)) > 0);
  }
}
