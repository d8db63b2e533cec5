import type { HttpDriver } from './http-driver.js';

/** The result shape the kit reads from a query: node-postgres' `QueryResult`, structurally. */
export interface SqlResult {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- node-postgres' QueryResult rows, structurally
  rows: any[];
  rowCount: number | null;
}

/**
 * Anything with node-postgres' promise `query(text, values)`: a `TenantPool`, a `pg.Pool`, a
 * `pg.Client`. The kit needs nothing else from a connection.
 */
export interface SqlQueryable {
  query(text: string, values?: unknown[]): Promise<SqlResult>;
}

/** A tenant taking part in the isolation tests, with the user the app acts as (for routes and seeds). */
export interface IsolationTenant<User = unknown> {
  tenant: { readonly id: string; readonly slug?: string };
  user?: User;
}

/** How the route attempts reach the application. */
export interface HttpTarget<User = unknown> {
  driver: HttpDriver;
  /** Request headers that authenticate `party`'s user in `party`'s tenant (e.g. a bearer token). */
  credentials(party: IsolationTenant<User>): Record<string, string> | Promise<Record<string, string>>;
}

/**
 * What the generated tests run against. Tenant A owns the rows under attack; tenant B is the
 * intruder. Every attempt goes through `pool` (the application's TenantPool, as the app role);
 * `privileged` only seeds, snapshots and checks.
 */
export interface IsolationContext<User = unknown> {
  /** The application's TenantPool, connected as the app role (no query guard in `enforce` mode, or the attempts never reach PostgreSQL). */
  pool: SqlQueryable;
  /** A connection that sees through RLS (the owner role, BYPASSRLS, or a superuser): the ground truth. */
  privileged: SqlQueryable;
  /** The tenant whose rows are attacked. */
  tenantA: IsolationTenant<User>;
  /** The tenant that attacks them. */
  tenantB: IsolationTenant<User>;
  /** Needed when the suite has routes. */
  http?: HttpTarget<User>;
}
