import type { Finding } from './finding.js';
import { scopedRows, type DoctorScope } from './doctor-scope.js';

const ATTRIBUTES = [
  {
    column: 'rolsuper',
    code: 'APP_ROLE_SUPERUSER',
    clause: 'NOSUPERUSER',
    why: 'is a superuser: it skips every row level security policy',
  },
  {
    column: 'rolbypassrls',
    code: 'APP_ROLE_BYPASSRLS',
    clause: 'NOBYPASSRLS',
    why: 'has BYPASSRLS: it skips every row level security policy',
  },
  {
    column: 'rolcreaterole',
    code: 'APP_ROLE_CREATEROLE',
    clause: 'NOCREATEROLE',
    why: 'has CREATEROLE: it can create or (before PostgreSQL 16) grant itself roles that bypass row level security',
  },
  {
    column: 'rolreplication',
    code: 'APP_ROLE_REPLICATION',
    clause: 'NOREPLICATION',
    why: "has REPLICATION: it can stream every tenant's rows through a replication slot",
  },
] as const;

/**
 * The application role itself: it must not be the owner role, a superuser, BYPASSRLS,
 * CREATEROLE or REPLICATION, must own nothing the application uses, and must not be a member
 * of a role that is or does any of that (a member can `SET ROLE`, even without INHERIT).
 */
export async function checkAppRole(scope: DoctorScope): Promise<Finding[]> {
  const app = scope.appRole;
  if (app === undefined) return [];
  const findings: Finding[] = [];
  if (app === scope.ownerRole) {
    findings.push({
      code: 'APP_ROLE_IS_OWNER',
      severity: 'error',
      object: app,
      message: `The audited application role ${app} is the Tenantry owner role: it owns the tables (owners skip row level security unless forced) and has BYPASSRLS.`,
      fix: 'Connect the application as the app role recorded in tenantry.meta (key app_role), never as the owner role.',
    });
  }
  const [attributes] = await scopedRows<Record<(typeof ATTRIBUTES)[number]['column'], boolean>>(
    scope,
    'SELECT rolsuper, rolbypassrls, rolcreaterole, rolreplication FROM pg_roles WHERE oid = (SELECT oid FROM app)',
  );
  for (const a of ATTRIBUTES) {
    if (!attributes?.[a.column]) continue;
    findings.push({
      code: a.code,
      severity: 'error',
      object: app,
      message: `The application role ${app} ${a.why}.`,
      fix: `ALTER ROLE ${scope.appSql} ${a.clause};`,
    });
  }
  findings.push(
    ...(await ownedObjects(scope, app)),
    ...(await privilegedMemberships(scope, app)),
    ...(await sessionDefaults(scope, app)),
  );
  return findings;
}

/** The defaults `tenantry install` stores for the app role (its timeouts); tenantry.context has a check of its own. */
const INSTALLED_DEFAULTS = new Set([
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
  'tenantry.context',
]);

/**
 * Defaults stored for the app role besides install's timeouts (`ALTER ROLE … SET`): they reach
 * every new session of every tenant. PostgreSQL lets a role change its own, so SQL run as the app
 * role (a tenant's injected `DO` block: a TenantPool refuses a plain ALTER ROLE) can plant
 * `extra_float_digits`, `default_transaction_read_only`, a `search_path`… Names only (values may
 * be anything).
 */
async function sessionDefaults(scope: DoctorScope, app: string): Promise<Finding[]> {
  const rows = await scopedRows<{ name: string; in_database: boolean }>(
    scope,
    `SELECT DISTINCT lower(split_part(c, '=', 1)) AS name, s.setdatabase <> 0 AS in_database
       FROM pg_db_role_setting s, unnest(s.setconfig) c
      WHERE s.setrole = (SELECT oid FROM app)
        AND (s.setdatabase = 0 OR s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()))
      ORDER BY 1`,
  );
  const extra = rows.filter((r) => !INSTALLED_DEFAULTS.has(r.name));
  if (extra.length === 0) return [];
  const names = [...new Set(extra.map((r) => r.name))];
  return [
    {
      code: 'APP_ROLE_SESSION_DEFAULTS',
      severity: 'warning',
      object: app,
      message: `Defaults stored for the application role ${app} reach every tenant's new sessions: ${names.join(', ')}. Install stores only its timeouts; SQL run as the app role can set its own defaults (ALTER ROLE current_user SET …, e.g. from a DO block), so check who set these.`,
      // one RESET per place a name is stored (for the role everywhere, for it in this database)
      fix: extra
        .map((r) =>
          r.in_database
            ? `ALTER ROLE ${scope.appSql} IN DATABASE ${scope.databaseSql} RESET ${r.name};`
            : `ALTER ROLE ${scope.appSql} RESET ${r.name};`,
        )
        .join(' '),
    },
  ];
}

