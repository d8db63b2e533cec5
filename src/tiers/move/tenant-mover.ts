import type pg from 'pg';
import { randomUUID } from 'node:crypto';
import { toTenantId } from '../../context/tenant-id.js';
import { InvalidArgumentError } from '../../errors/tenantry-error.js';
import { validIdentifier } from '../../policy/identifiers.js';
import type { PlacementTarget, Placements } from '../placements.js';
import { copyLogical, copyTables } from './bulk-copy.js';
import { installCaptureTriggers } from './capture-triggers.js';
import {
  LogicalCapture,
  logicalNames,
  refuseLogicalPlacements,
  type CaptureMode,
  type MoveCapture,
  type ReplicationOptions,
} from './logical-capture.js';
import { MoveError } from './move-error.js';
import { MoveJournal } from './move-journal.js';
import { normalizeTarget, sameLocation, samePlacement } from './move-location.js';
import { MOVE_COLUMNS, toMoveRecord, type MoveProgress, type MoveRecord, type MoveStep } from './move-record.js';
import { deleteAtTarget, rollbackMove } from './move-rollback.js';
import { OPEN_STEPS, openMoveRun, schemasOf, type MoveContext, type MoveRun } from './move-run.js';
import { finishMove, switchRoute } from './move-switch.js';
import { moveTables } from './move-tables.js';
import { findSharedTarget } from '../target-guard.js';
import { cleanupSource } from './move-cleanup.js';
import { telemetrySpan, type Annotate } from '../../telemetry/telemetry-hooks.js';

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
  readonly #ctx: MoveContext;

  constructor(options: TenantMoverOptions) {
    if (options.capture !== undefined && options.capture !== 'triggers' && options.capture !== 'logical')
      throw new InvalidArgumentError("capture must be 'triggers' or 'logical'", 'capture');
    if (options.verify !== undefined && options.verify !== 'ranges' && options.verify !== 'full')
      throw new InvalidArgumentError("verify must be 'ranges' or 'full'", 'verify');
    if (
      options.verifyRangeRows !== undefined &&
      (!Number.isInteger(options.verifyRangeRows) || options.verifyRangeRows < 1)
    )
      throw new InvalidArgumentError('verifyRangeRows must be a positive integer', 'verifyRangeRows');
    this.#ctx = {
      placements: options.placements,
      catalog: options.catalog,
      journal: new MoveJournal(options.catalog, options.onStep ?? (() => undefined)),
      dataSchemas: (options.dataSchemas ?? ['public']).map((s) => validIdentifier(s, 'schema')),
      batch: options.batchSize ?? 5000,
      freezeBelow: options.freezeBelow ?? 500,
      graceMs: options.graceMs ?? 3_600_000,
      progress: options.onProgress ?? (() => undefined),
      capture: options.capture ?? 'triggers',
      replication: options.replication,
      verify: options.verify ?? 'ranges',
      rangeRows: options.verifyRangeRows ?? 20_000,
    };
  }

  /** Starts a move and runs it to the end (`done`: switched, source kept until `cleanup`). */
  async move(tenant: string, target: PlacementTarget): Promise<MoveRecord> {
    const move = await this.start(tenant, target);
    return this.run(move.id);
  }

  /** Records a move (or returns the tenant's open move to the same target) without running it. */
  async start(tenant: string, target: PlacementTarget): Promise<MoveRecord> {
    const tenantId = toTenantId(tenant);
    const to = normalizeTarget(target);
    const from = await this.#ctx.placements.get(tenantId);
    const open = await this.openMove(tenantId);
    if (open) {
      if (sameLocation(open.target, to) && open.target.schema === to.schema) return open;
      throw new MoveError('MOVE_BUSY', 'The tenant has another move open: resume or roll it back first', {
        moveId: open.id,
      });
    }
    if (samePlacement(from, to)) throw new MoveError('MOVE_SAME_PLACEMENT', 'The tenant already lives there');
    await this.checkTarget(tenantId, to);
    const source = {
      tier: from.tier,
      cluster: from.cluster,
      database: from.database,
      schema: from.schema,
      epoch: from.epoch,
    };
    const id = randomUUID();
    let capture: MoveCapture = { mode: 'triggers' };
    if (this.#ctx.capture === 'logical') {
      capture = { mode: 'logical', ...logicalNames(id) };
      // refused before anything is recorded: placements, connections, versions, replica identities
      refuseLogicalPlacements(source, to, this.#ctx.replication);
      const sourcePool = this.#ctx.placements.ownerPool(source);
      const targetPool = this.#ctx.placements.ownerPool(to);
      const logical = await LogicalCapture.open(
        { id, tenantId, source, target: to },
        { source: sourcePool, target: targetPool },
        this.#ctx.replication,
      );
      try {
        await logical.check(
          await moveTables(sourcePool, schemasOf(this.#ctx, source), targetPool, schemasOf(this.#ctx, to)),
        );
      } finally {
        await logical.end();
      }
    }
    // a trigger move leaves the column null (read as triggers): it runs on a catalog without it
    const { rows } = await this.#ctx.catalog.query(
      capture.mode === 'logical'
        ? `insert into tenantry.moves (id, tenant_id, source, target, capture) values ($1, $2, $3, $4, $5) returning ${MOVE_COLUMNS}`
        : `insert into tenantry.moves (id, tenant_id, source, target) values ($1, $2, $3, $4) returning ${MOVE_COLUMNS}`,
      capture.mode === 'logical' ? [id, tenantId, source, to, capture] : [id, tenantId, source, to],
    );
    return toMoveRecord(rows[0]!);
  }

  /**
   * Refuses (MOVE_TARGET_TAKEN, before anything changes) a target that is not the tenant's alone:
   * the home database, a cluster's shared database, a data schema (`public`…), a system schema, or
   * a schema or database holding another tenant. `start` asks it; a caller that prepares the
   * target first (creates the schema or database) asks it before that.
   */
  async checkTarget(tenant: string, target: PlacementTarget): Promise<void> {
    const tenantId = toTenantId(tenant);
    const to = normalizeTarget(target);
    const shared = await findSharedTarget({
      placements: this.#ctx.placements,
      catalog: this.#ctx.catalog,
      tenantId,
      target: to,
      dataSchemas: this.#ctx.dataSchemas,
    });
    if (shared)
      throw new MoveError('MOVE_TARGET_TAKEN', `${shared.message}: move the tenant to a place of its own`, {
        details: { cluster: to.cluster, schema: to.schema, database: to.database, reason: shared.reason },
      });
  }

  /** The move record. */
  async get(id: string): Promise<MoveRecord> {
    return this.#ctx.journal.get(id);
  }

  /** The tenant's move that has not switched or rolled back yet, if any. */
  async openMove(tenant: string): Promise<MoveRecord | undefined> {
    return this.#ctx.journal.openMove(tenant);
  }

  /** Continues a move from its last recorded step to `done` (or finishes a rollback in progress). */
  async run(id: string): Promise<MoveRecord> {
    return telemetrySpan('tenantry.move', { 'tenantry.move.id': id }, (annotate) => this.#run(id, annotate));
  }

  async #run(id: string, annotate: Annotate): Promise<MoveRecord> {
    const ctx = this.#ctx;
    return ctx.journal.locked(id, async () => {
      let move = await this.get(id);
      annotate(moveAttributes(move));
      if (move.step === 'rolling_back') return rollbackMove(ctx, move);
      move = await this.#detectSwitch(move);
      if (!OPEN_STEPS.includes(move.step) && move.step !== 'switched') return move;
      let run: MoveRun | undefined;
      try {
        run = await openMoveRun(ctx, move);
        if (run.move.step === 'created') await this.#prepare(run);
        if (run.move.step === 'prepared') await this.#startCapture(run);
        if (run.move.step === 'capturing') await (run.logical ? copyLogical(ctx, run) : copyTables(ctx, run));
        if (run.move.step === 'copied' || run.move.step === 'freezing') await switchRoute(ctx, run);
        if (run.move.step === 'switched') await finishMove(ctx, run);
        annotate({ 'tenantry.move.step': run.move.step });
        return run.move;
      } catch (error) {
        await ctx.journal.recordError(id, error);
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
    return telemetrySpan('tenantry.move.rollback', { 'tenantry.move.id': id }, (annotate) =>
      this.#ctx.journal.locked(id, async () => {
        const move = await this.get(id);
        annotate(moveAttributes(move));
        return rollbackMove(this.#ctx, await this.#detectSwitch(move));
      }),
    );
  }

  /**
   * Deletes the tenant's rows at the source of a finished move, once its grace period is over
   * (or at once with `force`). Never before the switch.
   */
  async cleanup(id: string, options: { force?: boolean } = {}): Promise<MoveRecord> {
    return telemetrySpan('tenantry.move.cleanup', { 'tenantry.move.id': id }, (annotate) =>
      this.#ctx.journal.locked(id, async () => {
        const move = await this.get(id);
        annotate(moveAttributes(move));
        return cleanupSource(this.#ctx, move, options);
      }),
    );
  }

  async #prepare(run: MoveRun): Promise<void> {
    const ctx = this.#ctx;
    const { move } = run;
    const now = await ctx.placements.get(move.tenantId);
    if (!samePlacement(now, move.source) || now.epoch !== move.source.epoch) {
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
      await ctx.placements.setLocalState(move.target, move.tenantId, 'moved', 0);
    // the tenant does not live at the target: any of its rows there are leftovers of an earlier move
    await deleteAtTarget(ctx, run);
    await ctx.catalog.query(
      `update tenantry.moves set step = 'cleaned', finished_at = now(), updated_at = now()
        where tenant_id = $1 and step = 'done' and source->>'cluster' = $2 and coalesce(source->>'database', '') = $3 and coalesce(source->>'schema', '') = $4`,
      [move.tenantId, move.target.cluster, move.target.database ?? '', move.target.schema ?? ''],
    );
    run.move = await ctx.journal.advance(run.move, 'prepared');
  }

  async #startCapture(run: MoveRun): Promise<void> {
    const ctx = this.#ctx;
    if (run.logical) {
      await run.logical.check(run.tables);
      await run.logical.install(run.tables);
    } else {
      await installCaptureTriggers(run.source, run.move.id, run.move.tenantId, run.tables);
    }
    run.move = await ctx.journal.advance(run.move, 'capturing', { cursor: {}, tables: run.tables.map((t) => t.name) });
  }

  // The catalog may have switched before a crash let the step be recorded.
  async #detectSwitch(move: MoveRecord): Promise<MoveRecord> {
    if (!OPEN_STEPS.includes(move.step)) return move;
    const now = await this.#ctx.placements.get(move.tenantId);
    if (samePlacement(now, move.target)) {
      await this.#ctx.placements.setLocalState(move.source, move.tenantId, 'moved', now.epoch).catch(() => undefined);
      return this.#ctx.journal.record(move, 'switched', { switched_at: new Date() });
    }
    return move;
  }
}

/** A move's span attributes: its tenant, tiers and step (ids and tier names, never schema or database names). */
function moveAttributes(move: MoveRecord): Record<string, string> {
  return {
    'tenant.id': move.tenantId,
    'tenantry.move.from_tier': move.source.tier,
    'tenantry.move.to_tier': move.target.tier,
    'tenantry.move.step': move.step,
  };
}
