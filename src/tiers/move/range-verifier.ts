import { applyDelta, catchUp } from './delta-applier.js';
import type { MoveContext, MoveRun } from './move-run.js';
import type { MoveTable } from './move-tables.js';
import { bothSides, wholeSums, type Mismatch, type SideSums } from './move-verifier.js';
import type { TableChecksum } from './row-copier.js';

/**
 * A table's key ranges checked before the freeze (`verify: 'ranges'`). Every check of ranges
 * takes a stamp (a counter, before its snapshot); every applied change is stamped with the counter
 * as it is then. A range must be checked again when it differed at its last check, or when a change
 * stamped at or after that check falls in it: the change may have committed after its snapshot.
 */
export interface RangeCheck {
  cuts: string[];
  /** Per range: the stamp of its last check. */
  checkedAt: number[];
  /** Ranges that differed at their last check (changes in flight, or a real difference). */
  differing: Set<number>;
  /** Per key changed (JSON text), mapped so far: the latest stamp it was applied with, and its range. */
  changed: Map<string, { stamp: number; range: number }>;
  /** Keys applied and not yet mapped to a range, with their stamps. */
  pending: Array<{ key: string; stamp: number }>;
  textHash: boolean;
}

/** A run's range checks per source table oid, and the stamp counter (this process only). */
export interface RangeChecks {
  clock: number;
  tables: Map<number, RangeCheck>;
}

/** Whether a changed key was applied at or after its range's last check (it may have committed after that snapshot). */
const sinceCheck = (check: RangeCheck, c: { stamp: number; range: number }): boolean =>
  c.stamp >= (check.checkedAt[c.range] ?? 0);

/** The ranges to check again, in order: those that differed at their last check, and those a change stamped at or after that check falls in. */
function rangesDue(check: RangeCheck): number[] {
  const due = new Set(check.differing);
  for (const c of check.changed.values()) if (sinceCheck(check, c)) due.add(c.range);
  return [...due].sort((a, b) => a - b);
}

const allRanges = (check: RangeCheck): number[] => Array.from({ length: check.cuts.length + 1 }, (_, i) => i);

/**
 * Checksums both sides per key range while the tenant still writes (`verify: 'ranges'`), so that
 * the freeze only checks again what may have changed since. Tracking starts before the first
 * check. Then what was written meanwhile is applied, the tail range (open above, where new keys
 * land) is cut at the source's greatest key, the ranges that differed are checked again, and
 * the changes applied so far are mapped to their ranges: all of it before the freeze.
 */
export async function precheck(ctx: MoveContext, run: MoveRun): Promise<void> {
  const state = { clock: 0, tables: new Map<number, RangeCheck>() };
  run.ranges = state;
  for (const t of run.tables) {
    const copier = run.copiers.get(t.sourceOid)!;
    const cuts = await copier.rangeCuts(run.source, ctx.rangeRows);
    const check: RangeCheck = {
      cuts,
      checkedAt: [],
      differing: new Set(),
      changed: new Map(),
      pending: [],
      textHash: false,
    };
    state.tables.set(t.sourceOid, check);
    ctx.progress({
      moveId: run.move.id,
      step: 'verifying',
      table: t.name,
      ranges: { checked: 0, total: cuts.length + 1 },
    });
    await checkRanges(run, t, check, allRanges(check));
    // one statement per side checks them all: done is all of them
    ctx.progress({
      moveId: run.move.id,
      step: 'verifying',
      table: t.name,
      ranges: { checked: cuts.length + 1, total: cuts.length + 1 },
    });
  }
  for (const t of run.tables) {
    const check = state.tables.get(t.sourceOid)!;
    const tail = check.cuts.length;
    const last = await run.copiers.get(t.sourceOid)!.lastKeyAfter(run.source, check.cuts[tail - 1] ?? null);
    if (last) {
      // the tail becomes [last cut, greatest key now) and a new tail opens at that key: both unchecked
      check.cuts.push(last);
      check.differing.add(tail).add(tail + 1);
    }
  }
  // every change committed before the cuts is applied (the backlog drained), so that the ranges
  // below them match now unless a change is in flight
  await applyDelta(ctx, run, Number.POSITIVE_INFINITY);
  for (const t of run.tables) {
    const check = state.tables.get(t.sourceOid)!;
    await checkRanges(
      run,
      t,
      check,
      [...check.differing].sort((a, b) => a - b),
    );
  }
  await catchUp(ctx, run);
  await mapChanges(ctx, run);
  // ranges written to during the checks (updates all over the keys, not only new rows at the
  // tail) are checked again while the tenant still writes, a few rounds, so that the freeze is
  // left with the ranges of the last moments rather than most of the table
  for (let round = 0; round < 3; round++) {
    const due = run.tables.map((t) => {
      const check = state.tables.get(t.sourceOid)!;
      return { t, check, ranges: rangesDue(check) };
    });
    if (due.every((d) => d.ranges.length <= 2)) break;
    for (const d of due) if (d.ranges.length > 2) await checkRanges(run, d.t, d.check, d.ranges);
    await catchUp(ctx, run);
    await mapChanges(ctx, run);
  }
}

