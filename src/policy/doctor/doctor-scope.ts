import type pg from 'pg';
import type { Finding } from './finding.js';

/** One row of `tenantry.registered_tables`, read once per run. */
export interface RegisteredTable {
  relid: number;
  kind: 'tenant' | 'global';
  tenantColumn: string | null;
  writable: boolean;
  /** `tenantry.registered_tables.pinned`: the table stays in its database when a tenant moves (false before the column existed). */
  pinned: boolean;
  /** False when the table was dropped and the registry row stayed behind. */
  present: boolean;
}

/** What every check needs: the connection, the roles and schemas under audit, the registry. */
export interface DoctorScope {
  db: pg.ClientBase;
  /** `quote_ident(current_database())`. */
  databaseSql: string;
  installed: boolean;
  /** The application role's name, when it is known and exists. */
  appRole: string | undefined;
  /** The app role quoted for SQL, or a placeholder when unknown. */
  appSql: string;
  ownerRole: string | undefined;
  /** The support role recorded by install (`--support-role`), when there is one and it exists. */
  supportRole: string | undefined;
  /** The owner role quoted for SQL, or a placeholder when unknown. */
  ownerSql: string;
  contextMode: string | undefined;
  /** Everything `tenantry.meta` records, as read (role names whether or not the roles exist). */
  meta: ReadonlyMap<string, string>;
  dataSchemas: string[];
  /**
   * Schemas the app role can use (USAGE directly, through PUBLIC or a role it is a member of)
   * that are not data schemas, nor Tenantry's, PostgreSQL's or an extension's own: audited like
   * data schemas, since a table there is as reachable as one in a declared schema.
   */
  undeclaredSchemas: string[];
  /**
   * The data schemas recorded by install (`tenantry.meta` `data_schemas`, default `public`),
   * whatever schemas this run audits: where the shared tables are that a tenant schema must mirror.
   */
  installedDataSchemas: string[];
  registry: RegisteredTable[];
}

/** A family of checks: reads the catalog, returns what it found. */
export type DoctorCheck = (scope: DoctorScope) => Promise<Finding[]>;

/** Options of {@link loadScope}: the same as `runDoctor`'s. */
export interface ScopeOptions {
  appRole?: string | undefined;
  schemas?: string[] | undefined;
}

/**
 * Reads `tenantry.meta` and the registry, and returns the scope plus the findings that stop
 * the audit from being complete (Tenantry not installed, app role missing).
 */
