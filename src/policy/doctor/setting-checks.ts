import type { Finding } from './finding.js';
import { scopedRows, type DoctorScope } from './doctor-scope.js';

const EVENT_TRIGGER = 'tenantry_lock_new_table';

/**
 * Install state and settings: a `tenantry.context` stored in `pg_db_role_setting` (a tenant
 * forged for every session of a role or database; the value is never printed), the
 * deny-by-default event trigger, and the signing key of signed mode.
 */
export async function checkSettings(scope: DoctorScope): Promise<Finding[]> {
  const findings: Finding[] = [];
  const settings = await scopedRows<{ role_sql: string | null; role_name: string | null; database_sql: string | null }>(
    scope,
    `SELECT quote_ident(r.rolname) AS role_sql, r.rolname AS role_name, quote_ident(d.datname) AS database_sql
       FROM pg_db_role_setting s
       LEFT JOIN pg_roles r ON r.oid = s.setrole
       LEFT JOIN pg_database d ON d.oid = s.setdatabase
      WHERE (s.setdatabase = 0 OR d.datname = current_database())
        -- anything stored for this database; for all databases, only what reaches the app role's
        -- sessions (every role, itself, a role it can SET ROLE to): other applications' roles
        -- on the same cluster are not this database's business (nor, with no app role, any role's)
        AND (s.setrole = 0 OR s.setdatabase <> 0 OR ($7::text IS NOT NULL AND pg_has_role($7::text, s.setrole, 'MEMBER')))
        AND EXISTS (SELECT FROM unnest(s.setconfig) c WHERE lower(split_part(c, '=', 1)) = 'tenantry.context')
      ORDER BY 2 NULLS FIRST, 3 NULLS FIRST`,
    [scope.appRole ?? null],
  );
  for (const s of settings) {
    const [object, alter] =
      s.role_sql === null
        ? [`database ${s.database_sql}`, `ALTER DATABASE ${s.database_sql}`]
        : s.database_sql === null
          ? [`role ${s.role_name}`, `ALTER ROLE ${s.role_sql}`]
          : [
              `role ${s.role_name} in database ${s.database_sql}`,
              `ALTER ROLE ${s.role_sql} IN DATABASE ${s.database_sql}`,
            ];
    findings.push({
      code: 'PERSISTENT_TENANT_CONTEXT',
      severity: 'error',
      object,
      message: `tenantry.context is stored for ${object}: every new session starts with that tenant context, outside any request.`,
      fix: `${alter} RESET tenantry.context;`,
    });
  }
  if (!scope.installed) return findings;

  const [state] = await scopedRows<{ trigger: string | null; key_table: boolean }>(
    scope,
    `SELECT (SELECT evtenabled::text FROM pg_event_trigger WHERE evtname = $7) AS trigger,
            to_regclass('tenantry_private.context_key') IS NOT NULL AS key_table`,
    [EVENT_TRIGGER],
  );
  const hasKey =
    state?.key_table === true &&
    (await scope.db.query('SELECT FROM tenantry_private.context_key LIMIT 1')).rowCount! > 0;
  if (state?.trigger == null) {
    findings.push({
      code: 'EVENT_TRIGGER_MISSING',
      severity: 'warning',
      object: EVENT_TRIGGER,
      message: `The event trigger ${EVENT_TRIGGER} is missing: new tables are no longer created with row level security forced (deny by default relies on grants alone).`,
      fix: 'tenantry install (as a superuser, with the event trigger enabled)',
    });
  } else if (state.trigger === 'D' || state.trigger === 'R') {
    findings.push({
      code: 'EVENT_TRIGGER_DISABLED',
      severity: 'warning',
      object: EVENT_TRIGGER,
      message: `The event trigger ${EVENT_TRIGGER} is ${state.trigger === 'D' ? 'disabled' : 'enabled for replica sessions only'}: new tables are not created with row level security forced.`,
      fix: `ALTER EVENT TRIGGER ${EVENT_TRIGGER} ENABLE;`,
    });
  }
  if (scope.contextMode === 'signed' && !hasKey) {
    findings.push({
      code: 'CONTEXT_KEY_MISSING',
      severity: 'error',
      object: 'tenantry_private.context_key',
      message:
        'Signed context mode is installed but no signing key is stored: tenantry.current_tenant_id() raises on every tenant-scoped query.',
      fix: 'TENANTRY_CONTEXT_SECRET=<secret of 32+ characters> tenantry install',
    });
  }
  return findings;
}
