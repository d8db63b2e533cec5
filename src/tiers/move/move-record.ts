import type { PlacementTarget } from '../placements.js';
import type { MoveCapture } from './logical-capture.js';

/** The steps of a move, in order; `rolling_back`/`rolled_back` leave the line before `switched`. */
export type MoveStep =
  | 'created'
  | 'prepared'
  | 'capturing'
  | 'copied'
  | 'freezing'
  | 'switched'
  | 'done'
  | 'cleaned'
  | 'rolling_back'
  | 'rolled_back';

/** Where the bulk copy has got to: the table being copied and the last primary key written. */
export interface MoveCursor {
  table?: string;
  after?: Record<string, unknown> | null;
  copied?: Record<string, number>;
}

/** A row of `tenantry.moves`. */
export interface MoveRecord {
  id: string;
  tenantId: string;
  source: PlacementTarget & { epoch: number };
  target: PlacementTarget;
  step: MoveStep;
  cursor: MoveCursor;
  error: string | null;
  freezeMs: number | null;
  cleanupAfter: Date | null;
  createdAt: Date;
  updatedAt: Date;
  switchedAt: Date | null;
  finishedAt: Date | null;
  /**
   * The tables the move captures and copies (pinned ones are not), recorded with `capturing`;
   * `cleanup` deletes from these only. Null for a move recorded before this field existed.
   */
  tables: string[] | null;
  /**
   * How the move captures changes, chosen when it starts (`triggers` for a move recorded before
   * this field existed), with the names of its publication, slot and subscription when `logical`.
   */
  capture: MoveCapture;
}

/** What `onProgress` receives while a move runs. */
export interface MoveProgress {
  moveId: string;
  step: MoveStep | 'copying' | 'catching_up' | 'verifying' | 'cleaning';
  table?: string;
  copied?: number;
  total?: number;
  /** Changes captured at the source and not yet applied at the target. */
  deltaBacklog?: number;
  /** While verifying per key range before the freeze: ranges of the table checked so far, and in all. */
  ranges?: { checked: number; total: number };
}

// `capture` read defensively: a home catalog installed before the column existed still runs trigger moves
export const MOVE_COLUMNS = `id, tenant_id, source, target, step, cursor, error, freeze_ms, cleanup_after, created_at, updated_at, switched_at, finished_at, tables, to_jsonb(moves) -> 'capture' as capture`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a row as node-postgres returns it
export function toMoveRecord(r: Record<string, any>): MoveRecord {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    source: r.source,
    target: r.target,
    step: r.step,
    cursor: r.cursor ?? {},
    error: r.error,
    freezeMs: r.freeze_ms,
    cleanupAfter: r.cleanup_after,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    switchedAt: r.switched_at,
    finishedAt: r.finished_at,
    tables: r.tables ?? null,
    capture: r.capture ?? { mode: 'triggers' },
  };
}