export async function loadScope(
  db: pg.ClientBase,
  options: ScopeOptions,
): Promise<{ scope: DoctorScope; findings: Finding[] }> {
  const findings: Finding[] = [];
  const head = await db.query<{ database_sql: string; meta: boolean; registry: boolean }>(
    `SELECT quote_ident(current_database()) AS database_sql,
            to_regclass('tenantry.meta') IS NOT NULL AS meta,
            to_regclass('tenantry.registered_tables') IS NOT NULL AS registry`,
  );
  const { database_sql: databaseSql, meta: installed, registry: hasRegistry } = head.rows[0]!;
  const meta = new Map<string, string>();
  if (installed) {
    for (const row of (await db.query<{ key: string; value: string }>('SELECT key, value FROM tenantry.meta')).rows)
      meta.set(row.key, row.value);
  } else {
    findings.push({
      code: 'TENANTRY_NOT_INSTALLED',
      severity: 'error',
      object: databaseSql,
      message:
        'Tenantry is not installed in this database (no tenantry.meta): there is no app role, registry or policy function to audit against.',
      fix: 'tenantry install',
    });
  }
  const registry: RegisteredTable[] = hasRegistry
    ? (
        await db.query<{
          relid: number;
          kind: 'tenant' | 'global';
          tenant_column: string | null;
          writable: boolean;
          pinned: boolean;
          present: boolean;
        }>(
          // pinned through to_jsonb: a registry installed before the column existed has none
          `SELECT r.relid::oid AS relid, r.kind, r.tenant_column::text AS tenant_column, r.writable,
                  coalesce((to_jsonb(r) ->> 'pinned')::boolean, false) AS pinned, c.oid IS NOT NULL AS present
             FROM tenantry.registered_tables r LEFT JOIN pg_class c ON c.oid = r.relid::oid ORDER BY 1`,
        )
      ).rows.map((r) => ({
        relid: r.relid,
        kind: r.kind,
        tenantColumn: r.tenant_column,
        writable: r.writable,
        pinned: r.pinned,
        present: r.present,
      }))
    : [];

  const wantedApp = options.appRole ?? meta.get('app_role');
  const ownerRole = meta.get('owner_role');
  const roles = await db.query<{ app_sql: string | null; app_exists: boolean; owner_sql: string | null }>(
    `SELECT quote_ident($1::text) AS app_sql, EXISTS (SELECT FROM pg_roles WHERE rolname = $1::text) AS app_exists, quote_ident($2::text) AS owner_sql`,
    [wantedApp ?? null, ownerRole ?? null],
  );
  const { app_sql: appSql, app_exists: appExists, owner_sql: ownerSql } = roles.rows[0]!;
  if (wantedApp !== undefined && !appExists) {
    findings.push({
      code: 'APP_ROLE_MISSING',
      severity: 'error',
      object: wantedApp,
      message: `The application role ${wantedApp} does not exist: the checks of the app role's attributes and privileges were skipped.`,
      fix: `tenantry install --app-role ${wantedApp}`,
    });
  }
  const wantedSupport = meta.get('support_role') || undefined;
  const supportExists =
    wantedSupport !== undefined &&
    (await db.query('SELECT FROM pg_roles WHERE rolname = $1', [wantedSupport])).rowCount === 1;
  const recorded = meta
    .get('data_schemas')
    ?.split(',')
    .filter((s) => s.length > 0);
  const installedDataSchemas = recorded && recorded.length > 0 ? recorded : ['public'];
  const schemas = options.schemas ?? recorded ?? ['public'];
  const undeclaredSchemas = appExists
    ? (
        await db.query<{ nspname: string }>(
          `SELECT n.nspname FROM pg_namespace n
            WHERE n.nspname <> ALL ($2::name[])
              AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'tenantry', 'tenantry_private')
              AND n.nspname !~ '^pg_(toast_)?temp_'
              -- a schema an extension created holds the extension's objects, not the application's
              AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
              AND EXISTS (SELECT FROM aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) x
                           WHERE x.privilege_type = 'USAGE'
                             AND (x.grantee = 0 OR pg_has_role($1::name, x.grantee, 'MEMBER')))
            ORDER BY 1`,
          [wantedApp, schemas],
        )
      ).rows.map((r) => r.nspname)
    : [];
  return {
    findings,
    scope: {
      db,
      databaseSql,
      installed,
      appRole: appExists ? wantedApp : undefined,
      appSql: appSql ?? '<app role>',
      ownerRole,
      supportRole: supportExists ? wantedSupport : undefined,
      ownerSql: ownerSql ?? '<owner role>',
      contextMode: meta.get('context_mode'),
      meta,
      dataSchemas: schemas,
      undeclaredSchemas,
      installedDataSchemas,
      registry,
    },
  };
}

/**
 * Common table expressions every check query starts with. Values travel as parameters $1-$6:
 *  - `registry(relid, kind, tenant_column, writable)`: the registry rows whose table exists;
 *  - `data_schema` (the data schemas and the undeclared schemas the app can use), `scope_schema`
 *    (those plus `tenantry` and `tenantry_private`);
 *  - `app(oid, rolname)`: the application role, empty when unknown;
 *  - `tenant_table`: registered tenant tables, plus unregistered tables of the data schemas
 *    (not partitions) that have a `tenant_id` column, with their tenant column's attnum.
 */
