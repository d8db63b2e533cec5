import { AsyncLocalStorage } from 'node:async_hooks';
import { TenantScopeMissingError } from '../errors/tenantry-error.js';
import { toTenantId } from './tenant-id.js';

/** Anything that names a tenant: its id, or an object with an `id`. */
export type TenantRef = string | { readonly id: string };

export interface Scope {
  readonly tenantId: string | undefined;
  /** The work's AbortSignal (a request's disconnect or deadline), if any: see {@link runWithSignal}. */
  readonly signal?: AbortSignal;
}

const storage = new AsyncLocalStorage<Scope>();
const NO_TENANT: Scope = Object.freeze({ tenantId: undefined });

/** Options of {@link runAs}. */
export interface RunAsOptions {
  /**
   * The work's AbortSignal (a request's disconnect or deadline): Tenantry's pools send none of
   * the work's statements once it aborts and cancel the one running (see {@link runWithSignal}).
   */
  signal?: AbortSignal;
}

/**
 * Runs `fn` with `tenant` as the current tenant. Everything `fn` starts (awaits, timers,
 * promises) sees the same tenant; nothing outside it does. Nested calls replace the tenant
 * for their own extent only. A lazy thenable that `fn` returns (a query builder) is started
 * inside the scope, and a Promise of its value is returned.
 *
 * `runAs` starts a unit of work: it does not inherit the signal of the code around it (background
 * work started lazily inside a request, such as a listener's connection, would otherwise be
 * stopped by that request's disconnect); pass the work's own in `options.signal`.
 *
 * @example
 * await runAs(tenantId, () => pool.query('select * from recordings'));
 * await runAs(tenantId, () => pool.query('select * from recordings'), { signal: disconnectSignal(res) });
 */
export function runAs<T>(tenant: TenantRef, fn: () => T, options?: RunAsOptions): T {
  const tenantId = toTenantId(typeof tenant === 'string' ? tenant : tenant?.id);
  const signal = options?.signal;
  return storage.run(signal ? { tenantId, signal } : { tenantId }, () => startInScope(fn()));
}

/**
 * Runs `fn` with `signal` as the work's AbortSignal, keeping the current tenant. Tenantry's
 * pools honour it: a statement not yet sent when the signal aborts is never sent
 * (REQUEST_ABORTED, or the signal's reason when it is a TenantryError such as
 * DEADLINE_EXCEEDED), and one that is running is cancelled with a PostgreSQL cancel request.
 * Use it inside `runAs` (which starts a unit of work without a signal), or pass the signal to
 * `runAs` directly.
 *
 * @example
 * await runAs(tenantId, () => runWithSignal(AbortSignal.timeout(5000), () => pool.query('select pg_sleep(1)')));
 */
export function runWithSignal<T>(signal: AbortSignal, fn: () => T): T {
  const tenantId = storage.getStore()?.tenantId;
  return storage.run({ tenantId, signal }, () => startInScope(fn()));
}

/**
 * The current tenant and signal, in one look-up of the async context (each costs a walk to the
 * current async resource): for the pools' hot path. Not exported from the package.
 */
export function currentScope(): Scope | undefined {
  return storage.getStore();
}

/** The AbortSignal of the current work (see {@link runWithSignal}), or `undefined`. */
export function currentSignal(): AbortSignal | undefined {
  return storage.getStore()?.signal;
}

// Query builders (Drizzle's, for one) are thenables that start only when awaited: start them
// here, inside the scope, or the caller's await would run them without it. The caller gets a
// Promise of the same value (typed as T: awaiting it gives what awaiting the builder would).
function startInScope<T>(value: T): T {
  if (value instanceof Promise || value === null || (typeof value !== 'object' && typeof value !== 'function'))
    return value;
  const then = (value as { then?: unknown }).then;
  if (typeof then !== 'function') return value;
  return new Promise((resolve, reject) => then.call(value, resolve, reject)) as T;
}

/**
 * Runs `fn` with no tenant in context, e.g. inside a tenant's work to call a tenant-less API. Part
 * of the same work: it keeps the work's signal.
 */
export function runWithoutTenant<T>(fn: () => T): T {
  const signal = storage.getStore()?.signal;
  return storage.run(signal ? { tenantId: undefined, signal } : NO_TENANT, () => startInScope(fn()));
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
