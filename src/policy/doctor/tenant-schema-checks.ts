import type { Finding } from './finding.js';
import type { DoctorScope } from './doctor-scope.js';

/**
 * Schema-tier tenants (docs/tiers.md): a tenant in its own schema runs with the search path
 * `"t_x", public`, so an unqualified name its schema lacks (a migration that did not reach it)
 * resolves to the shared table of the data schemas, where the route check passes (same database)
 * and RLS admits the tenant's own rows: its writes would land in the shared table. For every
 * schema of an active tenant placed in this database (`tenantry.local_tenants.schema`), every
 * registered tenant table of the installed data schemas must have its namesake in the tenant's
 * schema. Pinned tables are left out: they stay in the data schema by design.
 */
export async function checkTenantSchemas(scope: DoctorScope): Promise<Finding[]> {
  if (!scope.installed) return [];
  const shared = scope.registry.filter((r) => r.present && r.kind === 'tenant' && !r.pinned).map((r) => r.relid);
  if (shared.length === 0) return [];
  const { rows: present } = await scope.db.query<{ present: boolean }>(
    `SELECT to_regclass('tenantry.local_tenants') IS NOT NULL AS present`,
  );
  if (!present[0]?.present) return [];
  const { rows } = await scope.db.query<{ schema: string; object: string; table_name: string; shared_name: string }>(
    `WITH tenant_schema AS (
       SELECT DISTINCT l.schema FROM tenantry.local_tenants l WHERE l.schema IS NOT NULL AND l.state = 'active'
     ),
     shared AS (
       -- one per name: the first data schema on the search path is the one an unqualified name reaches
       SELECT DISTINCT ON (c.relname) c.relname, format('%I.%I', n.nspname, c.relname) AS shared_name
         FROM unnest($1::oid[]) AS r(relid)
         JOIN pg_class c ON c.oid = r.relid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY ($2::name[]) AND n.nspname NOT IN (SELECT schema FROM tenant_schema)
        ORDER BY c.relname, array_position($2::name[], n.nspname)
     )
     SELECT s.schema, format('%I.%I', s.schema, t.relname) AS object, quote_ident(t.relname) AS table_name, t.shared_name
       FROM tenant_schema s CROSS JOIN shared t
      WHERE NOT EXISTS (
        SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = s.schema AND c.relname = t.relname AND c.relkind IN ('r', 'p', 'v', 'm', 'f'))
      ORDER BY 1, 2`,
    [shared, scope.installedDataSchemas],
  );
  return rows.map((r) => ({
    code: 'SCHEMA_TENANT_TABLE_MISSING',
    severity: 'error',
    object: r.object,
    message: `Tenant schema ${r.schema} has no table ${r.table_name}, which ${r.shared_name} (a registered tenant table) has: the tenant's search path ends in the data schemas, so its unqualified writes to ${r.table_name} would land in the shared table ${r.shared_name}. A migration did not reach this schema.`,
    fix: 'tenantry migrate (brings every tenant schema to the latest version; tenantry migrate status --behind lists the ones behind)',
  }));
}
