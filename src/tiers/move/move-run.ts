import type pg from 'pg';
import type { PlacementTarget, Placements } from '../placements.js';
import { LogicalCapture, type CaptureMode, type ReplicationOptions } from './logical-capture.js';
import type { MoveJournal } from './move-journal.js';
import type { MoveProgress, MoveRecord, MoveStep } from './move-record.js';
import { moveTables, type MoveTable } from './move-tables.js';
import type { RangeChecks } from './range-verifier.js';
import { RowCopier } from './row-copier.js';

/** The steps before the switch: a move there can continue, or roll back. */
export const OPEN_STEPS: readonly MoveStep[] = ['created', 'prepared', 'capturing', 'copied', 'freezing'];

/** What every part of a move shares: TenantMover's options, resolved, and its journal. */
export interface MoveContext {
  placements: Placements;
  catalog: pg.Pool;
  journal: MoveJournal;
  dataSchemas: string[];
  batch: number;
  freezeBelow: number;
  graceMs: number;
  progress: (p: MoveProgress) => void;
  capture: CaptureMode;
  replication: ReplicationOptions | undefined;
  verify: 'ranges' | 'full';
  rangeRows: number;
}

/** A move being run by this process: its record, both sides' pools, the tables and their copiers. */
export interface MoveRun {
  move: MoveRecord;
  source: pg.Pool;
  target: pg.Pool;
  tables: MoveTable[];
  copiers: Map<number, RowCopier>;
  /** The move's logical replication, when its capture is `logical`. */
  logical?: LogicalCapture;
  /** `verify: 'ranges'`: the range checks per source table oid and the stamp counter (this process only). */
  ranges?: RangeChecks;
}

/** The schemas of a placement's tenant tables: its own, or the shared tier's data schemas. */
export function schemasOf(ctx: MoveContext, where: PlacementTarget): string[] {
  return where.schema ? [where.schema] : ctx.dataSchemas;
}

/** Opens a run of `move`: pools, paired tables, copiers, and its logical replication (unless `withCapture` is false). */
export async function openMoveRun(ctx: MoveContext, move: MoveRecord, withCapture = true): Promise<MoveRun> {
  const source = ctx.placements.ownerPool(move.source);
  const target = ctx.placements.ownerPool(move.target);
  const tables = await moveTables(source, schemasOf(ctx, move.source), target, schemasOf(ctx, move.target));
  const logical =
    withCapture && move.capture.mode === 'logical'
      ? await LogicalCapture.open(move, { source, target }, ctx.replication)
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
