import { InvalidArgumentError } from '../errors/tenantry-error.js';
import type { ResolvedTable } from './table-spec.js';

/** An expected status: one code, a list, or `'2xx'` (any success). */
export type StatusExpectation = number | readonly number[] | '2xx';

/**
 * One route under test. With a path parameter (`:id`, `:userId`…; the first one counts), the
 * attempts fill it with tenant A's ids (and guessed neighbours) of `table`; without, the request
 * is sent as it is (a list or a create).
 *
 * @example
 * { method: 'PATCH', path: '/recordings/:id', table: 'recordings', body: { title: 'pwned' } }
 */
export interface RouteSpec {
  method: string;
  path: string;
  /** The table (its spec's `table`) whose tenant-A rows fill the parameter. Default: the suite's only table. */
  table?: string;
  /** The id column that fills the parameter. Default the table's first id column. */
  idColumn?: string;
  /** JSON body. */
  body?: unknown;
  /** What tenant B gets. Default 404 with a parameter (exactly like an id that does not exist), `'2xx'` without. */
  crossTenant?: StatusExpectation;
  /** What a request without credentials gets. Default 401. */
  noTenant?: StatusExpectation;
  /**
   * Tenant B's answer for A's row must equal the answer for an id that does not exist (UUIDs
   * masked), so it cannot tell the row exists. Default true; turn off for answers that carry a
   * timestamp or a request id.
   */
  sameAsMissing?: boolean;
  /**
   * What tenant A gets for its own row (a fresh one for methods other than GET/HEAD). Default
   * `'2xx'`. `false` skips it, which is not advised: a mistyped path answers 404 to everyone.
   */
  control?: StatusExpectation | false;
}

/** A route spec checked against the suite's tables. */
export interface ResolvedRoute {
  spec: RouteSpec;
  name: string;
  method: string;
  hasId: boolean;
  /** The parameter's `:name` in the path. */
  param: string | undefined;
  table: ResolvedTable | undefined;
  idColumn: string | undefined;
  crossTenant: StatusExpectation;
  noTenant: StatusExpectation;
  control: StatusExpectation | false;
  sameAsMissing: boolean;
}

/** Validates a route against the suite's tables, when the suite is declared. */
export function resolveRoute(spec: RouteSpec, tables: readonly ResolvedTable[]): ResolvedRoute {
  const method = spec.method.toUpperCase();
  const name = `${method} ${spec.path}`;
  const param = /\/(:[A-Za-z_][A-Za-z0-9_]*)(?=\/|$|\?)/.exec(spec.path)?.[1];
  const hasId = param !== undefined;
  let table: ResolvedTable | undefined;
  if (spec.table !== undefined) {
    table = tables.find((t) => t.name === spec.table);
    if (!table) throw new InvalidArgumentError(`route ${name}: no table spec named ${spec.table}`, 'table');
  } else if (tables.length === 1) table = tables[0];
  if (hasId && !table) throw new InvalidArgumentError(`route ${name}: name the table whose ids fill ${param}`, 'table');
  const idColumn = table ? (spec.idColumn ?? table.idColumns[0]) : undefined;
  if (table && idColumn && !table.idColumns.includes(idColumn))
    throw new InvalidArgumentError(`route ${name}: ${idColumn} is not an id column of ${table.name}`, 'idColumn');
  return {
    spec,
    name,
    method,
    hasId,
    param,
    table,
    idColumn,
    crossTenant: spec.crossTenant ?? (hasId ? 404 : '2xx'),
    noTenant: spec.noTenant ?? 401,
    control: spec.control ?? '2xx',
    sameAsMissing: spec.sameAsMissing ?? true,
  };
}

/** True when `status` is what `expected` allows. */
export function statusMatches(expected: StatusExpectation, status: number): boolean {
  if (expected === '2xx') return status >= 200 && status < 300;
  return typeof expected === 'number' ? status === expected : expected.includes(status);
}

/** Words for an expectation: `404`, `200 or 204`, `2xx`. */
export function describeStatus(expected: StatusExpectation): string {
  return typeof expected === 'number' || expected === '2xx' ? String(expected) : expected.join(' or ');
}