/** Checks these ranges of a table on both sides (one statement each side, the source first), with a new stamp. */
async function checkRanges(
  run: MoveRun,
  t: MoveTable,
  check: RangeCheck,
  ranges: number[],
): Promise<Array<{ range: number; source: TableChecksum; target: TableChecksum }>> {
  if (ranges.length === 0) return [];
  const copier = run.copiers.get(t.sourceOid)!;
  const stamp = ++run.ranges!.clock;
  // the source first, leaving out the keys of changes not applied yet (read in its snapshot);
  // then the target without those keys: nothing writes the target in between (the mover is here)
  const [source, target] = await bothSides(async (text) => {
    const source = await copier.checksumRanges(run.source, 'source', check.cuts, ranges, text, {
      pendingOf: { moveId: run.move.id, relid: t.sourceOid },
    });
    const target = await copier.checksumRanges(run.target, 'target', check.cuts, ranges, text, {
      keys: source.pending!,
    });
    return [source, target] as const;
  }, check.textHash);
  check.textHash = source.textHash;
  const differing: Array<{ range: number; source: TableChecksum; target: TableChecksum }> = [];
  for (const [i, range] of ranges.entries()) {
    const s = source.sums[i]!;
    const g = target.sums[i]!;
    check.checkedAt[range] = stamp;
    if (s.rows === g.rows && s.hash === g.hash) check.differing.delete(range);
    else {
      check.differing.add(range);
      differing.push({ range, source: s, target: g });
    }
  }
  return differing;
}

/** Maps the changes applied since the last call to their ranges (latest stamp per range). */
async function mapChanges(ctx: MoveContext, run: MoveRun): Promise<void> {
  for (const t of run.tables) {
    const check = run.ranges!.tables.get(t.sourceOid)!;
    const pending = check.pending.splice(0);
    for (let i = 0; i < pending.length; i += ctx.batch) {
      const part = pending.slice(i, i + ctx.batch);
      const ranges = await run.copiers
        .get(t.sourceOid)!
        .rangesOf(run.source, check.cuts, `[${part.map((p) => p.key).join(',')}]`);
      for (const [k, range] of ranges.entries()) {
        const { key, stamp } = part[k]!;
        check.changed.set(key, { stamp: Math.max(check.changed.get(key)?.stamp ?? 0, stamp), range });
      }
    }
  }
}

/**
 * In the freeze, after the final delta (`verify: 'ranges'`). A range that matched at its last
 * check had every row equal on both sides then; since, only the keys of changes applied at or
 * after that check can have changed on either side (every write at the source is captured, the
 * target is written only by the mover, for those keys). So: the ranges that differed at their
 * last check are checked again whole, and for the others only those keys, row by row. A table
 * where most ranges differ, or with more such keys than `verifyRangeRows` × 5, is checked whole;
 * so is one where anything differs before the move fails (a target whose text key has another
 * collation orders keys otherwise: ranges only narrow the check, the whole table decides).
 */
export async function verifyRanges(ctx: MoveContext, run: MoveRun): Promise<Mismatch | undefined> {
  await mapChanges(ctx, run);
  for (const t of run.tables) {
    const check = run.ranges!.tables.get(t.sourceOid)!;
    // the whole table decides: instead of the narrower check, or to confirm what it found
    const whole = async (found?: { source: Record<string, unknown>; target: Record<string, unknown> }) => {
      const sums = await wholeSums(run, t, check.textHash);
      if (sums.same) return undefined;
      return found
        ? {
            table: t.name,
            source: { ...found.source, table: sums.source },
            target: { ...found.target, table: sums.target },
          }
        : { table: t.name, source: sums.source, target: sums.target };
    };
    let failed: Mismatch | undefined;
    if (check.differing.size * 2 > check.cuts.length + 1) failed = await whole();
    else {
      // the differing ranges whole (their checks' new stamps put their keys out of the list below)
      const [bad] = await checkRanges(
        run,
        t,
        check,
        [...check.differing].sort((a, b) => a - b),
      );
      const keys = bad ? [] : [...check.changed].filter(([, c]) => sinceCheck(check, c)).map(([key]) => key);
      if (bad)
        failed = await whole({
          source: { range: bad.range, ...bad.source },
          target: { range: bad.range, ...bad.target },
        });
      else if (keys.length > ctx.rangeRows * 5) failed = await whole();
      else {
        const sums = await keySums(run, t, keys, check.textHash);
        if (!sums.same)
          failed = await whole({
            source: { keys: keys.length, ...sums.source },
            target: { keys: keys.length, ...sums.target },
          });
      }
    }
    if (failed) return failed;
  }
  return undefined;
}

/** Count and checksum of these keys' rows (JSON texts) on both sides, in one statement each. */
async function keySums(run: MoveRun, t: MoveTable, keys: string[], textHash: boolean): Promise<SideSums> {
  if (keys.length === 0) return { same: true, source: { rows: 0, hash: '0' }, target: { rows: 0, hash: '0' } };
  const copier = run.copiers.get(t.sourceOid)!;
  const list = `[${keys.join(',')}]`;
  const [source, target] = await bothSides(
    (text) =>
      Promise.all([
        copier.checksumKeys(run.source, 'source', list, text),
        copier.checksumKeys(run.target, 'target', list, text),
      ]),
    textHash,
  );
  return {
    same: source.rows === target.rows && source.hash === target.hash,
    source: { rows: source.rows, hash: source.hash },
    target: { rows: target.rows, hash: target.hash },
  };
}
