import type { Finding } from './finding.js';
import type { DoctorScope } from './doctor-scope.js';
import { contextCalls, replaceTenantFunction } from './policy-expression.js';

interface TablePolicy {
  object: string;
  table_name: string;
  /** The table as a string literal, for the `tenantry.*_tenant_table('…')` fixes. */
  table_literal: string;
  policy_name: string;
  policy_sql: string;
  tenant_column: string;
  pinned: boolean;
  using_expr: string | null;
  check_expr: string | null;
}

/** The policy `register_tenant_table` and `pin_tenant_table` (re)make: a fix through them replaces exactly it. */
const ISOLATION_POLICY = 'tenantry_isolation';

/**
 * The route check and pinned tables (docs/tiers.md): `tenantry.home_tenant_id()` is the proven
 * tenant WITHOUT the route check, safe only on a table that never moves. A registered tenant table
 * that is not pinned but whose policy calls it lets a statement on a stale route read or write the
 * copy of the tenant's rows a move left behind (error). The converse, a pinned table whose policy
 * still calls `current_tenant_id()`, is safe but breaks once its tenant is placed elsewhere: every
 * statement on it at home then fails TR003 (warning).
 */
export async function checkPinnedTables(scope: DoctorScope): Promise<Finding[]> {
  const tables = scope.registry.filter((r) => r.present && r.kind === 'tenant');
  if (tables.length === 0) return [];
  const { rows } = await scope.db.query<TablePolicy>(
    `SELECT format('%I on %I.%I', p.polname, n.nspname, c.relname) AS object, format('%I.%I', n.nspname, c.relname) AS table_name,
            quote_literal(format('%I.%I', n.nspname, c.relname)) AS table_literal,
            p.polname::text AS policy_name, quote_ident(p.polname) AS policy_sql, t.tenant_column, t.pinned,
            pg_get_expr(p.polqual, p.polrelid) AS using_expr, pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr
       FROM unnest($1::oid[], $2::text[], $3::boolean[]) AS t(relid, tenant_column, pinned)
       JOIN pg_policy p ON p.polrelid = t.relid
       JOIN pg_class c ON c.oid = t.relid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      ORDER BY 2, p.polname`,
    [tables.map((t) => t.relid), tables.map((t) => t.tenantColumn), tables.map((t) => t.pinned)],
  );
  const findings: Finding[] = [];
  for (const p of rows) {
    const calls = [p.using_expr, p.check_expr].flatMap((e) => (e === null ? [] : contextCalls(e))).map((c) => c.name);
    if (!p.pinned && calls.includes('tenantry.home_tenant_id')) {
      findings.push({
        code: 'POLICY_SKIPS_ROUTE_CHECK',
        severity: 'error',
        object: p.object,
        message: `Policy ${p.object} calls tenantry.home_tenant_id(), which skips the route check, but ${p.table_name} is not pinned: a statement sent on a stale route could read or write the copy of the tenant's rows a move left behind. Use tenantry.current_tenant_id(), or pin the table if it never moves (SELECT tenantry.pin_tenant_table(${p.table_literal})).`,
        fix:
          p.policy_name === ISOLATION_POLICY
            ? `SELECT tenantry.register_tenant_table(${registerArgs(p)});`
            : rewriteFix(p, 'home_tenant_id', 'current_tenant_id'),
      });
    }
    if (p.pinned && calls.includes('tenantry.current_tenant_id')) {
      findings.push({
        code: 'PINNED_TABLE_ROUTE_CHECKED',
        severity: 'warning',
        object: p.object,
        message: `${p.table_name} is pinned (it stays in this database when a tenant moves), but policy ${p.object} calls tenantry.current_tenant_id(), which checks the route: once a tenant is placed elsewhere, every statement of it on ${p.table_name} here fails TR003. Pinned tables take tenantry.home_tenant_id().`,
        fix:
          p.policy_name === ISOLATION_POLICY
            ? `SELECT tenantry.pin_tenant_table(${p.table_literal});`
            : rewriteFix(p, 'current_tenant_id', 'home_tenant_id'),
      });
    }
  }
  return findings;
}

/** The arguments of `register_tenant_table` for the table: its tenant column only when it is not the default. */
function registerArgs(p: TablePolicy): string {
  return p.tenant_column === 'tenant_id'
    ? p.table_literal
    : `${p.table_literal}, '${p.tenant_column.replaceAll("'", "''")}'`;
}

/** `ALTER POLICY` with the tenant function swapped in both expressions: for a policy Tenantry did not write. */
function rewriteFix(
  p: TablePolicy,
  from: 'current_tenant_id' | 'home_tenant_id',
  to: 'current_tenant_id' | 'home_tenant_id',
): string {
  const parts: string[] = [];
  if (p.using_expr !== null) parts.push(`USING (${replaceTenantFunction(p.using_expr, from, to)})`);
  if (p.check_expr !== null) parts.push(`WITH CHECK (${replaceTenantFunction(p.check_expr, from, to)})`);
  return `ALTER POLICY ${p.policy_sql} ON ${p.table_name} ${parts.join(' ')};`;
}
