import { TenantryError } from '../errors/tenantry-error.js';

/** A key the application's settings schema does not declare. */
export class SettingUnknownError extends TenantryError {
  constructor(readonly key: string) {
    super('SETTING_UNKNOWN', `Unknown setting "${key}"`, { status: 400, details: { key } });
  }
}

/**
 * A value the schema refuses for `key` (nothing was changed). The message names the key and the
 * schema's complaint, never the value (it may be a secret, such as a webhook token).
 */
export class SettingInvalidError extends TenantryError {
  constructor(
    readonly key: string,
    problem: string,
    cause?: unknown,
  ) {
    super('SETTING_INVALID', `Invalid value for setting "${key}": ${problem}`, {
      status: 400,
      details: { key, problem },
      cause,
    });
  }
}

/** A rollback to a change number the tenant's history does not have. */
export class SettingsVersionNotFoundError extends TenantryError {
  constructor(readonly version: number) {
    super('SETTINGS_VERSION_NOT_FOUND', `No settings change ${version} in this tenant's history`, {
      status: 404,
      details: { version },
    });
  }
}

/** A flag the application does not declare. */
export class FlagUnknownError extends TenantryError {
  constructor(readonly flag: string) {
    super('FLAG_UNKNOWN', `Unknown feature flag "${flag}"`, { status: 400, details: { flag } });
  }
}

/** A flag value or rollout the flag's declaration refuses (nothing was changed). */
export class FlagValueInvalidError extends TenantryError {
  constructor(
    readonly flag: string,
    problem: string,
  ) {
    super('FLAG_VALUE_INVALID', `Invalid value for feature flag "${flag}": ${problem}`, {
      status: 400,
      details: { flag, problem },
    });
  }
}
