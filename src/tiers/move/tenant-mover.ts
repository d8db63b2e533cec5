import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { toTenantId } from '../../context/tenant-id.js';
import { InvalidArgumentError } from '../../errors/tenantry-error.js';
import { sqlStateOf } from '../../errors/sqlstate.js';
import { validIdentifier } from '../../policy/identifiers.js';
import type { Placement, PlacementTarget, Placements } from '../placements.js';
import { dropCaptureTriggers, installCaptureTriggers } from './capture-triggers.js';
import {
  LogicalCapture,
  logicalNames,
  refuseLogicalPlacements,
  type CaptureMode,
  type MoveCapture,
  type ReplicationOptions,
} from './logical-capture.js';
import { MoveError } from './move-error.js';
import {
  MOVE_COLUMNS,
  toMoveRecord,
  type MoveCursor,
  type MoveProgress,
  type MoveRecord,
  type MoveStep,
} from './move-record.js';
import { moveTables, type MoveTable } from './move-tables.js';
import { RowCopier, type TableChecksum } from './row-copier.js';

/** Options of {@link TenantMover}. */
export interface TenantMoverOptions {
  /** Owner pools per location, and the route switch. */
  placements: Placements;
  /** The home database (the catalog, `tenantry.moves`) as the owner role. */
  catalog: pg.Pool;
  /** Schemas of the shared tier's tenant tables (default `['public']`). */
  dataSchemas?: string[];
  /** Rows per copy batch and changes per delta batch (default 5000). */
  batchSize?: number;
  /** The write freeze starts once fewer changes than this wait to be applied (default 500). */
  freezeBelow?: number;
  /** How long the source keeps the tenant's rows after the switch, before `cleanup` may delete them (default 1 hour). */
  graceMs?: number;
  onProgress?: (progress: MoveProgress) => void;
  /** Called after each step is done and recorded (tests use it to kill the process at a step). */
  onStep?: (step: MoveStep, move: MoveRecord) => void | Promise<void>;
  /**
   * How changes made at the source during the copy reach the target (default `'triggers'`):
   * `'triggers'` records them with capture triggers on the source tables (any tiers, any
   * `wal_level`); `'logical'` streams them with logical replication, PostgreSQL 15+ (a
   * publication with a row filter on the tenant column at the source, a subscription at the
   * target whose initial sync is the bulk copy), between two different databases of the shared
   * and database tiers, with `replication` connections. Recorded with the move: a resumed move
   * keeps the mode it started with.
   */
  capture?: CaptureMode;
  /** Connections for `capture: 'logical'` (per cluster; see {@link ReplicationOptions}). */
  replication?: ReplicationOptions;
  /**
   * How the target is verified while the tenant is frozen (default `'ranges'`). `'ranges'`
   * (trigger capture): just before the freeze, both sides are checksummed per key range of
   * `verifyRangeRows` rows while writes go on; in the freeze only the ranges that differed then,
   * or that a change captured since falls in, are checksummed again, so the freeze no longer
   * grows with the tenant's size. `'full'`: every row of both sides is checksummed in the freeze
   * (what logical capture, and a move resumed while frozen, always do).
   */
  verify?: 'ranges' | 'full';
  /** Rows per range for `verify: 'ranges'` (default 20,000). */
  verifyRangeRows?: number;
}

/**
 * A table's key ranges checked before the freeze (`verify: 'ranges'`). Every check of ranges
 * takes a stamp (a counter, before its snapshot); every applied change is stamped with the counter
 * as it is then. A range must be checked again when it differed at its last check, or when a change
 * stamped at or after that check falls in it: the change may have committed after its snapshot.
 */
