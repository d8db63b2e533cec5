import type { Finding } from './finding.js';
import { appGranteesSql, scopedRows, type DoctorScope } from './doctor-scope.js';

/** Functions that create a large object: storage outside every tenant, without row level security. */
const LARGE_OBJECT_CREATORS = [
  'pg_catalog.lo_create(oid)',
  'pg_catalog.lo_creat(integer)',
  'pg_catalog.lo_from_bytea(oid, bytea)',
  'pg_catalog.lo_import(text)',
  'pg_catalog.lo_import(text, oid)',
];

/** Functions that signal another backend: PostgreSQL lets a role signal every session of its own role. */
const SIGNAL_FUNCTIONS = [
  'pg_catalog.pg_terminate_backend(integer, bigint)',
  'pg_catalog.pg_terminate_backend(integer)',
  'pg_catalog.pg_cancel_backend(integer)',
];

/** Definer functions that answer where tenants live: the router role's (tiers/002), never the app role's. */
const ROUTE_FUNCTIONS = ['tenantry.route_of(uuid)', 'tenantry.routes_since(bigint)'];

type Kind = 'creates' | 'signals' | 'routes';

/**
 * What the app role can do to other tenants without reading a row (docs/security.md, "What the
 * app role can still do"): create large objects (EXECUTE on the `lo_*` creators), and cancel or
 * terminate its sibling sessions, which serve other tenants (EXECUTE on `pg_cancel_backend` /
 * `pg_terminate_backend`, or membership of `pg_signal_backend`), and list where every tenant lives
 * (EXECUTE on the route functions, which belong to the router role). Locks without a bound (no
 * timeouts stored for the app role) are the install checks' APP_ROLE_TIMEOUTS_MISSING: taking an
 * ACCESS EXCLUSIVE lock on a tenant table is allowed by any UPDATE or DELETE grant, and
 * PostgreSQL cannot prevent it, only bound it.
 */
export async function checkLeastPrivilege(scope: DoctorScope): Promise<Finding[]> {
  if (!scope.appRole) return [];
  return executableFunctions(scope);
}

async function executableFunctions(scope: DoctorScope): Promise<Finding[]> {
  const kinds: [string, Kind][] = [
    ...LARGE_OBJECT_CREATORS.map((f): [string, Kind] => [f, 'creates']),
    ...SIGNAL_FUNCTIONS.map((f): [string, Kind] => [f, 'signals']),
    ...ROUTE_FUNCTIONS.map((f): [string, Kind] => [f, 'routes']),
  ];
  const rows = await scopedRows<{ signature: string; kind: Kind; grantees: string | null }>(
    scope,
    `SELECT f.signature, f.kind,
            ${appGranteesSql(`aclexplode(coalesce(p.proacl, acldefault('f', p.proowner)))`, `x.privilege_type = 'EXECUTE'`, 'p.proowner')} AS grantees
       FROM unnest($7::text[], $8::text[]) AS f(signature, kind)
       JOIN pg_proc p ON p.oid = to_regprocedure(f.signature)
      ORDER BY 1`,
    [kinds.map(([f]) => f), kinds.map(([, k]) => k)],
  );
  // the roles holding pg_signal_backend directly that the app role is (or is a member of)
  const [signaller] = await scopedRows<{ member: boolean; holders: string | null }>(
    scope,
    `SELECT pg_has_role((SELECT oid FROM app), 'pg_signal_backend', 'MEMBER') AS member,
            (SELECT string_agg(DISTINCT quote_ident(pg_get_userbyid(m.member)), ', ')
               FROM pg_auth_members m
              WHERE m.roleid = 'pg_signal_backend'::regrole AND pg_has_role((SELECT oid FROM app), m.member, 'MEMBER')) AS holders`,
  );
  const findings: Finding[] = [];
  const creators = rows.filter((r) => r.kind === 'creates' && r.grantees !== null);
  if (creators.length > 0) {
    findings.push({
      code: 'APP_CAN_CREATE_LARGE_OBJECTS',
      severity: 'warning',
      object: scope.databaseSql,
      message: `The application role can create large objects (EXECUTE on ${creators.map((r) => r.signature).join(', ')}): they live outside every table, without row level security, readable by every session of the app role whatever its tenant, and their storage counts against no tenant.`,
      fix: creators.map((r) => `REVOKE EXECUTE ON FUNCTION ${r.signature} FROM ${r.grantees};`).join(' '),
    });
  }
  const signals = rows.filter((r) => r.kind === 'signals' && r.grantees !== null);
  if (signals.length > 0 || signaller?.member) {
    const via = [
      ...(signals.length > 0 ? [`EXECUTE on ${signals.map((r) => r.signature).join(', ')}`] : []),
      ...(signaller?.member ? ['membership of pg_signal_backend'] : []),
    ].join(' and ');
    findings.push({
      code: 'APP_CAN_SIGNAL_SESSIONS',
      severity: 'warning',
      object: scope.appRole!,
      message: `The application role can cancel or terminate other sessions of its own role (${via}): injected SQL under one tenant could end the statements and connections serving other tenants. The pool's own query cancellation uses the protocol's cancel request, not these functions.`,
      fix: [
        ...signals.map((r) => `REVOKE EXECUTE ON FUNCTION ${r.signature} FROM ${r.grantees};`),
        ...(signaller?.member ? [`REVOKE pg_signal_backend FROM ${signaller.holders ?? scope.appSql};`] : []),
      ].join(' '),
    });
  }
  const routes = rows.filter((r) => r.kind === 'routes' && r.grantees !== null);
  if (routes.length > 0) {
    findings.push({
      code: 'APP_CAN_READ_ROUTES',
      severity: 'warning',
      object: scope.appRole!,
      message: `The application role can execute ${routes.map((r) => r.signature).join(', ')}: injected SQL under one tenant could list every placed tenant's tier, cluster, database and schema. Routes are the router role's (install's routerRole, default tenantry_router), which the TenantRouter connects as.`,
      fix: routes.map((r) => `REVOKE EXECUTE ON FUNCTION ${r.signature} FROM ${r.grantees};`).join(' '),
    });
  }
  return findings;
}
