import type { Finding } from './finding.js';
import { appGranteesSql, scopedRows, tableAclItems, type DoctorScope } from './doctor-scope.js';
import { quoteLiteral } from '../identifiers.js';

interface TenantTableRow {
  name: string;
  registered: boolean;
  tenant_column: string;
  tenant_sql: string;
  has_column: boolean;
  is_uuid: boolean;
  type: string | null;
  not_null: boolean;
  rls: boolean;
  forced: boolean;
  has_policy: boolean;
  has_index: boolean;
  reachable_by: string | null;
}

/**
 * Tenant tables (registered ones, and tables of the data schemas with a `tenant_id` column):
 * registered, tenant column present, uuid and NOT NULL, RLS enabled and forced, a policy, and an
 * index led by the tenant column. For an unregistered table the missing policy and index are not
 * reported on their own: registering it creates both.
 */
export async function checkTenantTables(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<TenantTableRow>(
    scope,
    `SELECT t.name, t.registered, t.tenant_column, t.tenant_sql, t.tenant_attnum IS NOT NULL AS has_column,
            coalesce(a.atttypid = 'uuid'::regtype, false) AS is_uuid, format_type(a.atttypid, a.atttypmod) AS type,
            coalesce(a.attnotnull, false) AS not_null, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
            EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = t.oid) AS has_policy,
            EXISTS (SELECT FROM pg_index i WHERE i.indrelid = t.oid AND i.indisvalid AND i.indkey[0] = t.tenant_attnum) AS has_index,
            ${appGranteesSql(tableAclItems('c'), 'true', 'c.relowner')} AS reachable_by
       FROM tenant_table t
       JOIN pg_class c ON c.oid = t.oid
       LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = t.tenant_attnum
      ORDER BY t.name`,
  );
  return rows.flatMap((t) => tableFindings(t));
}

function tableFindings(t: TenantTableRow): Finding[] {
  const findings: Finding[] = [];
  const add = (code: Finding['code'], severity: Finding['severity'], object: string, message: string, fix: string) =>
    findings.push({ code, severity, object, message, fix });
  const column = `${t.name}.${t.tenant_sql}`;
  const register =
    t.tenant_column === 'tenant_id'
      ? `SELECT tenantry.register_tenant_table(${quoteLiteral(t.name)});`
      : `SELECT tenantry.register_tenant_table(${quoteLiteral(t.name)}, ${quoteLiteral(t.tenant_column)});`;

  if (!t.registered) {
    const reach =
      t.reachable_by === null
        ? 'the app role has no privilege on it yet'
        : `the app role can already reach it (granted to ${t.reachable_by})`;
    add(
      'TENANT_TABLE_UNREGISTERED',
      'error',
      t.name,
      `${t.name} has a ${t.tenant_column} column but is not registered as a tenant table, so it has no Tenantry isolation policy; ${reach}.`,
      register,
    );
  }
  if (!t.has_column) {
    add(
      'TENANT_COLUMN_MISSING',
      'error',
      t.name,
      `${t.name} is registered as a tenant table with tenant column ${t.tenant_column}, but has no such column (renamed or dropped).`,
      `SELECT tenantry.register_tenant_table(${quoteLiteral(t.name)}, '<tenant column>');`,
    );
    return findings;
  }
  if (!t.is_uuid) {
    add(
      'TENANT_COLUMN_NOT_UUID',
      'error',
      column,
      `${column} is of type ${t.type}, not uuid: Tenantry's policies compare it with a uuid.`,
      `ALTER TABLE ${t.name} ALTER COLUMN ${t.tenant_sql} TYPE uuid USING ${t.tenant_sql}::uuid;`,
    );
  }
  if (!t.not_null) {
    add(
      'TENANT_COLUMN_NULLABLE',
      'error',
      column,
      `${column} allows NULL: a row without a tenant belongs to nobody, and no policy can place it.`,
      `ALTER TABLE ${t.name} ALTER COLUMN ${t.tenant_sql} SET NOT NULL;`,
    );
  }
  if (!t.rls) {
    add(
      'TENANT_TABLE_RLS_DISABLED',
      'error',
      t.name,
      `Row level security is disabled on ${t.name}: its policies are ignored and every role with a grant sees every tenant's rows.`,
      `ALTER TABLE ${t.name} ENABLE ROW LEVEL SECURITY;`,
    );
  }
  if (!t.forced) {
    add(
      'TENANT_TABLE_RLS_NOT_FORCED',
      'error',
      t.name,
      `Row level security is not forced on ${t.name}: its owner (and any role acting as the owner) skips the policies.`,
      `ALTER TABLE ${t.name} FORCE ROW LEVEL SECURITY;`,
    );
  }
  if (t.registered && !t.has_policy) {
    add(
      'TENANT_TABLE_NO_POLICY',
      'error',
      t.name,
      `${t.name} is registered as a tenant table but has no policy: the app sees no row at all (and any policy added later decides alone).`,
      register,
    );
  }
  if (t.registered && !t.has_index) {
    add(
      'TENANT_INDEX_MISSING',
      'warning',
      t.name,
      `No valid index on ${t.name} starts with ${t.tenant_column}: every query filtered by the policy scans the whole table.`,
      `CREATE INDEX ON ${t.name} (${t.tenant_sql});`,
    );
  }
  return findings;
}
