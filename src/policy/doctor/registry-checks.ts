import type { Finding } from './finding.js';
import { appGranteesSql, policyAppliesToAppSql, scopedRows, tableAclItems, type DoctorScope } from './doctor-scope.js';
import { quoteLiteral } from '../identifiers.js';

/**
 * The registry and the tables outside it: read-only global tables the app can write, registry rows
 * whose table is gone, and unregistered tables of the data schemas (other than tenant tables, which
 * the tenant-table checks cover) that the app can reach or that lack forced RLS.
 */
export async function checkRegistry(scope: DoctorScope): Promise<Finding[]> {
  const findings: Finding[] = scope.registry
    .filter((r) => !r.present)
    .map((r) => ({
      code: 'REGISTRY_STALE_ENTRY',
      severity: 'warning',
      object: `tenantry.registered_tables relid ${r.relid}`,
      message: `tenantry.registered_tables lists a ${r.kind} table (oid ${r.relid}) that no longer exists: if PostgreSQL reuses the oid, an unrelated new table would count as registered.`,
      fix: `DELETE FROM tenantry.registered_tables WHERE relid::oid = ${r.relid};`,
    }));
  findings.push(...(await writableGlobals(scope)), ...(await unregisteredTables(scope)));
  return findings;
}

async function writableGlobals(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<{ name: string; grantees: string | null }>(
    scope,
    `SELECT format('%I.%I', n.nspname, c.relname) AS name,
            ${appGranteesSql(tableAclItems('c'), `x.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')`, 'c.relowner')} AS grantees
       FROM registry r JOIN pg_class c ON c.oid = r.relid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE r.kind = 'global' AND NOT r.writable
      ORDER BY 1`,
  );
  return rows
    .filter((r) => r.grantees !== null)
    .map((r) => ({
      code: 'GLOBAL_TABLE_WRITABLE' as const,
      severity: 'error' as const,
      object: r.name,
      message: `${r.name} is registered as a read-only global table, yet the application role can write it (granted to ${r.grantees}): one tenant could change what every tenant reads.`,
      fix: `REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLE ${r.name} FROM ${r.grantees};`,
    }));
}

async function unregisteredTables(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<{
    name: string;
    kind: string;
    rls: boolean;
    forced: boolean;
    policy_for_app: boolean;
    grantees: string | null;
    truncaters: string | null;
  }>(
    scope,
    `SELECT format('%I.%I', n.nspname, c.relname) AS name, c.relkind AS kind, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
            EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND ${policyAppliesToAppSql('p')}) AS policy_for_app,
            ${appGranteesSql(tableAclItems('c'), 'true', 'c.relowner')} AS grantees,
            ${appGranteesSql(tableAclItems('c'), `x.privilege_type = 'TRUNCATE'`, 'c.relowner')} AS truncaters
       FROM pg_class c JOIN data_schema n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'f')
        AND c.oid NOT IN (SELECT relid FROM registry) AND c.oid NOT IN (SELECT oid FROM tenant_table)
      ORDER BY 1`,
  );
  const findings: Finding[] = [];
  for (const t of rows) {
    // without RLS (or through a policy) any privilege reaches rows; TRUNCATE reaches them regardless
    const openTo =
      t.kind === 'f'
        ? 'it is a foreign table, without row level security'
        : !t.rls
          ? 'row level security is disabled'
          : t.policy_for_app
            ? 'a policy lets the app in'
            : null;
    const via =
      t.grantees !== null && openTo !== null
        ? openTo
        : t.truncaters !== null
          ? 'TRUNCATE ignores row level security'
          : null;
    if (via !== null) {
      findings.push({
        code: 'UNREGISTERED_TABLE_REACHABLE',
        severity: 'error',
        object: t.name,
        message: `${t.name} is not registered with Tenantry, yet the application role can reach it (granted to ${t.grantees}; ${via}). If the app needs it, register it instead: SELECT tenantry.register_global_table(${quoteLiteral(t.name)}) or tenantry.register_tenant_table(...).`,
        fix: `REVOKE ALL ON TABLE ${t.name} FROM ${t.grantees};`,
      });
    }
    if (t.kind !== 'f' && (!t.rls || !t.forced)) {
      findings.push({
        code: 'UNREGISTERED_TABLE_NOT_FORCED',
        severity: 'warning',
        object: t.name,
        message: `Unregistered table ${t.name} does not have row level security ${t.rls ? 'forced' : 'enabled and forced'}: Tenantry's event trigger locks every new table this way (created before install, or changed since?).`,
        fix: `ALTER TABLE ${t.name} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;`,
      });
    }
  }
  return findings;
}
