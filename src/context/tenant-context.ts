import { AsyncLocalStorage } from 'node:async_hooks';
import { TenantScopeMissingError } from '../errors/tenantry-error.js';
import { toTenantId } from './tenant-id.js';

/** Anything that names a tenant: its id, or an object with an `id`. */
export type TenantRef = string | { readonly id: string };

interface Scope {
  readonly tenantId: string | undefined;
}

const storage = new AsyncLocalStorage<Scope>();
const NO_TENANT: Scope = Object.freeze({ tenantId: undefined });

/**
 * Runs `fn` with `tenant` as the current tenant. Everything `fn` starts (awaits, timers,
 * promises) sees the same tenant; nothing outside it does. Nested calls replace the tenant
 * for their own extent only.
 *
 * @example
 * await runAs(tenantId, () => pool.query('select * from recordings'));
 */
export function runAs<T>(tenant: TenantRef, fn: () => T): T {
  const tenantId = toTenantId(typeof tenant === 'string' ? tenant : tenant?.id);
  return storage.run({ tenantId }, fn);
}

/** Runs `fn` with no tenant in context, e.g. inside a tenant's work to call a tenant-less API. */
export function runWithoutTenant<T>(fn: () => T): T {
  return storage.run(NO_TENANT, fn);
}

/** The current tenant's id; throws `TENANT_SCOPE_MISSING` when there is none. */
export function currentTenant(): string {
  const tenantId = storage.getStore()?.tenantId;
  if (tenantId === undefined) throw new TenantScopeMissingError();
  return tenantId;
}

/** The current tenant's id, or `undefined` when there is none. */
export function tryCurrentTenant(): string | undefined {
  return storage.getStore()?.tenantId;
}
