import type { Finding } from './finding.js';
import { policyAppliesToAppSql, scopedRows, type DoctorScope } from './doctor-scope.js';
import { contextCalls, isTrueLiteral, mentionsColumn, wrapPerRowCalls } from './policy-expression.js';
import { tenantBinding } from './policy-binding.js';

interface PolicyRow {
  object: string;
  table_name: string;
  policy_sql: string;
  cmd: '*' | 'r' | 'a' | 'w' | 'd';
  permissive: boolean;
  applies_to_app: boolean;
  using_expr: string | null;
  check_expr: string | null;
  tenant_table: boolean;
  tenant_sql: string | null;
  tenant_column: string | null;
}

type Command = 'r' | 'a' | 'w' | 'd';
const COMMANDS: Record<PolicyRow['cmd'], Command[]> = {
  '*': ['r', 'a', 'w', 'd'],
  r: ['r'],
  a: ['a'],
  w: ['w'],
  d: ['d'],
};
const CMD_SQL: Record<PolicyRow['cmd'], string> = { '*': 'ALL', r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE' };
/** The commands an expression kind filters: USING filters reads, updates and deletes; WITH CHECK filters new rows. */
const KIND_COMMANDS = { using: ['r', 'w', 'd'], check: ['a', 'w'] } as const satisfies Record<string, Command[]>;

/** The expression PostgreSQL really applies: for ALL and UPDATE policies without WITH CHECK, USING stands in. */
function effective(p: PolicyRow, kind: 'using' | 'check'): string | null {
  if (kind === 'using') return p.using_expr;
  return p.check_expr ?? (p.cmd === '*' || p.cmd === 'w' ? p.using_expr : null);
}

/**
 * Policies on the data schemas, the Tenantry schemas and registered tables: context read per row
 * instead of once (not wrapped in a scalar sub-select), the tenant taken from a raw setting in
 * signed mode, and on tenant tables permissive policies that let the app see or write rows of
 * every tenant (`true`, or an expression that ignores the tenant column), unless a restrictive
 * policy on the tenant column guards the same commands; plus write policies without WITH CHECK.
 */
export async function checkPolicies(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<PolicyRow>(
    scope,
    `SELECT format('%I on %I.%I', p.polname, n.nspname, c.relname) AS object, format('%I.%I', n.nspname, c.relname) AS table_name,
            quote_ident(p.polname) AS policy_sql, p.polcmd AS cmd, p.polpermissive AS permissive,
            ${policyAppliesToAppSql('p')} AS applies_to_app,
            pg_get_expr(p.polqual, p.polrelid) AS using_expr, pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr,
            t.oid IS NOT NULL AS tenant_table, t.tenant_sql, t.tenant_column
       FROM pg_policy p
       JOIN pg_class c ON c.oid = p.polrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN tenant_table t ON t.oid = p.polrelid AND t.tenant_attnum IS NOT NULL
      WHERE n.oid IN (SELECT oid FROM scope_schema) OR c.oid IN (SELECT relid FROM registry)
      ORDER BY 2, p.polname`,
  );
  const findings: Finding[] = [];
  for (const p of rows) {
    findings.push(...contextFindings(scope, p));
    if (p.tenant_table && p.permissive && p.applies_to_app)
      findings.push(
        ...tenantFindings(
          p,
          rows.filter((r) => r.table_name === p.table_name),
        ),
      );
  }
  return findings;
}

function contextFindings(scope: DoctorScope, p: PolicyRow): Finding[] {
  const findings: Finding[] = [];
  const exprs = [p.using_expr, p.check_expr].filter((e): e is string => e !== null);
  const calls = exprs.flatMap((e) => contextCalls(e));
  const perRow = [...new Set(calls.filter((c) => c.perRow).map((c) => c.name))];
  if (perRow.length > 0) {
    findings.push({
      code: 'POLICY_PER_ROW_CONTEXT',
      severity: 'warning',
      object: p.object,
      message: `Policy ${p.object} calls ${perRow.join(' and ')}() for every row: wrap the call in a scalar sub-select, e.g. (SELECT tenantry.current_tenant_id()), so PostgreSQL evaluates it once per statement (an InitPlan).`,
      fix: rewriteFix(p, wrapPerRowCalls),
    });
  }
  const readsSetting =
    calls.some((c) => c.name === 'current_setting') &&
    !calls.some((c) => c.name === 'tenantry.current_tenant_id' || c.name === 'tenantry.home_tenant_id');
  if (
    scope.contextMode === 'signed' &&
    p.tenant_table &&
    p.tenant_sql !== null &&
    readsSetting &&
    exprs.some((e) => mentionsColumn(e, p.tenant_sql!))
  ) {
    findings.push({
      code: 'POLICY_READS_SETTING_DIRECTLY',
      severity: 'error',
      object: p.object,
      message: `Policy ${p.object} takes the tenant from current_setting() instead of tenantry.current_tenant_id(): in signed mode that skips the signature check, so injected SQL can choose its tenant with set_config.`,
      fix: rewriteFix(p, () => `${p.tenant_sql} = (SELECT tenantry.current_tenant_id())`),
    });
  }
  return findings;
}

function tenantFindings(p: PolicyRow, tablePolicies: PolicyRow[]): Finding[] {
  const findings: Finding[] = [];
  const column = p.tenant_sql!;
  const isolation = `${column} = (SELECT tenantry.current_tenant_id())`;
  for (const kind of ['using', 'check'] as const) {
    const commands = COMMANDS[p.cmd].filter((c) => (KIND_COMMANDS[kind] as readonly Command[]).includes(c));
    const expr = effective(p, kind);
    if (commands.length === 0 || expr === null) continue;
    const clause = kind === 'using' ? 'USING' : 'WITH CHECK';
    const scopeText = kind === 'using' ? 'see, update or delete' : 'write';
    if (isTrueLiteral(expr) || !mentionsColumn(expr, column)) {
      if (commands.every((c) => guarded(tablePolicies, p, c, kind))) continue;
      findings.push(
        isTrueLiteral(expr)
          ? {
              code: 'POLICY_ALLOWS_ALL',
              severity: 'error',
              object: p.object,
              message: `Permissive policy ${p.object} has ${clause} (true) on a tenant table: the app can ${scopeText} rows of every tenant (permissive policies are OR-ed together).`,
              fix: rewriteFix(p, () => isolation, kind),
            }
          : {
              code: 'POLICY_IGNORES_TENANT',
              severity: 'error',
              object: p.object,
              message: `Permissive policy ${p.object} has a ${clause} expression that never looks at ${column}: the app can ${scopeText} rows of other tenants that match it.`,
              fix: rewriteFix(p, (e) => `(${e}) AND ${isolation}`, kind),
            },
      );
      continue;
    }
    const binding = tenantBinding(expr, p.tenant_column!);
    if (!binding.parsed || binding.bound) continue;
    if (commands.every((c) => guarded(tablePolicies, p, c, kind))) continue;
    findings.push({
      code: 'POLICY_TENANT_NOT_BOUND',
      severity: 'error',
      object: p.object,
      message: `Permissive policy ${p.object} names ${column} in its ${clause} expression but does not bind it to the current tenant on every branch (an OR arm, a NOT, IS NOT NULL or a comparison with anything but tenantry.current_tenant_id()): the app can ${scopeText} rows of other tenants that match that branch. Permissive policies are OR-ed together, so one such branch widens every other policy of the table. If every tenant may really see these rows, the table is global: move them to a table registered with tenantry.register_global_table().`,
      fix: rewriteFix(p, (e) => `(${e}) AND ${isolation}`, kind),
    });
  }
  if (p.check_expr === null && p.cmd !== 'r' && p.cmd !== 'd') {
    findings.push({
      code: 'POLICY_WITHOUT_WITH_CHECK',
      severity: 'warning',
      object: p.object,
      message:
        p.cmd === 'a'
          ? `INSERT policy ${p.object} has no WITH CHECK: it lets no row in. State the check explicitly.`
          : `${CMD_SQL[p.cmd]} policy ${p.object} has no WITH CHECK, so its USING expression silently doubles as the check on written rows: state the tenant check explicitly so a later edit of USING cannot loosen writes.`,
      fix: `ALTER POLICY ${p.policy_sql} ON ${p.table_name} WITH CHECK (${isolation});`,
    });
  }
  return findings;
}

/**
 * True when a restrictive policy that applies to the app filters command `c` by binding the tenant
 * column to the current tenant (restrictive policies are AND-ed: one such policy narrows them all).
 */
function guarded(policies: PolicyRow[], p: PolicyRow, c: Command, kind: 'using' | 'check'): boolean {
  return policies.some((r) => {
    if (r.permissive || !r.applies_to_app || !COMMANDS[r.cmd].includes(c)) return false;
    const expr = effective(r, kind);
    if (expr === null || isTrueLiteral(expr) || !mentionsColumn(expr, p.tenant_sql!)) return false;
    const binding = tenantBinding(expr, p.tenant_column!);
    // an expression the parser cannot read keeps the old rule (it names the column)
    return !binding.parsed || binding.bound;
  });
}

/** `ALTER POLICY` that replaces the policy's expressions (only `kind` when given) with `rewrite(expression)`. */
function rewriteFix(p: PolicyRow, rewrite: (expr: string) => string, kind?: 'using' | 'check'): string {
  const parts: string[] = [];
  if (p.using_expr !== null && kind !== 'check') parts.push(`USING (${rewrite(p.using_expr)})`);
  const check = kind === 'check' ? effective(p, 'check') : p.check_expr;
  if (check !== null && kind !== 'using') parts.push(`WITH CHECK (${rewrite(check)})`);
  return `ALTER POLICY ${p.policy_sql} ON ${p.table_name} ${parts.join(' ')};`;
}
