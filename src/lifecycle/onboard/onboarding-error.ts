import { TenantryError } from '../../errors/tenantry-error.js';

/** Codes of {@link OnboardingError}. */
export type OnboardingErrorCode =
  /** The slug is being (or was) onboarded with other inputs (name, plan or owner): nothing was changed. */
  | 'ONBOARDING_CONFLICT'
  /** Another process is onboarding the same slug right now and did not finish within the wait. */
  | 'ONBOARDING_BUSY'
  /**
   * A step failed: the steps before it are recorded, nothing after it ran. `details.step` names
   * it, `details.cause` the underlying code (a SQLSTATE, a Tenantry code); run the onboarding again.
   */
  | 'ONBOARDING_STEP_FAILED'
  /**
   * The tenant goes to the schema or database tier but the onboarding has no migrations of
   * `tenant/` scope to create its tables there: nothing was activated (a new tenant is not
   * created; a resumed one stays `provisioning`). Run it again with the migrations.
   */
  | 'ONBOARDING_NO_MIGRATIONS';

/**
 * An onboarding refused to start (conflict, busy) or stopped at a step: stable `code`, the slug
 * and step in `details`. Never carries secrets (no invitation code, no connection string).
 */
export class OnboardingError extends TenantryError {
  declare readonly code: OnboardingErrorCode;

  constructor(
    code: OnboardingErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(code, message, { status: code === 'ONBOARDING_STEP_FAILED' ? 500 : 409, ...options });
  }
}
