import { TenantryError } from '../errors/tenantry-error.js';

/**
 * A brand field the rules refuse (nothing was changed). Names the field (`displayName`,
 * `colors.text`, …) and the rule, never the value.
 */
export class BrandInvalidError extends TenantryError {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super('BRAND_INVALID', `Invalid brand field "${field}": ${problem}`, { status: 400, details: { field, problem } });
  }
}

/** A logo that is not a PNG, JPEG or WebP image within the size limits (nothing was changed). */
export class BrandLogoInvalidError extends TenantryError {
  constructor(problem: string) {
    super('BRAND_LOGO_INVALID', `Invalid logo: ${problem}`, { status: 400, details: { field: 'logo', problem } });
  }
}

/** A rollback to a change number the tenant's brand history does not have. */
export class BrandVersionNotFoundError extends TenantryError {
  constructor(readonly version: number) {
    super('BRAND_VERSION_NOT_FOUND', `No brand change ${version} in this tenant's history`, {
      status: 404,
      details: { version },
    });
  }
}
