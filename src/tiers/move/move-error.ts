/** Stable codes of the errors a move raises. */
export type MoveErrorCode =
  | 'MOVE_NOT_FOUND'
  | 'MOVE_BUSY'
  | 'MOVE_SAME_PLACEMENT'
  | 'MOVE_TARGET_NOT_READY'
  /** The target is the catalog, a shared database or data schema, or holds another tenant: never one tenant's. */
  | 'MOVE_TARGET_TAKEN'
  | 'MOVE_VERIFICATION_FAILED'
  | 'MOVE_ALREADY_SWITCHED'
  | 'MOVE_NOT_FINISHED'
  | 'MOVE_GRACE_PERIOD'
  /** `capture: 'logical'` cannot carry this move (schema tier, same database, PG < 15, replica identity, no replication connection). */
  | 'MOVE_CAPTURE_UNSUPPORTED'
  /** The logical replication of a move failed or did not catch up in time (see the target server's log). */
  | 'MOVE_REPLICATION_FAILED';

/**
 * An online move refused or failed a step. Branch on `code`; `moveId` names the record in
 * `tenantry.moves` to resume or roll back.
 */
export class MoveError extends Error {
  readonly code: MoveErrorCode;
  readonly moveId: string | undefined;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: MoveErrorCode,
    message: string,
    options: { moveId?: string; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.moveId = options.moveId;
    this.details = Object.freeze({ ...options.details });
  }
}
