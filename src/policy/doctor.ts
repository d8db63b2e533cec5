import pg from 'pg';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { SqlState, sqlStateOf } from '../errors/sqlstate.js';
import { loadScope, type DoctorCheck } from './doctor/doctor-scope.js';
import type { DoctorReport, Finding } from './doctor/finding.js';
import { checkAppRole } from './doctor/role-checks.js';
import { checkPrivileges } from './doctor/privilege-checks.js';
import { checkTenantTables } from './doctor/tenant-table-checks.js';
import { checkKeys } from './doctor/constraint-checks.js';
import { checkPolicies } from './doctor/policy-checks.js';
import { checkViews } from './doctor/view-checks.js';
import { checkDefinerFunctions } from './doctor/function-checks.js';
import { checkRegistry } from './doctor/registry-checks.js';
import { checkSettings } from './doctor/setting-checks.js';
import { checkInstall } from './doctor/install-checks.js';
import { checkSupportRole } from './doctor/support-role-checks.js';
import { checkRoutes } from './doctor/route-checks.js';
import { checkCitusReadiness, citusFix, citusSeverity } from './doctor/citus-checks.js';
import { checkDefinerReach } from './doctor/definer-review-checks.js';
import { checkTableShape } from './doctor/table-shape-checks.js';
import { checkLeastPrivilege } from './doctor/least-privilege-checks.js';
import { loadSqlParser } from '../guard/sql-parser.js';

export type { DoctorReport, Finding, FindingCode, FindingSeverity } from './doctor/finding.js';
export {
  acceptDefinerFunction,
  recordReviewedFunctions,
  type AcceptFunctionOptions,
  type ReviewedFunction,
} from './doctor/reviewed-functions.js';

/** Options of {@link runDoctor}. */
export interface DoctorOptions {
  /** The role the application connects as. Default: `app_role` from `tenantry.meta`. */
  appRole?: string;
  /** The schemas holding application tables. Default: `data_schemas` from `tenantry.meta`, else `['public']`. */
  schemas?: string[];
  /**
   * Also check that the schema would distribute on Citus (tenant tables distributed by their
   * tenant column, global tables as reference tables): `CITUS_*` findings, and keys without the
   * tenant column become errors. See docs/citus.md.
   */
  citus?: boolean;
}

const CHECKS: DoctorCheck[] = [
  checkAppRole,
  checkPrivileges,
  checkTenantTables,
  checkKeys,
  checkPolicies,
  checkViews,
  checkDefinerFunctions,
  checkDefinerReach,
  checkTableShape,
  checkLeastPrivilege,
  checkRegistry,
  checkSettings,
  checkInstall,
  checkSupportRole,
  checkRoutes,
];

/**
 * `tenantry doctor`: audits a live database for everything that would let one tenant see or
 * change another tenant's rows, or that breaks Tenantry's deny-by-default. Connect as a superuser
 * or as the owner role. Read-only: it runs in one READ ONLY, REPEATABLE READ transaction, so every
 * check sees the same snapshot of the catalog.
 *
 * @example
 * const report = await runDoctor(process.env.DATABASE_URL!);
 * console.log(formatDoctorReport(report));
 * process.exitCode = report.ok ? 0 : 1;
 */
export async function runDoctor(adminUrl: string, options: DoctorOptions = {}): Promise<DoctorReport> {
  // policy expressions and function bodies are read with PostgreSQL's own parser
  await loadSqlParser();
  const client = new pg.Client({ connectionString: adminUrl, application_name: 'tenantry doctor' });
  await client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    // pg_get_expr and regclass output then name every object outside pg_catalog with its schema
    await client.query('SET LOCAL search_path = pg_catalog, pg_temp');
    const { scope, findings } = await loadScope(client, options);
    for (const check of options.citus ? [...CHECKS, checkCitusReadiness] : CHECKS)
      findings.push(...(await check(scope)));
    // on a Citus coordinator: the registered tenant tables Citus distributes, whose fixes are Citus's own (citusFix)
    const onCitus =
      options.citus === true &&
      (
        await client.query<{ ok: boolean }>(
          `SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') AND to_regclass('tenantry.registered_tables') IS NOT NULL AS ok`,
        )
      ).rows[0]?.ok === true;
    const registeredOnCitus = onCitus
      ? (
          await client.query<{ name: string }>(
            `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM tenantry.registered_tables r
               JOIN pg_class c ON c.oid = r.relid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE r.kind = 'tenant' AND EXISTS (SELECT FROM pg_dist_partition p WHERE p.logicalrelid = r.relid)`,
          )
        ).rows.map((r) => r.name)
      : [];
    await client.query('COMMIT');
    if (!options.citus) return doctorReport(findings);
    // CITUS_NO_PRIMARY_KEY says the same of a table, with the fix Citus needs
    const citusNoKey = new Set(findings.filter((f) => f.code === 'CITUS_NO_PRIMARY_KEY').map((f) => f.object));
    // POLICY_PER_ROW_CONTEXT's fix is the InitPlan form, which Citus refuses on distributed tables
    // (CITUS_POLICY_SUBQUERY): on Citus the plain call is the form to keep
    return doctorReport(
      findings
        .filter((f) => f.code !== 'TENANT_TABLE_NO_PRIMARY_KEY' || !citusNoKey.has(f.object))
        .filter((f) => f.code !== 'POLICY_PER_ROW_CONTEXT')
        .map(citusSeverity)
        .map((f) => citusFix(f, new Set(registeredOnCitus))),
    );
  } catch (error) {
    if (sqlStateOf(error) === SqlState.insufficientPrivilege) {
      throw new ConfigurationError(
        'tenantry doctor needs to read the Tenantry catalog: connect as a superuser or as the owner role',
        error,
      );
    }
    throw error;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const SEVERITY_ORDER = { error: 0, warning: 1 } as const;

/** Builds a report from findings: sorted (errors first, then by code and object), `ok` when none is an error. */
export function doctorReport(findings: Finding[]): DoctorReport {
  const sorted = [...findings].sort(
    (a, b) =>
      SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
      a.code.localeCompare(b.code) ||
      a.object.localeCompare(b.object),
  );
  return { ok: !sorted.some((f) => f.severity === 'error'), findings: sorted };
}

/**
 * Renders a report for humans: one line per finding (severity, code, object, message, fix),
 * then a summary line. For machines, `JSON.stringify(report)`.
 */
export function formatDoctorReport(report: DoctorReport): string {
  const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' ');
  const lines = report.findings.map(
    (f) =>
      `${f.severity === 'error' ? 'ERROR  ' : 'WARNING'} ${f.code} ${f.object}: ${oneLine(f.message)} Fix: ${oneLine(f.fix)}`,
  );
  const errors = report.findings.filter((f) => f.severity === 'error').length;
  const warnings = report.findings.length - errors;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  lines.push(
    report.findings.length === 0
      ? 'tenantry doctor: no problems found.'
      : `tenantry doctor: ${plural(errors, 'error')}, ${plural(warnings, 'warning')}${report.ok ? ' (ok: no errors)' : ''}.`,
  );
  return lines.join('\n');
}
