import { expect } from 'vitest';
import { SqlState } from '../errors/sqlstate.js';
import { errorCode } from './attempt-result.js';

type MatcherResult = { pass: boolean; message: () => string; actual?: unknown; expected?: unknown };

/** Tenantry's matchers, typed for vitest's `expect` (including `.not`, `.rejects` and `.resolves`). */
export interface TenantryMatchers<R = unknown> {
  /**
   * The error (or what the function throws) has code `TENANT_SCOPE_MISSING`: work with no tenant
   * in context, or a statement the query guard refused.
   *
   * @example
   * await expect(pool.query('select * from notes')).rejects.toThrowTenantScopeMissing();
   * expect(() => currentTenant()).toThrowTenantScopeMissing();
   */
  toThrowTenantScopeMissing(): R;
  /**
   * The error has code `CROSS_TENANT_ROW` (the pool's result check), optionally for this table
   * (`schema.table`) and column.
   */
  toThrowCrossTenantRow(expected?: { table?: string; column?: string }): R;
  /**
   * PostgreSQL refused it: an error with SQLSTATE 42501 (a row policy's WITH CHECK, a missing
   * grant), or a query result with no rows and a row count of 0 (the policy filtered every row).
   *
   * @example
   * await expect(runAs(b, () => pool.query('insert into notes (tenant_id) values ($1)', [a]))).rejects.toBeRefusedByRls();
   * await expect(runAs(b, () => pool.query('delete from notes where id = $1', [aId]))).resolves.toBeRefusedByRls();
   */
  toBeRefusedByRls(): R;
  /** The error carries this code: Tenantry's (`TENANT_NOT_FOUND`…) or a SQLSTATE (`23505`…). */
  toHaveTenantryCode(code: string): R;
}

declare module 'vitest' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-explicit-any
  interface Matchers<T = any> extends TenantryMatchers<T> {}
}

type Settled = { threw: boolean; error?: unknown; value?: unknown };

/**
 * Settles what the matcher received: a rejection reason (`.rejects`), a value (`.resolves`), or a
 * function, called here. Synchronous unless the function returns a promise, so that
 * `expect(() => …).toThrowTenantScopeMissing()` needs no `await`.
 */
function settle<T>(received: unknown, then: (settled: Settled) => T): T | Promise<T> {
  if (typeof received !== 'function')
    return then(received instanceof Error ? { threw: true, error: received } : { threw: false, value: received });
  let value: unknown;
  try {
    value = (received as () => unknown)();
  } catch (error) {
    return then({ threw: true, error });
  }
  if (value instanceof Promise)
    return value.then(
      (v) => then({ threw: false, value: v }),
      (error: unknown) => then({ threw: true, error }),
    );
  return then({ threw: false, value });
}

function describe(error: unknown): string {
  const code = errorCode(error);
  const name = error instanceof Error ? error.name : typeof error;
  return code ? `${name} with code ${code}` : name;
}

function codeMatcher(
  received: unknown,
  code: string,
  extra?: (error: unknown) => string | undefined,
): MatcherResult | Promise<MatcherResult> {
  return settle(received, (settled): MatcherResult => {
    if (!settled.threw)
      return { pass: false, message: () => `expected an error with code ${code}, but nothing was thrown` };
    const actual = errorCode(settled.error);
    const mismatch = actual === code ? extra?.(settled.error) : undefined;
    const pass = actual === code && mismatch === undefined;
    return {
      pass,
      actual,
      expected: code,
      message: () =>
        pass
          ? `expected an error other than ${code}, got ${describe(settled.error)}`
          : mismatch
            ? `expected ${code} ${mismatch}`
            : `expected an error with code ${code}, got ${describe(settled.error)}`,
    };
  });
}

/** The matcher functions, for `expect.extend` (see {@link installTenantryMatchers}). */
export const tenantryMatchers = {
  toThrowTenantScopeMissing(received: unknown) {
    return codeMatcher(received, 'TENANT_SCOPE_MISSING');
  },
  toThrowCrossTenantRow(received: unknown, expected: { table?: string; column?: string } = {}) {
    return codeMatcher(received, 'CROSS_TENANT_ROW', (error) => {
      const details = (error as { details?: { table?: string; column?: string } }).details ?? {};
      if (expected.table !== undefined && details.table !== expected.table)
        return `for table ${expected.table}, got table ${details.table ?? '(unnamed)'}`;
      if (expected.column !== undefined && details.column !== expected.column)
        return `for column ${expected.column}, got column ${details.column}`;
      return undefined;
    });
  },
  toBeRefusedByRls(received: unknown) {
    return settle(received, (settled): MatcherResult => {
      if (settled.threw) {
        const pass = errorCode(settled.error) === SqlState.insufficientPrivilege;
        return {
          pass,
          message: () =>
            pass
              ? 'expected the statement not to be refused, but it failed with 42501'
              : `expected a refusal (42501 or no rows), got ${describe(settled.error)}`,
        };
      }
      const result = settled.value as { rows?: unknown[]; rowCount?: number | null } | undefined;
      if (!result || !Array.isArray(result.rows))
        return { pass: false, message: () => 'expected a query result or an error with SQLSTATE 42501' };
      const pass = result.rows.length === 0 && (result.rowCount ?? 0) === 0;
      return {
        pass,
        message: () =>
          pass
            ? 'expected rows, but the statement reached none'
            : `expected a refusal (42501 or no rows), but it reached ${result.rowCount ?? result.rows?.length} row(s)`,
      };
    });
  },
  toHaveTenantryCode(received: unknown, code: string) {
    return codeMatcher(received, code);
  },
};

let installed = false;

/**
 * Registers Tenantry's matchers with vitest's `expect` (idempotent). Call it in a setup file,
 * or at the top of a test file. `describeTenantIsolation` does not need it.
 *
 * @example
 * // vitest.setup.ts
 * import { installTenantryMatchers } from 'tenantry/testing';
 * installTenantryMatchers();
 */
export function installTenantryMatchers(): void {
  if (installed) return;
  expect.extend(tenantryMatchers);
  installed = true;
}
