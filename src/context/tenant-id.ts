import { InvalidTenantIdError } from '../errors/tenantry-error.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True when `value` is a UUID (any case). */
export function isTenantId(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value.toLowerCase());
}

/** True when `value` is a tenant id in its canonical (lower-case) form, the text holds and routes are keyed by. */
export function isCanonicalTenantId(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

/** Validates a tenant id and returns its canonical lower-case form; throws `INVALID_TENANT_ID`. */
export function toTenantId(value: unknown): string {
  // isTenantId's check, lower-casing once (runAs calls this for every unit of work)
  const lower = typeof value === 'string' ? value.toLowerCase() : undefined;
  if (lower === undefined || !UUID.test(lower)) throw new InvalidTenantIdError();
  return lower;
}
