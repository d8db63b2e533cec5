import type { Finding } from './finding.js';
import type { DoctorScope } from './doctor-scope.js';

/**
 * The support role (install `--support-role`), used by staff's audited cross-tenant reads. It
 * must skip nothing (no superuser, BYPASSRLS, CREATEROLE, REPLICATION, no role memberships), write
 * nothing, reach nothing private, and every tenant table it can read must carry the restrictive
 * policy that admits it only while a staff `read` grant on the tenant is open.
 */
export async function checkSupportRole(scope: DoctorScope): Promise<Finding[]> {
  const support = scope.supportRole;
  if (support === undefined) return [];
  const findings: Finding[] = [];
  const quoted = (await scope.db.query<{ q: string }>('SELECT quote_ident($1) AS q', [support])).rows[0]!.q;

  const { rows: attributes } = await scope.db.query<{
    rolsuper: boolean;
    rolbypassrls: boolean;
    rolcreaterole: boolean;
    rolreplication: boolean;
    member_of: string[];
  }>(
    `SELECT r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolreplication,
            ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid ORDER BY 1) AS member_of
       FROM pg_roles r WHERE r.rolname = $1`,
    [support],
  );
  const a = attributes[0]!;
  const unsafe = [
    a.rolsuper && ['is a superuser', 'NOSUPERUSER'],
    a.rolbypassrls && ['has BYPASSRLS', 'NOBYPASSRLS'],
    a.rolcreaterole && ['has CREATEROLE', 'NOCREATEROLE'],
    a.rolreplication && ['has REPLICATION', 'NOREPLICATION'],
  ].filter((x): x is [string, string] => Array.isArray(x));
  for (const [why, clause] of unsafe) {
    findings.push({
      code: 'SUPPORT_ROLE_UNSAFE',
      severity: 'error',
      object: support,
      message: `The support role ${support} ${why}: staff reads through it would skip row level security or the grant check.`,
      fix: `ALTER ROLE ${quoted} ${clause};`,
    });
  }
  for (const role of a.member_of) {
    findings.push({
      code: 'SUPPORT_ROLE_UNSAFE',
      severity: 'error',
      object: support,
      message: `The support role ${support} is a member of ${role}: it can SET ROLE to it and read or write with that role's rights.`,
      fix: `REVOKE ${(await scope.db.query<{ q: string }>('SELECT quote_ident($1) AS q', [role])).rows[0]!.q} FROM ${quoted};`,
    });
  }

  const { rows: writable } = await scope.db.query<{ name: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'f') AND (n.nspname = ANY ($2::name[]) OR n.nspname IN ('tenantry', 'tenantry_private'))
        AND has_table_privilege($1, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
      ORDER BY 1`,
    [support, scope.dataSchemas],
  );
  for (const r of writable) {
    findings.push({
      code: 'SUPPORT_ROLE_CAN_WRITE',
      severity: 'error',
      object: r.name,
      message: `The support role ${support} may write to ${r.name}: support access is read-only.`,
      fix: `REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ${r.name} FROM ${quoted};`,
    });
  }

  const tenantTables = scope.registry.filter((r) => r.present && r.kind === 'tenant').map((r) => r.relid);
  const { rows: unguarded } = await scope.db.query<{ name: string }>(
    `SELECT t.relid::regclass::text AS name
       FROM unnest($1::oid[]) AS t(relid)
      WHERE has_table_privilege($2, t.relid, 'SELECT')
        AND NOT EXISTS (
          SELECT FROM pg_policy p
           WHERE p.polrelid = t.relid AND NOT p.polpermissive
             AND (SELECT oid FROM pg_roles WHERE rolname = $2) = ANY (p.polroles)
             AND pg_get_expr(p.polqual, p.polrelid) LIKE '%tenantry.support_read_allowed()%')
      ORDER BY 1`,
    [tenantTables, support],
  );
  for (const r of unguarded) {
    findings.push({
      code: 'SUPPORT_POLICY_MISSING',
      severity: 'error',
      object: r.name,
      message: `The support role ${support} can read ${r.name} without the restrictive policy that admits it only while a staff read grant is open.`,
      fix: `SELECT tenantry.register_tenant_table('${r.name.replaceAll("'", "''")}');`,
    });
  }

  const { rows: privateReach } = await scope.db.query<{ usage: boolean }>(
    `SELECT to_regnamespace('tenantry_private') IS NOT NULL AND has_schema_privilege($1, 'tenantry_private', 'USAGE') AS usage`,
    [support],
  );
  if (privateReach[0]?.usage) {
    findings.push({
      code: 'SUPPORT_ROLE_REACHES_PRIVATE',
      severity: 'error',
      object: 'tenantry_private',
      message: `The support role ${support} has USAGE on schema tenantry_private, where the signing key, sessions and grants live.`,
      fix: `REVOKE ALL ON SCHEMA tenantry_private FROM ${quoted};`,
    });
  }
  return findings;
}
