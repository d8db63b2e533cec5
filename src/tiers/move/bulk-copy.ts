import { upsertCopied } from './delta-applier.js';
import { MoveError } from './move-error.js';
import type { MoveCursor } from './move-record.js';
import type { MoveContext, MoveRun } from './move-run.js';

/**
 * The bulk copy (trigger capture): each table in primary-key order, in batches, parents before
 * children, the cursor (table, last key written) recorded after each batch so that a run killed
 * midway continues after it. Progress counts the rows of this table copied so far: after a
 * resume, the source's rows up to the cursor (a batch replayed after a crash is not counted twice);
 * the total is the source's rows, counted again when the copy passes it (rows written meanwhile).
 */
export async function copyTables(ctx: MoveContext, run: MoveRun): Promise<void> {
  const cursor: MoveCursor = { copied: {}, ...run.move.cursor };
  let started = cursor.table === undefined;
  for (const t of run.tables) {
    if (!started && t.name !== cursor.table) continue;
    const resuming = !started;
    started = true;
    const copier = run.copiers.get(t.sourceOid)!;
    let after = resuming ? (cursor.after ?? null) : null;
    let copied = after ? await copier.countThrough(run.source, after) : 0;
    let total = Math.max(await copier.count(run.source, 'source'), copied);
    ctx.progress({ moveId: run.move.id, step: 'copying', table: t.name, copied, total });
    for (;;) {
      const batch = await copier.readBatch(run.source, after, ctx.batch);
      if (batch.count === 0) break;
      await upsertCopied(ctx, run, copier, batch.rows);
      after = batch.last;
      copied += batch.count;
      cursor.table = t.name;
      cursor.after = after;
      cursor.copied = { ...cursor.copied, [t.name]: copied };
      await ctx.journal.saveCursor(run.move.id, cursor);
      if (copied > total) total = Math.max(await copier.count(run.source, 'source'), copied);
      ctx.progress({ moveId: run.move.id, step: 'copying', table: t.name, copied, total });
      if (batch.count < ctx.batch) break;
    }
  }
  run.move = await ctx.journal.advance(run.move, 'copied', { cursor });
}

/**
 * Logical capture: the subscription's initial sync is the bulk copy (the row filter applies to
 * it); done when every table of the subscription is ready ('r': copied, then streaming).
 */
export async function copyLogical(ctx: MoveContext, run: MoveRun): Promise<void> {
  const logical = run.logical!;
  const { rows: oids } = await run.target.query<{ oid: number }>(
    'select c::regclass::oid::int as oid from unnest($1::text[]) with ordinality as u(c, i) order by i',
    [run.tables.map((t) => t.target)],
  );
  const totals = new Map<string, number>();
  let baseline: number | undefined;
  let failingSince: number | undefined;
  for (;;) {
    const state = await logical.syncState();
    if (state.tables === run.tables.length + 1 && state.ready === state.tables) break;
    if (state.tables === 0) {
      throw new MoveError(
        'MOVE_REPLICATION_FAILED',
        `The subscription ${logical.names.subscription} is missing at the target: roll the move back and start again`,
        { moveId: run.move.id },
      );
    }
    baseline ??= state.errors;
    // a failed sync or apply is retried by PostgreSQL; one that keeps failing needs a person
    if (state.errors > baseline) {
      failingSince ??= performance.now();
      if (performance.now() - failingSince > (ctx.replication?.failAfterMs ?? 10_000)) {
        throw new MoveError(
          'MOVE_REPLICATION_FAILED',
          `The subscription ${logical.names.subscription} keeps failing (see the target server's log): fix the cause and run the move again, or roll it back`,
          { moveId: run.move.id },
        );
      }
    }
    const i = run.tables.findIndex((_, k) => state.states.get(oids[k]!.oid) !== 'r');
    const t = run.tables[i];
    if (t) {
      const copier = run.copiers.get(t.sourceOid)!;
      if (!totals.has(t.name)) totals.set(t.name, await copier.count(run.source, 'source'));
      // the target held none of the tenant's rows when the sync began (prepare deleted leftovers)
      const copied = await copier.count(run.target, 'target');
      ctx.progress({
        moveId: run.move.id,
        step: 'copying',
        table: t.name,
        copied,
        total: Math.max(totals.get(t.name)!, copied),
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  run.move = await ctx.journal.advance(run.move, 'copied', { cursor: {} });
}
