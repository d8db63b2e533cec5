import type { Finding } from './finding.js';
import type { DoctorScope } from './doctor-scope.js';
import { quoteLiteral } from '../identifiers.js';

/**
 * Schema-tier tenants (docs/tiers.md): a tenant in its own schema runs with the search path
 * `"t_x"` alone, so an unqualified name its schema lacks (a migration that did not reach it)
 * fails (42P01): every statement of the tenant on that table is refused. (Before, the path ended
 * in the data schemas and the name resolved to the shared table, where the route check passes
 * and RLS admits the tenant's own rows: a router given `extensionSchemas` holding tenant tables
 * still would.) For every
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
    message: `Tenant schema ${r.schema} has no table ${r.table_name}, which ${r.shared_name} (a registered tenant table) has: every statement of the tenant on ${r.table_name} fails (42P01; it never reaches the shared table, the tenant's search path holding its own schema alone). A migration did not reach this schema.`,
    fix: 'tenantry migrate (brings every tenant schema to the latest version; tenantry migrate status --behind lists the ones behind)',
  }));
}

/**
 * The guard of each tenant schema (tiers/003, docs/security.md): every registered tenant table of
 * a schema that belongs to a tenant (`tenantry.tenant_schemas`, or the schema of a tenant placed
 * here, `tenantry.local_tenants.schema`) must carry the validated CHECK constraint
 * `tenantry_schema_tenant` binding its tenant column to that tenant. Without it, SQL injected
 * under another tenant can insert its own rows into this tenant's schema by naming it.
 */
export async function checkTenantSchemaGuards(scope: DoctorScope): Promise<Finding[]> {
  if (!scope.installed) return [];
  const tables = scope.registry.filter((r) => r.present && r.kind === 'tenant' && r.tenantColumn !== null);
  if (tables.length === 0) return [];
  const { rows: present } = await scope.db.query<{ local: boolean; claimed: boolean }>(
    `SELECT to_regclass('tenantry.local_tenants') IS NOT NULL AS local, to_regclass('tenantry.tenant_schemas') IS NOT NULL AS claimed`,
  );
  if (!present[0]?.local) return [];
  const claimed = present[0].claimed
    ? `SELECT s.schema, s.tenant_id, 0 AS pref FROM tenantry.tenant_schemas s
        WHERE s.schema_oid = to_regnamespace(quote_ident(s.schema)) UNION ALL`
    : '';
  const { rows } = await scope.db.query<{
    schema: string;
    object: string;
    tenant: string;
    column: string;
    def: string | null;
    validated: boolean | null;
    expected: string;
  }>(
    `WITH owner AS (
       SELECT DISTINCT ON (x.schema) x.schema, x.tenant_id FROM (
         ${claimed}
         SELECT l.schema, l.tenant_key::uuid AS tenant_id, CASE WHEN l.state = 'active' THEN 1 ELSE 2 END AS pref FROM tenantry.local_tenants l
          WHERE l.schema IS NOT NULL) x
        ORDER BY x.schema, x.pref
     )
     SELECT o.schema, format('%I.%I', n.nspname, c.relname) AS object, o.tenant_id::text AS tenant, r.col AS column,
            con.def, con.convalidated AS validated, format('CHECK ((%I = %L::uuid))', r.col, o.tenant_id) AS expected
       FROM owner o
       JOIN pg_namespace n ON n.nspname = o.schema
       JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
       JOIN unnest($1::oid[], $2::name[]) AS r(relid, col) ON r.relid = c.oid
       LEFT JOIN LATERAL (
         SELECT k.convalidated, pg_get_constraintdef(k.oid) AS def FROM pg_constraint k
          WHERE k.conrelid = c.oid AND k.conname = 'tenantry_schema_tenant') con ON true
      ORDER BY 1, 2`,
    [tables.map((t) => t.relid), tables.map((t) => t.tenantColumn)],
  );
  const findings: Finding[] = [];
  for (const r of rows) {
    const bound = r.def !== null && r.def.replace(/ NOT VALID$/, '') === r.expected;
    if (bound && r.validated) continue;
    let why: string;
    let fix = `SELECT tenantry.guard_tenant_schema(${quoteLiteral(r.schema)});`;
    if (r.def === null) why = 'has no tenant guard';
    else if (!bound) why = "has a tenant guard that does not bind its tenant column to the schema's tenant";
    else {
      const { rows: foreign } = await scope.db.query<{ any: boolean }>(
        `SELECT EXISTS (SELECT FROM ${r.object} WHERE ${quoteIdent(r.column)} <> $1::uuid) AS any`,
        [r.tenant],
      );
      why = foreign[0]?.any
        ? 'holds rows of another tenant (its guard stays NOT VALID: new ones are refused)'
        : 'has a tenant guard not validated yet';
      if (foreign[0]?.any)
        fix = `Inspect and delete the rows of other tenants (as the owner), then ${fix} (their count is not shown here)`;
    }
    findings.push({
      code: 'TENANT_SCHEMA_UNGUARDED',
      severity: 'error',
      object: r.object,
      message: `${r.object}, a tenant table of schema ${r.schema} (tenant ${r.tenant}), ${why}: SQL injected under another tenant could insert that tenant's own rows into this schema by naming it (RLS admits a row of the current tenant wherever it is).`,
      fix,
    });
  }
  return findings;
}

// any column name (the registry's), quoted as PostgreSQL's quote_ident would: not the validating quoteIdent of identifiers.ts
function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