async function ownedObjects(scope: DoctorScope, app: string): Promise<Finding[]> {
  const rows = await scopedRows<{ kind: string; name: string }>(
    scope,
    `SELECT kind, name FROM (
       SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                             WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END AS kind,
              format('%I.%I', n.nspname, c.relname) AS name
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relowner = (SELECT oid FROM app)
          AND (n.oid IN (SELECT oid FROM scope_schema) OR c.oid IN (SELECT relid FROM registry))
       UNION ALL
       SELECT 'SCHEMA', quote_ident(n.nspname) FROM scope_schema s JOIN pg_namespace n ON n.oid = s.oid
        WHERE n.nspowner = (SELECT oid FROM app)
       UNION ALL
       SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
              format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.proowner = (SELECT oid FROM app) AND n.oid IN (SELECT oid FROM scope_schema)
       UNION ALL
       SELECT 'DATABASE', quote_ident(d.datname) FROM pg_database d
        WHERE d.datname = current_database() AND d.datdba = (SELECT oid FROM app)
     ) o ORDER BY kind, name`,
  );
  return rows.map((r) => ({
    code: 'APP_ROLE_OWNS_OBJECT',
    severity: 'error',
    object: r.name,
    message: `The application role ${app} owns ${r.kind.toLowerCase()} ${r.name}: an owner skips row level security (unless forced), can disable it, and can change grants and policies.`,
    fix: `ALTER ${r.kind} ${r.name} OWNER TO ${scope.ownerSql};`,
  }));
}

async function privilegedMemberships(scope: DoctorScope, app: string): Promise<Finding[]> {
  const rows = await scopedRows<{ granted: string; granted_name: string; via: string; why: string }>(
    scope,
    `, privileged AS (
       SELECT r.oid, r.rolname,
              CASE WHEN r.rolsuper THEN 'is a superuser'
                   WHEN r.rolbypassrls THEN 'bypasses row level security'
                   WHEN r.rolname = $7::name THEN 'is the Tenantry owner role'
                   WHEN r.oid = (SELECT datdba FROM pg_database WHERE datname = current_database()) THEN 'owns the database'
                   ELSE 'owns tables, schemas or functions the application uses' END AS why
         FROM pg_roles r
        WHERE r.rolsuper OR r.rolbypassrls OR r.rolname = $7::name
           OR r.oid = (SELECT datdba FROM pg_database WHERE datname = current_database())
           OR r.oid IN (SELECT c.relowner FROM pg_class c
                         WHERE c.relnamespace IN (SELECT oid FROM scope_schema) OR c.oid IN (SELECT relid FROM registry))
           OR r.oid IN (SELECT n.nspowner FROM pg_namespace n WHERE n.oid IN (SELECT oid FROM scope_schema))
           OR r.oid IN (SELECT p.proowner FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM scope_schema))
     )
     SELECT quote_ident(g.rolname) AS granted, g.rolname AS granted_name, w.via, w.why
       FROM (SELECT DISTINCT m.roleid FROM pg_auth_members m WHERE m.member = (SELECT oid FROM app)) m
       JOIN pg_roles g ON g.oid = m.roleid
       CROSS JOIN LATERAL (
         SELECT p.rolname AS via, p.why FROM privileged p
          WHERE pg_has_role(g.oid, p.oid, 'MEMBER')
          ORDER BY p.oid = g.oid DESC, p.rolname LIMIT 1) w
      ORDER BY 1`,
    [scope.ownerRole ?? null],
  );
  return rows.map((r) => ({
    code: 'APP_ROLE_MEMBER_OF_PRIVILEGED_ROLE',
    severity: 'error',
    object: r.granted_name,
    message:
      r.via === r.granted_name
        ? `The application role ${app} is a member of ${r.granted}, which ${r.why}: the app can SET ROLE to it and skip row level security.`
        : `The application role ${app} is a member of ${r.granted}, itself a member of ${r.via}, which ${r.why}: the app can SET ROLE to it and skip row level security.`,
    fix: `REVOKE ${r.granted} FROM ${scope.appSql};`,
  }));
}
