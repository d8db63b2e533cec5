import type { Finding } from './finding.js';
import type { DoctorScope } from './doctor-scope.js';
import { checkPinnedTables } from './pinned-table-checks.js';
import { checkTenantSchemaGuards, checkTenantSchemas } from './tenant-schema-checks.js';

/** How long a tenant may stay frozen before doctor warns: a move's freeze lasts about a second. */
const FROZEN_WARN_MINUTES = 10;

/**
 * The tiers (docs/tiers.md): the local route check ({@link checkLocalRoutes}), the policies of
 * pinned and unpinned tenant tables ({@link checkPinnedTables}), and schema-tier tenants' schemas
 * missing a shared tenant table ({@link checkTenantSchemas}) or the guard binding their tables to
 * their tenant ({@link checkTenantSchemaGuards}). Every database doctor audits runs
 * them, so `doctor --placements` (one audit per database) reports them for every placement.
 */
export async function checkRoutes(scope: DoctorScope): Promise<Finding[]> {
  return [
    ...(await checkLocalRoutes(scope)),
    ...(await checkPinnedTables(scope)),
    ...(await checkTenantSchemas(scope)),
    ...(await checkTenantSchemaGuards(scope)),
  ];
}

/**
 * The local route check (docs/tiers.md): in unsigned mode, a database that hosts placed tenants
 * (or no longer serves the default route) must run the checking form of
 * `tenantry.current_tenant_id()`, not the inlined one; and no tenant should stay frozen long
 * (a move that died after its freeze leaves its tenant refusing every statement).
 */
export async function checkLocalRoutes(scope: DoctorScope): Promise<Finding[]> {
  if (!scope.installed) return [];
  const { rows: state } = await scope.db.query<{ present: boolean }>(
    `SELECT to_regclass('tenantry.local_tenants') IS NOT NULL AND to_regclass('tenantry.local_route') IS NOT NULL AS present`,
  );
  if (!state[0]?.present) return [];
  const findings: Finding[] = [];
  if (scope.contextMode === 'unsigned') {
    const { rows } = await scope.db.query<{ routed: boolean; language: string | null }>(
      `SELECT (EXISTS (SELECT FROM tenantry.local_tenants) OR NOT (SELECT serves_default FROM tenantry.local_route)) AS routed,
              (SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
                WHERE p.oid = to_regprocedure('tenantry.current_tenant_id()')) AS language`,
    );
    if (rows[0]?.routed && rows[0].language !== 'plpgsql') {
      findings.push({
        code: 'ROUTE_CHECK_INLINED_WITH_PLACEMENTS',
        severity: 'error',
        object: 'tenantry.current_tenant_id()',
        message:
          'This database hosts placed tenants (or does not serve the default route), but tenantry.current_tenant_id() is the inlined form, which does not check routes: a stale router could read or write here.',
        fix: 'SELECT tenantry.choose_route_check();',
      });
    }
  }
  const { rows: frozen } = await scope.db.query<{ tenant_key: string; minutes: number }>(
    `SELECT tenant_key, floor(extract(epoch FROM now() - updated_at) / 60)::int AS minutes
       FROM tenantry.local_tenants WHERE state = 'frozen' AND updated_at < now() - make_interval(mins => $1) ORDER BY 1`,
    [FROZEN_WARN_MINUTES],
  );
  for (const r of frozen) {
    findings.push({
      code: 'TENANT_FROZEN_LONG',
      severity: 'warning',
      object: r.tenant_key,
      message: `Tenant ${r.tenant_key} has been frozen here for ${r.minutes} minutes: every statement of it is refused (TR004). A move probably died after its freeze.`,
      fix: 'tenantry tenants move <tenant> (run again: resumes its open move) or tenantry tenants move <tenant> --rollback; see docs/moves.md',
    });
  }
  return findings;
}