const SCOPE_CTE = `
WITH registry AS (
  SELECT r.relid, r.kind, r.tenant_column, r.writable
    FROM unnest($1::oid[], $2::text[], $3::name[], $4::boolean[]) AS r(relid, kind, tenant_column, writable)
   WHERE EXISTS (SELECT FROM pg_class c WHERE c.oid = r.relid)
),
data_schema AS (SELECT n.oid, n.nspname FROM pg_namespace n WHERE n.nspname = ANY ($5::name[])),
scope_schema AS (SELECT n.oid, n.nspname FROM pg_namespace n WHERE n.nspname = ANY ($5::name[]) OR n.nspname IN ('tenantry', 'tenantry_private')),
app AS (SELECT r.oid, r.rolname FROM pg_roles r WHERE r.rolname = $6::name),
tenant_table AS (
  SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS name,
         coalesce(g.tenant_column, 'tenant_id')::text AS tenant_column,
         quote_ident(coalesce(g.tenant_column, 'tenant_id')) AS tenant_sql,
         a.attnum AS tenant_attnum, g.relid IS NOT NULL AS registered
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN registry g ON g.relid = c.oid
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = coalesce(g.tenant_column, 'tenant_id') AND a.attnum > 0 AND NOT a.attisdropped
   WHERE c.relkind IN ('r', 'p')
     AND (g.kind = 'tenant'
          OR (g.relid IS NULL AND n.oid IN (SELECT oid FROM data_schema) AND NOT c.relispartition AND a.attnum IS NOT NULL))
)`;

/** Runs `sql` (which may use the scope CTEs; its own parameters start at $7) and returns its rows. */
export async function scopedRows<R extends object>(
  scope: DoctorScope,
  sql: string,
  params: unknown[] = [],
): Promise<R[]> {
  const present = scope.registry.filter((r) => r.present);
  const result = await scope.db.query<R>(`${SCOPE_CTE}\n${sql}`, [
    present.map((r) => r.relid),
    present.map((r) => r.kind),
    present.map((r) => r.tenantColumn),
    present.map((r) => r.writable),
    [...scope.dataSchemas, ...scope.undeclaredSchemas],
    scope.appRole ?? null,
    ...params,
  ]);
  return result.rows;
}

/** SQL: a row source of the ACL items of table `alias` (pg_class), column grants included. */
export function tableAclItems(alias: string): string {
  return `(SELECT x.* FROM aclexplode(coalesce(${alias}.relacl, acldefault('r', ${alias}.relowner))) x
           UNION ALL
           SELECT x.* FROM pg_attribute a, aclexplode(a.attacl) x WHERE a.attrelid = ${alias}.oid AND a.attacl IS NOT NULL)`;
}

/**
 * SQL expression: the grantees (quoted, `PUBLIC` for everyone) through which the app role holds
 * a privilege matching `filter` (over ACL items `x`), or NULL when it holds none. A role the app
 * is a member of counts even without INHERIT, since the app can `SET ROLE` to it. The object's
 * owner is left out: ownership is reported by the role checks.
 */
export function appGranteesSql(items: string, filter: string, ownerExpr: string): string {
  return `(SELECT string_agg(g.name, ', ' ORDER BY g.name) FROM (
     SELECT DISTINCT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END AS name
       FROM ${items} AS x
      WHERE (${filter}) AND x.grantee <> ${ownerExpr}
        AND (x.grantee = 0 OR pg_has_role((SELECT oid FROM app), x.grantee, 'MEMBER'))) g)`;
}

/** SQL condition: policy `alias` (pg_policy) applies to the app role (or to PUBLIC). */
export function policyAppliesToAppSql(alias: string): string {
  return `(0 = ANY (${alias}.polroles) OR EXISTS (SELECT FROM unnest(${alias}.polroles) pr(oid) WHERE pg_has_role((SELECT oid FROM app), pr.oid, 'MEMBER')))`;
}
