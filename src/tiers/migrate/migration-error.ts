/** Codes of {@link MigrationError}. */
export type MigrationErrorCode =
  /** A migration file is misnamed, misplaced, or two files share a version. */
  | 'MIGRATION_FILE_INVALID'
  /** An applied migration's file changed (or its name did): add a new migration instead. */
  | 'MIGRATION_CHANGED'
  /** A target has applied a migration the directory no longer has (an older checkout?). */
  | 'MIGRATION_UNKNOWN'
  /**
   * `migrateLocation`: a target failed (rolled back, recorded in `tenantry.migration_failures`);
   * `details`: `target`, `migration` (null when none was running), `version`, `sqlstate`.
   */
  | 'MIGRATION_FAILED';

/**
 * A migration run refused to start (or a target refused to go on, or failed: `MIGRATION_FAILED`,
 * from `migrateLocation`): stable `code`, the target and migration concerned in `details`.
 * Nothing was applied anywhere when `migrateEverywhere` throws it.
 */
export class MigrationError extends Error {
  readonly code: MigrationErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: MigrationErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'MigrationError';
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}
