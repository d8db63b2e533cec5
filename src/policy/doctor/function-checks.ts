import type { Finding } from './finding.js';
import { scopedRows, type DoctorScope } from './doctor-scope.js';

/**
 * SECURITY DEFINER functions in the data and Tenantry schemas: each must pin `search_path`
 * (with `pg_temp` last, else the caller's temporary tables shadow the tables it names) and must
 * not be executable by PUBLIC (a NULL proacl means PUBLIC may execute). A SQL-standard body
 * (`BEGIN ATOMIC`, `prosqlbody`) needs no pinned path: every name in it was bound to its object
 * when the function was created, so no caller's search_path can redirect it.
 */
export async function checkDefinerFunctions(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<{
    name: string;
    keyword: string;
    config: string[] | null;
    bound_body: boolean;
    public_execute: boolean;
  }>(
    scope,
    `SELECT format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS name,
            CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END AS keyword, p.proconfig AS config,
            p.prosqlbody IS NOT NULL AS bound_body,
            EXISTS (SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) x
                     WHERE x.grantee = 0 AND x.privilege_type = 'EXECUTE') AS public_execute
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE p.prosecdef AND n.oid IN (SELECT oid FROM scope_schema)
      ORDER BY 1`,
  );
  const findings: Finding[] = [];
  for (const f of rows) {
    const setting = f.config?.find((c) => c.toLowerCase().startsWith('search_path='));
    if (setting === undefined && f.bound_body) {
      // bound at creation: nothing to resolve at run time
    } else if (setting === undefined) {
      findings.push({
        code: 'DEFINER_WITHOUT_SEARCH_PATH',
        severity: 'error',
        object: f.name,
        message: `SECURITY DEFINER ${f.keyword.toLowerCase()} ${f.name} runs with its owner's rights but resolves names through the caller's search_path: a caller can substitute its own objects.`,
        fix: `ALTER ${f.keyword} ${f.name} SET search_path = pg_catalog, pg_temp;`,
      });
    } else if (setting !== undefined && !pgTempLast(setting.slice(setting.indexOf('=') + 1))) {
      findings.push({
        code: 'DEFINER_SEARCH_PATH_UNSAFE',
        severity: 'warning',
        object: f.name,
        message: `SECURITY DEFINER ${f.keyword.toLowerCase()} ${f.name} sets ${setting} without pg_temp last: PostgreSQL then searches the caller's temporary schema first, so a temporary table can shadow a table the function names.`,
        fix: `ALTER ${f.keyword} ${f.name} SET search_path = ${[...schemasOf(setting.slice(setting.indexOf('=') + 1)).filter((s) => s !== 'pg_temp'), 'pg_temp'].join(', ')};`,
      });
    }
    if (f.public_execute) {
      findings.push({
        code: 'DEFINER_EXECUTABLE_BY_PUBLIC',
        severity: 'error',
        object: f.name,
        message: `SECURITY DEFINER ${f.keyword.toLowerCase()} ${f.name} is executable by PUBLIC: every role, the app included, runs it with its owner's rights.`,
        fix: `REVOKE EXECUTE ON ${f.keyword} ${f.name} FROM PUBLIC;`,
      });
    }
  }
  return findings;
}

function schemasOf(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0 && s !== '""');
}

function pgTempLast(value: string): boolean {
  const schemas = schemasOf(value);
  return schemas.at(-1)?.replace(/"/g, '') === 'pg_temp';
}