interface RangeCheck {
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

/** Whether a changed key was applied at or after its range's last check (it may have committed after that snapshot). */
const sinceCheck = (check: RangeCheck, c: { stamp: number; range: number }): boolean =>
  c.stamp >= (check.checkedAt[c.range] ?? 0);

/** The ranges to check again, in order: those that differed at their last check, and those a change stamped at or after that check falls in. */
function rangesDue(check: RangeCheck): number[] {
  const due = new Set(check.differing);
  for (const c of check.changed.values()) if (sinceCheck(check, c)) due.add(c.range);
  return [...due].sort((a, b) => a - b);
}

/**
 * Runs a checksum on both sides (`run(textHash)` answers [source, target]); when one side could
 * not hash by type and the other could, both again by the row's text: both must hash the same way.
 */
async function bothSides<T extends { textHash: boolean }>(
  run: (textHash: boolean) => Promise<readonly [T, T]>,
  textHash: boolean,
): Promise<readonly [T, T]> {
  const first = await run(textHash);
  return first[0].textHash === first[1].textHash ? first : run(true);
}

interface Run {
  move: MoveRecord;
  source: pg.Pool;
  target: pg.Pool;
  tables: MoveTable[];
  copiers: Map<number, RowCopier>;
  /** The move's logical replication, when its capture is `logical`. */
  logical?: LogicalCapture;
  /** `verify: 'ranges'`: the range checks per source table oid and the stamp counter (this process only). */
  ranges?: { clock: number; tables: Map<number, RangeCheck> };
}

const OPEN: MoveStep[] = ['created', 'prepared', 'capturing', 'copied', 'freezing'];

/**
 * Moves a tenant online between any two placements (shared, schema, database; any cluster):
 * capture triggers on the source, bulk copy in primary-key order, deltas until small, a write
 * freeze, the final delta, verification (row counts and checksums per table), the route switch
 * (`Placements.assign`), then the source's rows are deleted by `cleanup` after a grace period.
 * Each step is recorded in `tenantry.moves` before the next begins: a move killed at any step
 * continues with `run(id)` or is undone with `rollback(id)` (possible until the switch).
 *
 * With `capture: 'logical'` (PostgreSQL 15+, shared and database tiers, two different
 * databases), logical replication replaces the capture triggers, the bulk copy and the deltas: a
 * publication with a row filter on the tenant at the source, a subscription at the target (its
 * initial sync is the copy); after the freeze, a marker row seen at the target proves every
 * change applied; the subscription, its slot and the publication are dropped when done or
 * rolled back.
 *
 * The application keeps running through a RoutedTenantPool: during the freeze its statements
 * wait (TR004); after the switch a stale route is refused (TR003) and retried at the target.
 *
 * @example
 * const mover = new TenantMover({ placements, catalog: homeOwnerPool, onProgress: console.log });
 * const move = await mover.move(tenantId, { tier: 'schema', cluster: 'home', schema: 't_acme' });
 * // … later: await mover.cleanup(move.id);
 */
export class TenantMover {
  readonly #placements: Placements;
  readonly #catalog: pg.Pool;
  readonly #dataSchemas: string[];
  readonly #batch: number;
  readonly #freezeBelow: number;
  readonly #graceMs: number;
  readonly #progress: (p: MoveProgress) => void;
  readonly #onStep: (step: MoveStep, move: MoveRecord) => void | Promise<void>;
  readonly #capture: CaptureMode;
  readonly #replication: ReplicationOptions | undefined;
  readonly #verify: 'ranges' | 'full';
  readonly #rangeRows: number;

  constructor(options: TenantMoverOptions) {
    this.#placements = options.placements;
    this.#catalog = options.catalog;
    this.#dataSchemas = (options.dataSchemas ?? ['public']).map((s) => validIdentifier(s, 'schema'));
    this.#batch = options.batchSize ?? 5000;
    this.#freezeBelow = options.freezeBelow ?? 500;
    this.#graceMs = options.graceMs ?? 3_600_000;
    this.#progress = options.onProgress ?? (() => undefined);
    this.#onStep = options.onStep ?? (() => undefined);
    if (options.capture !== undefined && options.capture !== 'triggers' && options.capture !== 'logical')
      throw new InvalidArgumentError("capture must be 'triggers' or 'logical'", 'capture');
    this.#capture = options.capture ?? 'triggers';
    this.#replication = options.replication;
    if (options.verify !== undefined && options.verify !== 'ranges' && options.verify !== 'full')
      throw new InvalidArgumentError("verify must be 'ranges' or 'full'", 'verify');
    this.#verify = options.verify ?? 'ranges';
    if (
      options.verifyRangeRows !== undefined &&
      (!Number.isInteger(options.verifyRangeRows) || options.verifyRangeRows < 1)
    )
      throw new InvalidArgumentError('verifyRangeRows must be a positive integer', 'verifyRangeRows');
    this.#rangeRows = options.verifyRangeRows ?? 20_000;
  }

  /** Starts a move and runs it to the end (`done`: switched, source kept until `cleanup`). */
  async move(tenant: string, target: PlacementTarget): Promise<MoveRecord> {
    const move = await this.start(tenant, target);
    return this.run(move.id);
  }

