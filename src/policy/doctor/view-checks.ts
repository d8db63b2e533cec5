import type { Finding } from './finding.js';
import { appGranteesSql, scopedRows, tableAclItems, type DoctorScope } from './doctor-scope.js';
import { parsePgBool } from './policy-expression.js';

/**
 * Views the app role can query in the data and Tenantry schemas: a view without
 * `security_invoker = true` reads its tables with its owner's rights (the owner role bypasses
 * RLS), and a materialized view has no row level security at all.
 */
export async function checkViews(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<{ name: string; kind: 'v' | 'm'; options: string[] | null; grantees: string | null }>(
    scope,
    `SELECT format('%I.%I', n.nspname, c.relname) AS name, c.relkind AS kind, c.reloptions AS options,
            ${appGranteesSql(tableAclItems('c'), `x.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE')`, 'c.relowner')} AS grantees
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('v', 'm') AND n.oid IN (SELECT oid FROM scope_schema)
        -- Citus's own views (citus_tables, citus_schemas…, created in public by the extension):
        -- catalog metadata of the cluster, not the application's rows
        AND NOT EXISTS (SELECT FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
                           AND d.refclassid = 'pg_extension'::regclass AND e.extname IN ('citus', 'citus_columnar'))
      ORDER BY 1`,
  );
  const findings: Finding[] = [];
  for (const v of rows) {
    if (v.grantees === null) continue;
    if (v.kind === 'm') {
      findings.push({
        code: 'MATERIALIZED_VIEW_REACHABLE',
        severity: 'error',
        object: v.name,
        message: `The application role can read materialized view ${v.name} (granted to ${v.grantees}): a materialized view has no row level security, and its rows were computed with its owner's rights.`,
        fix: `REVOKE ALL ON TABLE ${v.name} FROM ${v.grantees};`,
      });
      continue;
    }
    if (securityInvoker(v.options)) continue;
    findings.push({
      code: 'VIEW_NOT_SECURITY_INVOKER',
      severity: 'error',
      object: v.name,
      message: `View ${v.name} is granted to ${v.grantees} without security_invoker: it reads its tables as its owner, so row level security of the app role does not apply (and an owner with BYPASSRLS sees every tenant).`,
      fix: `ALTER VIEW ${v.name} SET (security_invoker = true);`,
    });
  }
  return findings;
}

function securityInvoker(options: string[] | null): boolean {
  const option = options?.find((o) => o.toLowerCase().startsWith('security_invoker='));
  return option !== undefined && parsePgBool(option.slice(option.indexOf('=') + 1)) === true;
}
