import type { Finding, FindingCode } from './finding.js';
import { appGranteesSql, scopedRows, tableAclItems, type DoctorScope } from './doctor-scope.js';

const TABLE_PRIVILEGES: { privilege: string; code: FindingCode; why: string }[] = [
  {
    privilege: 'TRUNCATE',
    code: 'APP_CAN_TRUNCATE',
    why: "TRUNCATE ignores row level security: the app can empty every tenant's rows at once",
  },
  {
    privilege: 'REFERENCES',
    code: 'APP_CAN_REFERENCE',
    why: "foreign key checks ignore row level security: a referencing table answers whether another tenant's key exists",
  },
  {
    privilege: 'TRIGGER',
    code: 'APP_CAN_TRIGGER',
    why: "a trigger runs on every tenant's writes: the app could copy other tenants' rows out",
  },
];

/**
 * Privileges the app role must never hold: TRUNCATE, REFERENCES and TRIGGER on registered and
 * tenant tables, CREATE on the data and Tenantry schemas, and anything in `tenantry_private`.
 */
export async function checkPrivileges(scope: DoctorScope): Promise<Finding[]> {
  return [
    ...(await tablePrivileges(scope)),
    ...(await schemaPrivileges(scope)),
    ...(await privateObjects(scope)),
    ...(await temporaryObjects(scope)),
  ];
}

// Temporary relations come first on the search path: a temp table or view named like a tenant
// table, planted by injected SQL in a pooled session, captures the next borrower's rows.
async function temporaryObjects(scope: DoctorScope): Promise<Finding[]> {
  if (!scope.appRole) return [];
  const { rows } = await scope.db.query<{ temp: boolean }>(
    `SELECT has_database_privilege($1, current_database(), 'TEMPORARY') AS temp`,
    [scope.appRole],
  );
  if (!rows[0]?.temp) return [];
  return [
    {
      code: 'APP_CAN_CREATE_TEMP',
      severity: 'error',
      object: scope.databaseSql,
      message: `The application role can create temporary tables and views in database ${scope.databaseSql}: they shadow tenant tables for the rest of a pooled session, so injected SQL could capture another tenant's rows.`,
      fix: `REVOKE TEMPORARY ON DATABASE ${scope.databaseSql} FROM PUBLIC, ${scope.appSql};`,
    },
  ];
}

async function tablePrivileges(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<{ name: string; privilege: string; grantees: string | null }>(
    scope,
    `SELECT t.name, p.privilege, ${appGranteesSql(tableAclItems('c'), 'x.privilege_type = p.privilege', 'c.relowner')} AS grantees
       FROM (SELECT oid, name FROM tenant_table
             UNION
             SELECT c.oid, format('%I.%I', n.nspname, c.relname) FROM registry r
               JOIN pg_class c ON c.oid = r.relid JOIN pg_namespace n ON n.oid = c.relnamespace) t
       JOIN pg_class c ON c.oid = t.oid
      CROSS JOIN unnest($7::text[]) AS p(privilege)
      ORDER BY t.name, p.privilege`,
    [TABLE_PRIVILEGES.map((p) => p.privilege)],
  );
  return rows
    .filter((r) => r.grantees !== null)
    .map((r) => {
      const p = TABLE_PRIVILEGES.find((x) => x.privilege === r.privilege)!;
      return {
        code: p.code,
        severity: 'error' as const,
        object: r.name,
        message: `The application role can ${r.privilege} ${r.name} (granted to ${r.grantees}): ${p.why}.`,
        fix: `REVOKE ${r.privilege} ON TABLE ${r.name} FROM ${r.grantees};`,
      };
    });
}

async function schemaPrivileges(scope: DoctorScope): Promise<Finding[]> {
  const items = `aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner)))`;
  const rows = await scopedRows<{ name: string; creators: string | null; users: string | null }>(
    scope,
    `SELECT quote_ident(n.nspname) AS name,
            ${appGranteesSql(items, `x.privilege_type = 'CREATE'`, 'n.nspowner')} AS creators,
            CASE WHEN n.nspname = 'tenantry_private' THEN ${appGranteesSql(items, `x.privilege_type = 'USAGE'`, 'n.nspowner')} END AS users
       FROM pg_namespace n WHERE n.oid IN (SELECT oid FROM scope_schema)
      ORDER BY 1`,
  );
  const findings: Finding[] = [];
  for (const r of rows) {
    if (r.creators !== null) {
      findings.push({
        code: 'APP_CAN_CREATE_IN_SCHEMA',
        severity: 'error',
        object: r.name,
        message: `The application role can create objects in schema ${r.name} (granted to ${r.creators}): it would own them, and could shadow names that functions resolve through search_path.`,
        fix: `REVOKE CREATE ON SCHEMA ${r.name} FROM ${r.creators};`,
      });
    }
    if (r.users !== null) {
      findings.push({
        code: 'PRIVATE_SCHEMA_REACHABLE',
        severity: 'error',
        object: r.name,
        message: `The application role has USAGE on schema tenantry_private (granted to ${r.users}), where the context signing key lives.`,
        fix: `REVOKE ALL ON SCHEMA tenantry_private FROM ${r.users};`,
      });
    }
  }
  return findings;
}

async function privateObjects(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<{ kind: string; name: string; grantees: string | null }>(
    scope,
    `SELECT CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind, format('tenantry_private.%I', c.relname) AS name,
            ${appGranteesSql(
              `(SELECT x.* FROM aclexplode(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) x
                UNION ALL SELECT x.* FROM pg_attribute a, aclexplode(a.attacl) x WHERE a.attrelid = c.oid AND a.attacl IS NOT NULL)`,
              'true',
              'c.relowner',
            )} AS grantees
       FROM pg_class c WHERE c.relnamespace = to_regnamespace('tenantry_private') AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
     UNION ALL
     SELECT 'ROUTINE', format('tenantry_private.%I(%s)', p.proname, pg_get_function_identity_arguments(p.oid)),
            ${appGranteesSql(`aclexplode(coalesce(p.proacl, acldefault('f', p.proowner)))`, 'true', 'p.proowner')}
       FROM pg_proc p WHERE p.pronamespace = to_regnamespace('tenantry_private')
      ORDER BY 2`,
  );
  return rows
    .filter((r) => r.grantees !== null)
    .map((r) => ({
      code: 'PRIVATE_OBJECT_REACHABLE' as const,
      severity: 'error' as const,
      object: r.name,
      message: `The application role has privileges on ${r.name} (granted to ${r.grantees}): nothing in tenantry_private may be reachable by the app.`,
      fix: `REVOKE ALL ON ${r.kind} ${r.name} FROM ${r.grantees};`,
    }));
}