  /** Records a move (or returns the tenant's open move to the same target) without running it. */
  async start(tenant: string, target: PlacementTarget): Promise<MoveRecord> {
    const tenantId = toTenantId(tenant);
    const to = normalize(target);
    const from = await this.#placements.get(tenantId);
    const open = await this.openMove(tenantId);
    if (open) {
      if (sameLocation(open.target, to) && open.target.schema === to.schema) return open;
      throw new MoveError('MOVE_BUSY', 'The tenant has another move open: resume or roll it back first', {
        moveId: open.id,
      });
    }
    if (sameLocation(from, to) && (from.schema ?? null) === to.schema)
      throw new MoveError('MOVE_SAME_PLACEMENT', 'The tenant already lives there');
    const source = {
      tier: from.tier,
      cluster: from.cluster,
      database: from.database,
      schema: from.schema,
      epoch: from.epoch,
    };
    const id = randomUUID();
    let capture: MoveCapture = { mode: 'triggers' };
    if (this.#capture === 'logical') {
      capture = { mode: 'logical', ...logicalNames(id) };
      // refused before anything is recorded: placements, connections, versions, replica identities
      refuseLogicalPlacements(source, to, this.#replication);
      const sourcePool = this.#placements.ownerPool(source);
      const targetPool = this.#placements.ownerPool(to);
      const logical = await LogicalCapture.open(
        { id, tenantId, source, target: to },
        { source: sourcePool, target: targetPool },
        this.#replication,
      );
      try {
        await logical.check(await moveTables(sourcePool, this.#schemas(source), targetPool, this.#schemas(to)));
      } finally {
        await logical.end();
      }
    }
    // a trigger move leaves the column null (read as triggers): it runs on a catalog without it
    const { rows } = await this.#catalog.query(
      capture.mode === 'logical'
        ? `insert into tenantry.moves (id, tenant_id, source, target, capture) values ($1, $2, $3, $4, $5) returning ${MOVE_COLUMNS}`
        : `insert into tenantry.moves (id, tenant_id, source, target) values ($1, $2, $3, $4) returning ${MOVE_COLUMNS}`,
      capture.mode === 'logical' ? [id, tenantId, source, to, capture] : [id, tenantId, source, to],
    );
    return toMoveRecord(rows[0]!);
  }

  /** The move record. */
  async get(id: string): Promise<MoveRecord> {
    const { rows } = await this.#catalog.query(`select ${MOVE_COLUMNS} from tenantry.moves where id = $1`, [
      toTenantId(id),
    ]);
    if (!rows[0]) throw new MoveError('MOVE_NOT_FOUND', 'No such move', { moveId: id });
    return toMoveRecord(rows[0]);
  }

  /** The tenant's move that has not switched or rolled back yet, if any. */
  async openMove(tenant: string): Promise<MoveRecord | undefined> {
    const { rows } = await this.#catalog.query(
      `select ${MOVE_COLUMNS} from tenantry.moves where tenant_id = $1 and step not in ('done', 'cleaned', 'rolled_back')`,
      [toTenantId(tenant)],
    );
    return rows[0] ? toMoveRecord(rows[0]) : undefined;
  }

