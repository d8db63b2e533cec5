import { sqlStateOf } from '../../errors/sqlstate.js';
import type { MoveContext, MoveRun } from './move-run.js';
import type { RowCopier } from './row-copier.js';

/**
 * Applies up to `limit` captured changes (trigger capture); returns how many it applied. Each
 * batch of change records is read, the changed rows' CURRENT state re-read at the source, upserted
 * (parents first) or deleted (children first) at the target, and only then the records deleted:
 * order and duplicates do not matter, and a crash in between replays harmlessly.
 */
export async function applyDelta(ctx: MoveContext, run: MoveRun, limit: number): Promise<number> {
  let applied = 0;
  while (applied < limit) {
    const { rows } = await run.source.query<{ seq: string; relid: number; pk: string }>(
      'select seq, relid::int as relid, pk::text as pk from tenantry_private.move_changes where move_id = $1 order by seq limit $2',
      [run.move.id, ctx.batch],
    );
    if (rows.length === 0) break;
    const keys = new Map<number, Set<string>>();
    for (const r of rows) keys.set(r.relid, (keys.get(r.relid) ?? new Set()).add(r.pk));
    // before anything is applied: a range a change is applied in may need checking again
    if (run.ranges) {
      const stamp = run.ranges.clock;
      for (const [relid, k] of keys)
        run.ranges.tables.get(relid)?.pending.push(...[...k].map((key) => ({ key, stamp })));
    }
    const present = new Map<number, { count: number; rows: string }>();
    // current state at the source, read after the change records: upserts parents first, deletes children first
    for (const t of run.tables) {
      const k = keys.get(t.sourceOid);
      if (!k) continue;
      const copier = run.copiers.get(t.sourceOid)!;
      const rowsNow = await copier.readKeys(run.source, `[${[...k].join(',')}]`);
      present.set(t.sourceOid, rowsNow);
      await copier.upsert(run.target, rowsNow.rows);
    }
    for (const t of [...run.tables].reverse()) {
      const k = keys.get(t.sourceOid);
      const now = present.get(t.sourceOid);
      // every changed key still at the source (keys are canonical jsonb text, so distinct): nothing to delete
      if (k && now && now.count < k.size)
        await run.copiers.get(t.sourceOid)!.deleteMissing(run.target, `[${[...k].join(',')}]`, now.rows);
    }
    // only now: a crash before this line replays the same changes, which is harmless
    await run.source.query('delete from tenantry_private.move_changes where move_id = $1 and seq = any($2::bigint[])', [
      run.move.id,
      rows.map((r) => r.seq),
    ]);
    applied += rows.length;
    if (rows.length < ctx.batch) break;
  }
  return applied;
}

/** Changes captured at the source and not applied yet. */
export async function backlog(run: MoveRun): Promise<number> {
  const { rows } = await run.source.query<{ n: number }>(
    'select count(*)::int as n from tenantry_private.move_changes where move_id = $1',
    [run.move.id],
  );
  return rows[0]!.n;
}

/** Deltas until fewer than `freezeBelow` changes wait (at most 100 rounds). */
export async function catchUp(ctx: MoveContext, run: MoveRun): Promise<void> {
  for (let round = 0; round < 100; round++) {
    const waiting = await backlog(run);
    ctx.progress({ moveId: run.move.id, step: 'catching_up', deltaBacklog: waiting });
    if (waiting < ctx.freezeBelow) break;
    await applyDelta(ctx, run, waiting);
  }
}

// A child row read from the source may reference a parent written after the parent table's
// copy passed it: that parent is in the captured changes, so apply them and try again.
export async function upsertCopied(ctx: MoveContext, run: MoveRun, copier: RowCopier, rows: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await copier.upsert(run.target, rows);
      return;
    } catch (error) {
      if (sqlStateOf(error) !== '23503' || attempt >= 5) throw error;
      await applyDelta(ctx, run, Number.POSITIVE_INFINITY);
    }
  }
}
