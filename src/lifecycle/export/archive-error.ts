import { TenantryError, type TenantryErrorCode } from '../../errors/tenantry-error.js';

/** Codes of {@link ArchiveError}: what is wrong with an archive, or why an import was refused. */
export type ArchiveErrorCode = Extract<TenantryErrorCode, `ARCHIVE_${string}` | `IMPORT_${string}`>;

const STATUS: Record<ArchiveErrorCode, number> = {
  ARCHIVE_CORRUPT: 400,
  ARCHIVE_TRUNCATED: 400,
  ARCHIVE_VERSION_UNSUPPORTED: 400,
  ARCHIVE_TABLE_MISMATCH: 400,
  ARCHIVE_UNSIGNED: 400,
  ARCHIVE_SIGNATURE_INVALID: 400,
  IMPORT_TENANT_EXISTS: 409,
  IMPORT_TENANT_ACTIVE: 409,
  IMPORT_REPLACE_UNSUPPORTED: 409,
  IMPORT_TARGET_TAKEN: 409,
  IMPORT_TARGET_NOT_INSTALLED: 409,
  IMPORT_SCHEMA_MISMATCH: 409,
  IMPORT_VERSION_MISMATCH: 409,
  IMPORT_CONFLICT: 409,
  IMPORT_REFERENCE_MISSING: 409,
  IMPORT_VERIFICATION_FAILED: 500,
  IMPORT_BUSY: 409,
};

/**
 * A tenant archive that cannot be read (corrupt, truncated, of another format version, a table
 * whose rows do not match the manifest), or an import that was refused or failed. Whenever an
 * import throws it, nothing of the archive is visible: the tenant is not in the catalog (or, with
 * `replace`, still holds what it held). `details` name tables and columns, never row data.
 */
export class ArchiveError extends TenantryError {
  declare readonly code: ArchiveErrorCode;

  constructor(
    code: ArchiveErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(code, message, { status: STATUS[code], ...options });
  }
}
