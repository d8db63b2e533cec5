import { InvalidArgumentError } from '../errors/tenantry-error.js';
import { quoteIdent, quoteQualified } from '../policy/identifiers.js';
import type { IsolationTenant, SqlQueryable } from './isolation-context.js';

/** What a seed callback gets: it runs inside `runAs(party.tenant.id)`. */
export interface SeedContext<User = unknown> {
  party: IsolationTenant<User>;
  /** The application's TenantPool (the tenant is already in context). */
  pool: SqlQueryable;
  /** The privileged connection, for rows the app role cannot write (name the tenant explicitly). */
  privileged: SqlQueryable;
  /** 0, 1, … for the rows seeded in one tenant: makes unique values easy. */
  index: number;
}

/**
 * One tenant table under test. Give either `columns` (the kit inserts them through the app's
 * pool, tenant column set to the tenant in context) or `seed` (your code inserts one row and
 * returns its id columns).
 *
 * @example
 * { table: 'recordings', columns: ({ user }) => ({ owner_id: user.id, title: 't', duration_seconds: 1, mime_type: 'audio/ogg' }),
 *   update: { column: 'title', value: 'changed' } }
 */
export interface TenantTableSpec<User = unknown> {
  /** `table` or `schema.table` (lower-case identifiers). */
  table: string;
  /** Default `tenant_id`. */
  tenantColumn?: string;
  /** Columns that identify a row within the table, without the tenant column. Default `['id']`. */
  idColumns?: string[];
  /** Values of one new row of `party` (the tenant column is added). */
  columns?: (party: IsolationTenant<User>, index: number) => Record<string, unknown>;
  /** Inserts one row for the tenant in context and returns at least its id columns. */
  seed?: (context: SeedContext<User>) => Promise<Record<string, unknown>>;
  /** A column the attempts try to change, and a value its constraints accept. */
  update: { column: string; value: unknown };
  /** Rows seeded in tenant A (default 2) and in tenant B (always 1). */
  rowsPerTenant?: number;
}

/** A table spec with its identifiers validated and quoted. */
// `any` by default: helpers take a table of any user type (the callbacks make `unknown` invariant)
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- helpers take a table of any user type (the callbacks make unknown invariant)
export interface ResolvedTable<User = any> {
  spec: TenantTableSpec<User>;
  name: string;
  /** Quoted, possibly schema-qualified. */
  sql: string;
  tenantColumn: string;
  tenantSql: string;
  idColumns: string[];
  idSql: string[];
  updateSql: string;
  rowsPerTenant: number;
}

/** Validates a spec once, when the suite is declared, so a typo fails at collection time. */
export function resolveTable<User>(spec: TenantTableSpec<User>): ResolvedTable<User> {
  if (!spec.columns === !spec.seed)
    throw new InvalidArgumentError(`table ${spec.table}: give exactly one of columns or seed`, 'seed');
  const tenantColumn = spec.tenantColumn ?? 'tenant_id';
  const idColumns = spec.idColumns ?? ['id'];
  if (idColumns.length === 0) throw new InvalidArgumentError(`table ${spec.table}: idColumns is empty`, 'idColumns');
  if (idColumns.includes(tenantColumn))
    throw new InvalidArgumentError(`table ${spec.table}: idColumns must not include the tenant column`, 'idColumns');
  const rowsPerTenant = spec.rowsPerTenant ?? 2;
  if (!Number.isInteger(rowsPerTenant) || rowsPerTenant < 1 || rowsPerTenant > 100)
    throw new InvalidArgumentError('rowsPerTenant: 1 to 100', 'rowsPerTenant');
  return {
    spec,
    name: spec.table,
    sql: quoteQualified(spec.table),
    tenantColumn,
    tenantSql: quoteIdent(tenantColumn, 'tenant column'),
    idColumns,
    idSql: idColumns.map((c) => quoteIdent(c, 'id column')),
    updateSql: quoteIdent(spec.update.column, 'update column'),
    rowsPerTenant,
  };
}

/** A row's id columns as text (canonical: read back from PostgreSQL with `::text`). */
export type RowKey = Readonly<Record<string, string>>;

/** `"a" = $3 and "b" = $4` for a key, parameters numbered from `first` (PostgreSQL infers their types from the columns). */
export function keyPredicate(table: ResolvedTable, first: number): string {
  return table.idSql.map((column, i) => `${column} = $${first + i}`).join(' and ');
}

/** The key's values in idColumns order. */
export function keyValues(table: ResolvedTable, key: RowKey): string[] {
  return table.idColumns.map((c) => key[c]!);
}