  /** Continues a move from its last recorded step to `done` (or finishes a rollback in progress). */
  async run(id: string): Promise<MoveRecord> {
    return this.#locked(id, async () => {
      let move = await this.get(id);
      if (move.step === 'rolling_back') return this.#rollback(move);
      move = await this.#detectSwitch(move);
      if (!OPEN.includes(move.step) && move.step !== 'switched') return move;
      let run: Run | undefined;
      try {
        run = await this.#open(move);
        if (run.move.step === 'created') await this.#prepare(run);
        if (run.move.step === 'prepared') await this.#startCapture(run);
        if (run.move.step === 'capturing') await (run.logical ? this.#copyLogical(run) : this.#copy(run));
        if (run.move.step === 'copied' || run.move.step === 'freezing') await this.#switch(run);
        if (run.move.step === 'switched') await this.#finish(run);
        return run.move;
      } catch (error) {
        await this.#catalog
          .query('update tenantry.moves set error = $2, updated_at = now() where id = $1', [
            id,
            String((error as Error)?.message ?? error).slice(0, 1000),
          ])
          .catch(() => undefined);
        throw error;
      } finally {
        await run?.logical?.end();
      }
    });
  }

  /** Alias of `run`, or of `rollback` with `{ rollback: true }`: what to call after a crash. */
  async resume(id: string, options: { rollback?: boolean } = {}): Promise<MoveRecord> {
    return options.rollback ? this.rollback(id) : this.run(id);
  }

  /**
   * Undoes a move that has not switched: drops the capture, deletes what was copied to the
   * target, unfreezes the source. Refused once the route has switched (the target is live).
   */
  async rollback(id: string): Promise<MoveRecord> {
    return this.#locked(id, async () => this.#rollback(await this.#detectSwitch(await this.get(id))));
  }

  /**
   * Deletes the tenant's rows at the source of a finished move, once its grace period is over
   * (or at once with `force`). Never before the switch.
   */
  async cleanup(id: string, options: { force?: boolean } = {}): Promise<MoveRecord> {
    return this.#locked(id, async () => {
      const move = await this.get(id);
      if (move.step === 'cleaned') return move;
      if (move.step !== 'done')
        throw new MoveError('MOVE_NOT_FINISHED', 'Only a finished move (switched) can clean up its source', {
          moveId: id,
          details: { step: move.step },
        });
      if (!options.force && move.cleanupAfter && move.cleanupAfter.getTime() > Date.now()) {
        throw new MoveError('MOVE_GRACE_PERIOD', `The source is kept until ${move.cleanupAfter.toISOString()}`, {
          moveId: id,
        });
      }
      const now = await this.#placements.get(move.tenantId);
      // the tenant came back to where this move took it from: those rows are live again
      if (!(sameLocation(now, move.source) && (now.schema ?? null) === (move.source.schema ?? null))) {
        const source = this.#placements.ownerPool(move.source);
        // the tables this move copied: not one pinned then, nor one unpinned since (its rows never left)
        const moved = (await moveTables(source, this.#schemas(move.source), source, this.#schemas(move.source))).filter(
          (t) => move.tables?.includes(t.name) ?? true,
        );
        for (const t of [...moved].reverse()) {
          const copier = new RowCopier(t, move.tenantId);
          let deleted = 0;
          for (let n = -1; n !== 0;) {
            n = await copier.deleteSome(source, 'source', this.#batch);
            deleted += n;
            this.#progress({ moveId: id, step: 'cleaning', table: t.name, copied: deleted });
          }
        }
      }
      return this.#record(move, 'cleaned', { finished_at: new Date() });
    });
  }

  async #prepare(run: Run): Promise<void> {
    const { move } = run;
    const now = await this.#placements.get(move.tenantId);
    if (
      !sameLocation(now, move.source) ||
      (now.schema ?? null) !== (move.source.schema ?? null) ||
      now.epoch !== move.source.epoch
    ) {
      throw new MoveError(
        'MOVE_SAME_PLACEMENT',
        'The tenant moved since this move was recorded: roll it back and start again',
        { moveId: move.id },
      );
    }
    // the capture triggers and the freeze lock this row: it must exist (the default route has none)
    await run.source.query(
      `insert into tenantry.local_tenants (tenant_key, state, epoch, schema) values ($1, 'active', $2, $3) on conflict (tenant_key) do nothing`,
      [move.tenantId, move.source.epoch, move.source.schema ?? null],
    );
    // until the switch, a route to the target database is refused (nobody should have one)
    if (!sameLocation(move.source, move.target))
      await this.#placements.setLocalState(move.target, move.tenantId, 'moved', 0);
    // the tenant does not live at the target: any of its rows there are leftovers of an earlier move
    await this.#deleteAtTarget(run);
    await this.#catalog.query(
      `update tenantry.moves set step = 'cleaned', finished_at = now(), updated_at = now()
        where tenant_id = $1 and step = 'done' and source->>'cluster' = $2 and coalesce(source->>'database', '') = $3 and coalesce(source->>'schema', '') = $4`,
      [move.tenantId, move.target.cluster, move.target.database ?? '', move.target.schema ?? ''],
    );
    await this.#advance(run, 'prepared');
  }

  async #startCapture(run: Run): Promise<void> {
    if (run.logical) {
      await run.logical.check(run.tables);
      await run.logical.install(run.tables);
    } else {
      await installCaptureTriggers(run.source, run.move.id, run.move.tenantId, run.tables);
    }
    await this.#advance(run, 'capturing', { cursor: {}, tables: run.tables.map((t) => t.name) });
  }

  /**
   * Logical capture: the subscription's initial sync is the bulk copy (the row filter applies to
   * it); done when every table of the subscription is ready ('r': copied, then streaming).
   */
  async #copyLogical(run: Run): Promise<void> {
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
        if (performance.now() - failingSince > (this.#replication?.failAfterMs ?? 10_000)) {
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
        const copied = await copier.count(run.target, 'target');
        this.#progress({
          moveId: run.move.id,
          step: 'copying',
          table: t.name,
          copied,
          total: Math.max(totals.get(t.name)!, copied),
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await this.#advance(run, 'copied', { cursor: {} });
  }

  async #copy(run: Run): Promise<void> {
    const cursor: MoveCursor = { copied: {}, ...run.move.cursor };
    let started = cursor.table === undefined;
    for (const t of run.tables) {
      if (!started && t.name !== cursor.table) continue;
      const resuming = !started;
      started = true;
      const copier = run.copiers.get(t.sourceOid)!;
      const total = await copier.count(run.source, 'source');
      let after = resuming ? (cursor.after ?? null) : null;
      let copied = resuming ? (cursor.copied?.[t.name] ?? 0) : 0;
      this.#progress({ moveId: run.move.id, step: 'copying', table: t.name, copied, total });
      for (;;) {
        const batch = await copier.readBatch(run.source, after, this.#batch);
        if (batch.count === 0) break;
        await this.#upsertCopied(run, copier, batch.rows);
        after = batch.last;
        copied += batch.count;
        cursor.table = t.name;
        cursor.after = after;
        cursor.copied = { ...cursor.copied, [t.name]: copied };
        await this.#catalog.query('update tenantry.moves set cursor = $2, updated_at = now() where id = $1', [
          run.move.id,
          cursor,
        ]);
        this.#progress({ moveId: run.move.id, step: 'copying', table: t.name, copied, total: Math.max(total, copied) });
        if (batch.count < this.#batch) break;
      }
    }
    await this.#advance(run, 'copied', { cursor });
  }

  /** Deltas until small, the freeze, the final delta, verification, the route switch. */
  async #switch(run: Run): Promise<void> {
    const { move } = run;
    if (move.step === 'copied' && run.logical) {
      // caught up before the freeze, so that the frozen wait is short
      this.#progress({ moveId: move.id, step: 'catching_up' });
      if (!(await run.logical.waitApplied(await run.logical.mark(), 600_000, this.#replication?.failAfterMs))) {
        throw new MoveError(
          'MOVE_REPLICATION_FAILED',
          "The subscription did not catch up within 10 minutes (see the target server's log)",
          { moveId: move.id },
        );
      }
      await this.#record(move, 'freezing');
      run.move.step = 'freezing';
    } else if (move.step === 'copied') {
      await this.#catchUp(run);
      if (this.#verify === 'ranges') await this.#precheck(run);
      await this.#record(move, 'freezing');
      run.move.step = 'freezing';
    }
    const frozenAt = performance.now();
    // waits for every write in flight (they hold the row FOR SHARE in the capture trigger)
    await this.#placements.setLocalState(move.source, move.tenantId, 'frozen', move.source.epoch);
    await this.#onStep('freezing', run.move);
    try {
      if (run.logical) {
        // the marker is set after every write of the tenant at the source has committed (the
        // freeze waited for them): once the target shows it, the target has them all
        const timeout = this.#replication?.freezeTimeoutMs ?? 30_000;
        if (!(await run.logical.waitApplied(await run.logical.mark(), timeout, this.#replication?.failAfterMs))) {
          throw new MoveError(
            'MOVE_REPLICATION_FAILED',
            `The subscription did not apply the final changes within ${timeout} ms`,
            { moveId: move.id },
          );
        }
      }
      while (!run.logical && (await this.#applyDelta(run, Number.POSITIVE_INFINITY)) > 0);
      this.#progress({ moveId: move.id, step: 'verifying', deltaBacklog: 0 });
      const mismatch = run.ranges ? await this.#verifyRanges(run) : await this.#verifyAll(run);
      if (mismatch) {
        const message = `Verification failed for table ${mismatch.table}: the route was not switched and the source is serving again; roll the move back or run it again`;
        throw new MoveError('MOVE_VERIFICATION_FAILED', message, { moveId: move.id, details: mismatch });
      }
      for (const copier of run.copiers.values()) await copier.bumpSequences(run.target);
    } catch (error) {
      // nothing has switched: the source serves the tenant again while someone looks
      await this.#placements.setLocalState(move.source, move.tenantId, 'active', move.source.epoch);
      run.move = await this.#record(move, 'copied', {
        error: String((error as Error)?.message ?? error).slice(0, 1000),
      });
      throw error;
    }
    // from here the catalog may switch: on an error the move stays frozen until run again (or rolled back)
    await this.#placements.assign(move.tenantId, move.target);
    await this.#advance(run, 'switched', {
      freeze_ms: Math.round(performance.now() - frozenAt),
      switched_at: new Date(),
      error: null,
    });
  }

  async #finish(run: Run): Promise<void> {
    // the subscription goes before the move is done: cleanup's deletes at the source must not replicate
    if (run.logical) await run.logical.drop();
    await dropCaptureTriggers(run.source, run.move.id);
    await this.#advance(run, 'done', { cleanup_after: new Date(Date.now() + this.#graceMs), finished_at: new Date() });
  }

  async #rollback(move: MoveRecord): Promise<MoveRecord> {
    if (move.step === 'rolled_back') return move;
    if (!OPEN.includes(move.step) && move.step !== 'rolling_back') {
      throw new MoveError(
        'MOVE_ALREADY_SWITCHED',
        'The route has switched: the target is live; move the tenant back instead',
        { moveId: move.id },
      );
    }
    move = await this.#record(move, 'rolling_back');
    const source = this.#placements.ownerPool(move.source);
    await dropCaptureTriggers(source, move.id);
    if (move.capture.mode === 'logical') {
      // first: a running initial sync or apply would write at the target again after the delete below
      const logical = await LogicalCapture.open(
        move,
        { source, target: this.#placements.ownerPool(move.target) },
        this.#replication,
      );
      try {
        await logical.drop();
      } finally {
        await logical.end();
      }
    }
    const run = await this.#open(move, false).catch(() => undefined); // the target may never have been made ready
    if (run) await this.#deleteAtTarget(run);
    // an unreachable target (never prepared) has no route to close
    if (run && !sameLocation(move.source, move.target))
      await this.#placements.setLocalState(move.target, move.tenantId, 'moved', 0);
    await this.#placements.setLocalState(move.source, move.tenantId, 'active', move.source.epoch);
    const done = await this.#record(move, 'rolled_back', { finished_at: new Date() });
    await this.#onStep('rolled_back', done);
    return done;
  }

  // A child row read from the source may reference a parent written after the parent table's
  // copy passed it: that parent is in the captured changes, so apply them and try again.
  async #upsertCopied(run: Run, copier: RowCopier, rows: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await copier.upsert(run.target, rows);
        return;
      } catch (error) {
        if (sqlStateOf(error) !== '23503' || attempt >= 5) throw error;
        await this.#applyDelta(run, Number.POSITIVE_INFINITY);
      }
    }
  }

  /** Applies up to `limit` captured changes; returns how many it applied. */
  async #applyDelta(run: Run, limit: number): Promise<number> {
    let applied = 0;
    while (applied < limit) {
      const { rows } = await run.source.query<{ seq: string; relid: number; pk: string }>(
        'select seq, relid::int as relid, pk::text as pk from tenantry_private.move_changes where move_id = $1 order by seq limit $2',
        [run.move.id, this.#batch],
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
      await run.source.query(
        'delete from tenantry_private.move_changes where move_id = $1 and seq = any($2::bigint[])',
        [run.move.id, rows.map((r) => r.seq)],
      );
      applied += rows.length;
      if (rows.length < this.#batch) break;
    }
    return applied;
  }

  async #backlog(run: Run): Promise<number> {
    const { rows } = await run.source.query<{ n: number }>(
      'select count(*)::int as n from tenantry_private.move_changes where move_id = $1',
      [run.move.id],
    );
    return rows[0]!.n;
  }

  /** Deltas until fewer than `freezeBelow` changes wait (at most 100 rounds). */
  async #catchUp(run: Run): Promise<void> {
    for (let round = 0; round < 100; round++) {
      const backlog = await this.#backlog(run);
      this.#progress({ moveId: run.move.id, step: 'catching_up', deltaBacklog: backlog });
      if (backlog < this.#freezeBelow) break;
      await this.#applyDelta(run, backlog);
    }
  }

  /**
   * Checksums both sides per key range while the tenant still writes (`verify: 'ranges'`), so that
   * the freeze only checks again what may have changed since. Tracking starts before the first
   * check. Then what was written meanwhile is applied, the tail range (open above, where new keys
   * land) is cut at the source's greatest key, the ranges that differed are checked again, and
   * the changes applied so far are mapped to their ranges: all of it before the freeze.
   */
  async #precheck(run: Run): Promise<void> {
    const state = { clock: 0, tables: new Map<number, RangeCheck>() };
    run.ranges = state;
    for (const t of run.tables) {
      const copier = run.copiers.get(t.sourceOid)!;
      const cuts = await copier.rangeCuts(run.source, this.#rangeRows);
      const check: RangeCheck = {
        cuts,
        checkedAt: [],
        differing: new Set(),
        changed: new Map(),
        pending: [],
        textHash: false,
      };
      state.tables.set(t.sourceOid, check);
      this.#progress({
        moveId: run.move.id,
        step: 'verifying',
        table: t.name,
        ranges: { checked: 0, total: cuts.length + 1 },
      });
      await this.#checkRanges(
        run,
        t,
        check,
        Array.from({ length: cuts.length + 1 }, (_, i) => i),
      );
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
    await this.#applyDelta(run, Number.POSITIVE_INFINITY);
    for (const t of run.tables) {
      const check = state.tables.get(t.sourceOid)!;
      await this.#checkRanges(
        run,
        t,
        check,
        [...check.differing].sort((a, b) => a - b),
      );
    }
    await this.#catchUp(run);
    await this.#mapChanges(run);
    // ranges written to during the checks (updates all over the keys, not only new rows at the
    // tail) are checked again while the tenant still writes, a few rounds, so that the freeze is
    // left with the ranges of the last moments rather than most of the table
    for (let round = 0; round < 3; round++) {
      const due = run.tables.map((t) => {
        const check = state.tables.get(t.sourceOid)!;
        return { t, check, ranges: rangesDue(check) };
      });
      if (due.every((d) => d.ranges.length <= 2)) break;
      for (const d of due) if (d.ranges.length > 2) await this.#checkRanges(run, d.t, d.check, d.ranges);
      await this.#catchUp(run);
      await this.#mapChanges(run);
    }
  }

  /** Checks these ranges of a table on both sides (one statement each side, the source first), with a new stamp. */
  async #checkRanges(
    run: Run,
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
  async #mapChanges(run: Run): Promise<void> {
    for (const t of run.tables) {
      const check = run.ranges!.tables.get(t.sourceOid)!;
      const pending = check.pending.splice(0);
      for (let i = 0; i < pending.length; i += this.#batch) {
        const part = pending.slice(i, i + this.#batch);
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
  async #verifyRanges(run: Run): Promise<{ table: string; source: unknown; target: unknown } | undefined> {
    await this.#mapChanges(run);
    for (const t of run.tables) {
      const check = run.ranges!.tables.get(t.sourceOid)!;
      // the whole table decides: instead of the narrower check, or to confirm what it found
      const whole = async (found?: { source: Record<string, unknown>; target: Record<string, unknown> }) => {
        const sums = await this.#wholeSums(run, t, check.textHash);
        if (sums.same) return undefined;
        return found
          ? {
              table: t.name,
              source: { ...found.source, table: sums.source },
              target: { ...found.target, table: sums.target },
            }
          : { table: t.name, source: sums.source, target: sums.target };
      };
      let failed: { table: string; source: unknown; target: unknown } | undefined;
      if (check.differing.size * 2 > check.cuts.length + 1) failed = await whole();
      else {
        // the differing ranges whole (their checks' new stamps put their keys out of the list below)
        const [bad] = await this.#checkRanges(
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
        else if (keys.length > this.#rangeRows * 5) failed = await whole();
        else {
          const sums = await this.#keySums(run, t, keys, check.textHash);
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
  async #keySums(
    run: Run,
    t: MoveTable,
    keys: string[],
    textHash: boolean,
  ): Promise<{ same: boolean; source: TableChecksum; target: TableChecksum }> {
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

  async #wholeSums(
    run: Run,
    t: MoveTable,
    textHash: boolean,
  ): Promise<{ same: boolean; source: TableChecksum; target: TableChecksum }> {
    const copier = run.copiers.get(t.sourceOid)!;
    const [source, target] = await bothSides(
      (text) => Promise.all([copier.checksum(run.source, 'source', text), copier.checksum(run.target, 'target', text)]),
      textHash,
    );
    return {
      same: source.rows === target.rows && source.hash === target.hash,
      source: { rows: source.rows, hash: source.hash },
      target: { rows: target.rows, hash: target.hash },
    };
  }

  async #verifyAll(run: Run): Promise<{ table: string; source: unknown; target: unknown } | undefined> {
    const results = await Promise.all(
      run.tables.map(async (t) => ({ table: t.name, ...(await this.#wholeSums(run, t, false)) })),
    );
    const bad = results.find((r) => !r.same);
    return bad && { table: bad.table, source: bad.source, target: bad.target };
  }

  async #deleteAtTarget(run: Run): Promise<void> {
    for (const t of [...run.tables].reverse()) {
      const copier = run.copiers.get(t.sourceOid)!;
      while ((await copier.deleteSome(run.target, 'target', this.#batch * 4)) > 0);
    }
  }

  // The catalog may have switched before a crash let the step be recorded.
  async #detectSwitch(move: MoveRecord): Promise<MoveRecord> {
    if (!OPEN.includes(move.step)) return move;
    const now = await this.#placements.get(move.tenantId);
    if (sameLocation(now, move.target) && (now.schema ?? null) === (move.target.schema ?? null)) {
      await this.#placements.setLocalState(move.source, move.tenantId, 'moved', now.epoch).catch(() => undefined);
      return this.#record(move, 'switched', { switched_at: new Date() });
    }
    return move;
  }

  async #open(move: MoveRecord, withCapture = true): Promise<Run> {
    const source = this.#placements.ownerPool(move.source);
    const target = this.#placements.ownerPool(move.target);
    const tables = await moveTables(source, this.#schemas(move.source), target, this.#schemas(move.target));
    const logical =
      withCapture && move.capture.mode === 'logical'
        ? await LogicalCapture.open(move, { source, target }, this.#replication)
        : undefined;
    return {
      move,
      source,
      target,
      tables,
      copiers: new Map(tables.map((t) => [t.sourceOid, new RowCopier(t, move.tenantId)])),
      logical,
    };
  }

  #schemas(where: PlacementTarget): string[] {
    return where.schema ? [where.schema] : this.#dataSchemas;
  }

  async #advance(run: Run, step: MoveStep, fields: Record<string, unknown> = {}): Promise<void> {
    run.move = await this.#record(run.move, step, fields);
    await this.#onStep(step, run.move);
  }

  async #record(move: MoveRecord, step: MoveStep, fields: Record<string, unknown> = {}): Promise<MoveRecord> {
    const names = Object.keys(fields);
    const { rows } = await this.#catalog.query(
      `update tenantry.moves set step = $2, updated_at = now()${names.map((n, i) => `, ${n} = $${i + 3}`).join('')} where id = $1 returning ${MOVE_COLUMNS}`,
      [move.id, step, ...names.map((n) => fields[n])],
    );
    return toMoveRecord(rows[0]!);
  }

  // One runner per move at a time, across processes: a session advisory lock, released by a crash
  // too. Its own connection, not one of the catalog pool's: Placements.assign holds one of those.
  async #locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const client = new pg.Client((this.#catalog as pg.Pool & { options: pg.ClientConfig }).options);
    client.on('error', () => undefined);
    await client.connect();
    try {
      // a killed runner's session may take a moment to end: wait a little before calling it busy
      let ok = false;
      for (const deadline = performance.now() + 5000; !ok;) {
        const { rows } = await client.query<{ ok: boolean }>(
          `select pg_try_advisory_lock(hashtextextended('tenantry.move:' || $1, 0)) as ok`,
          [id],
        );
        ok = rows[0]!.ok;
        if (ok || performance.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      if (!ok) throw new MoveError('MOVE_BUSY', 'Another process is running this move', { moveId: id });
      try {
        return await fn();
      } finally {
        await client.query(`select pg_advisory_unlock(hashtextextended('tenantry.move:' || $1, 0))`, [id]);
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

function normalize(target: PlacementTarget): Required<PlacementTarget> {
  if (!target || !['shared', 'schema', 'database'].includes(target.tier))
    throw new InvalidArgumentError('tier must be shared, schema or database', 'tier');
  const schema = target.schema ? validIdentifier(target.schema, 'schema') : null;
  const database = target.database ? validIdentifier(target.database, 'database') : null;
  if ((target.tier === 'schema') !== (schema !== null))
    throw new InvalidArgumentError('the schema tier, and only it, names a schema', 'schema');
  if (target.tier === 'database' && !database)
    throw new InvalidArgumentError('the database tier needs a database', 'database');
  return { tier: target.tier, cluster: target.cluster, database, schema };
}

function sameLocation(a: PlacementTarget | Placement, b: PlacementTarget): boolean {
  return a.cluster === b.cluster && (a.database ?? null) === (b.database ?? null);
}
