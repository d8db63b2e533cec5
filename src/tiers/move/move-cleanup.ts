import { MoveError } from './move-error.js';
import { samePlacement } from './move-location.js';
import type { MoveRecord } from './move-record.js';
import { schemasOf, type MoveContext } from './move-run.js';
import { moveTables } from './move-tables.js';
import { RowCopier } from './row-copier.js';

/**
 * Deletes the tenant's rows at the source of a finished move, once its grace period is over (or
 * at once with `force`). Never before the switch; nothing when the tenant has come back there.
 */
export async function cleanupSource(
  ctx: MoveContext,
  move: MoveRecord,
  options: { force?: boolean } = {},
): Promise<MoveRecord> {
  if (move.step === 'cleaned') return move;
  if (move.step !== 'done')
    throw new MoveError('MOVE_NOT_FINISHED', 'Only a finished move (switched) can clean up its source', {
      moveId: move.id,
      details: { step: move.step },
    });
  if (!options.force && move.cleanupAfter && move.cleanupAfter.getTime() > Date.now()) {
    throw new MoveError('MOVE_GRACE_PERIOD', `The source is kept until ${move.cleanupAfter.toISOString()}`, {
      moveId: move.id,
    });
  }
  const now = await ctx.placements.get(move.tenantId);
  // the tenant came back to where this move took it from: those rows are live again
  if (!samePlacement(now, move.source)) {
    const source = ctx.placements.ownerPool(move.source);
    // the tables this move copied: not one pinned then, nor one unpinned since (its rows never left)
    const moved = (await moveTables(source, schemasOf(ctx, move.source), source, schemasOf(ctx, move.source))).filter(
      (t) => move.tables?.includes(t.name) ?? true,
    );
    for (const t of [...moved].reverse()) {
      const copier = new RowCopier(t, move.tenantId);
      let deleted = 0;
      for (let n = -1; n !== 0;) {
        n = await copier.deleteSome(source, 'source', ctx.batch);
        deleted += n;
        ctx.progress({ moveId: move.id, step: 'cleaning', table: t.name, copied: deleted });
      }
    }
  }
  return ctx.journal.record(move, 'cleaned', { finished_at: new Date() });
}
