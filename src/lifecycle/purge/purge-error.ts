import { TenantryError, type TenantryErrorCode } from '../../errors/tenantry-error.js';

/** Codes a purge raises (a subset of {@link TenantryErrorCode}). */
export type PurgeErrorCode = Extract<
  TenantryErrorCode,
  | 'TENANT_NOT_DELETED'
  | 'TENANT_PURGING'
  | 'PURGE_RETENTION'
  | 'PURGE_CONFIRMATION_REQUIRED'
  | 'PURGE_UNACCOUNTED_TABLES'
  | 'PURGE_BUSY'
  | 'PURGE_NOT_READY'
  | 'PURGE_INCOMPLETE'
  | 'PURGE_REPORT_NOT_FOUND'
  | 'PURGE_REPORT_INVALID'
  | 'PURGE_TARGET_SHARED'
  | 'PURGE_STEP_FAILED'
>;

const STATUS: Record<PurgeErrorCode, number> = {
  TENANT_NOT_DELETED: 409,
  TENANT_PURGING: 409,
  PURGE_RETENTION: 409,
  PURGE_CONFIRMATION_REQUIRED: 400,
  PURGE_UNACCOUNTED_TABLES: 409,
  PURGE_BUSY: 409,
  PURGE_NOT_READY: 409,
  PURGE_INCOMPLETE: 500,
  PURGE_REPORT_NOT_FOUND: 404,
  PURGE_REPORT_INVALID: 422,
  PURGE_TARGET_SHARED: 409,
  PURGE_STEP_FAILED: 500,
};

/**
 * A purge (or a restore racing one) refused or failed. Branch on `code`; `details` names tables,
 * dates and counts of the purged tenant only, never another tenant's data.
 */
export class PurgeError extends TenantryError {
  constructor(
    code: PurgeErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(code, message, { status: STATUS[code], ...options });
  }
}
