import type { Finding } from './finding.js';
import type { DoctorScope } from './doctor-scope.js';
import {
  appliedLibraryMigrations,
  changedOf,
  libraryMigrations,
  migrationLabel,
  pendingOf,
} from '../library-migrations.js';

/**
 * Whether this database's Tenantry schema is this library version's: pending library migrations
 * (INSTALL_OUTDATED, naming each `feature/NNN_name`), applied ones whose file changed since
 * (LIBRARY_MIGRATION_CHANGED) or that this version does not know (LIBRARY_MIGRATION_UNKNOWN: a
 * newer version installed it), and the app role's timeouts (APP_ROLE_TIMEOUTS_MISSING). A
 * database placed (tier `database`, another cluster's shared database) keeps an earlier
 * version's schema until `tenantry install` runs there again: nothing else would tell.
 */
export async function checkInstall(scope: DoctorScope): Promise<Finding[]> {
  if (!scope.installed) return [];
  const findings: Finding[] = [];
  const applied = await appliedLibraryMigrations(scope.db);
  const pending = pendingOf(applied);
  const { meta } = scope;
  const flags = [
    ...(meta.get('app_role') ? [`--app-role ${meta.get('app_role')}`] : []),
    ...(meta.get('owner_role') ? [`--owner-role ${meta.get('owner_role')}`] : []),
    ...(meta.get('support_role') ? [`--support-role ${meta.get('support_role')}`] : []),
    ...(scope.installedDataSchemas.join(',') === 'public' ? [] : [`--schema ${scope.installedDataSchemas.join(' ')}`]),
    ...(meta.get('context_mode') === 'unsigned' ? ['--unsigned'] : []),
  ];
  if (pending.length > 0) {
    const before = applied.length === 0;
    findings.push({
      code: 'INSTALL_OUTDATED',
      severity: 'warning',
      object: scope.databaseSql,
      message:
        `Pending library migrations: ${pending.map(migrationLabel).join(', ')}.` +
        (before
          ? ' This database was installed by a Tenantry version from before the versioned schema (no tenantry.library_migrations): install brings it to the current one and records it.'
          : ' Tenantry functions, tables and grants here are older than this library version expects.'),
      fix:
        `tenantry --database-url <URL of database ${scope.databaseSql}> install ${flags.join(' ')} ` +
        `(existing passwords and the context key are kept), or every database the catalog knows at once: tenantry install --everywhere`,
    });
  }
  for (const m of changedOf(applied))
    findings.push({
      code: 'LIBRARY_MIGRATION_CHANGED',
      severity: 'warning',
      object: `tenantry.library_migrations ${migrationLabel(m)}`,
      message: `Library migration ${migrationLabel(m)} was applied here from a file whose checksum differs from this library version's: a released migration was edited, so this database may differ from a fresh install.`,
      fix: 'Compare the two versions of the migration; a released migration must never change (add a new one instead).',
    });
  const known = new Set(libraryMigrations().map((m) => `${m.feature}/${m.version}`));
  const unknown = applied.filter((a) => !known.has(`${a.feature}/${a.version}`));
  if (unknown.length > 0)
    findings.push({
      code: 'LIBRARY_MIGRATION_UNKNOWN',
      severity: 'warning',
      object: scope.databaseSql,
      message: `Library migrations applied here that this Tenantry version does not know: ${unknown.map((u) => `${u.feature}/${String(u.version).padStart(3, '0')}`).join(', ')}. A newer version installed this database: this one's checks and functions may not match it.`,
      fix: 'Run doctor (and the application) with the Tenantry version that installed this database, or newer.',
    });
  if (scope.appRole) findings.push(...(await checkAppRoleTimeouts(scope, scope.appRole)));
  const ownerRole = meta.get('owner_role');
  if (ownerRole) findings.push(...(await checkOwnerReadsActivity(scope, ownerRole)));
  return findings;
}

/**
 * The owner role reads the app role's backends in pg_stat_activity (`tenantry tenants top`, the
 * console's top page): without pg_read_all_stats (or superuser) their state, waits and start are
 * NULL, and the live columns would read 0 (OWNER_CANNOT_READ_ACTIVITY). PostgreSQL 10 and later.
 */
async function checkOwnerReadsActivity(scope: DoctorScope, ownerRole: string): Promise<Finding[]> {
  const { rows } = await scope.db.query<{ reads: boolean | null }>(
    `SELECT CASE WHEN to_regrole('pg_read_all_stats') IS NULL THEN NULL
                 ELSE r.rolsuper OR pg_has_role(r.oid, 'pg_read_all_stats', 'USAGE') END AS reads
       FROM pg_roles r WHERE r.rolname = $1`,
    [ownerRole],
  );
  if (rows.length === 0 || rows[0]!.reads !== false) return [];
  return [
    {
      code: 'OWNER_CANNOT_READ_ACTIVITY',
      severity: 'warning',
      object: ownerRole,
      message:
        "The owner role is not a member of pg_read_all_stats: it cannot read the app role's backends in pg_stat_activity, so the live columns of tenants top (NOW, LOCKED, LONGEST) and of the console's top page are unavailable.",
      fix: `tenantry install as a superuser (grants it), or GRANT pg_read_all_stats TO ${ownerRole}`,
    },
  ];
}

const TIMEOUTS = ['statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout'];

/** The app role's timeouts, set for the role (any database) or for the role in this database. */
async function checkAppRoleTimeouts(scope: DoctorScope, appRole: string): Promise<Finding[]> {
  const { rows } = await scope.db.query<{ setting: string }>(
    `SELECT split_part(c, '=', 1) AS setting
       FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) c
      WHERE r.rolname = $1 AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
        AND split_part(c, '=', 2) NOT IN ('0', '')`,
    [appRole],
  );
  const present = new Set(rows.map((r) => r.setting));
  const missing = TIMEOUTS.filter((t) => !present.has(t));
  if (missing.length === 0) return [];
  return [
    {
      code: 'APP_ROLE_TIMEOUTS_MISSING',
      severity: 'warning',
      object: appRole,
      message: `The app role has no ${missing.join(', ')}: a statement, a lock wait or an idle transaction of the application can last forever and hold locks other tenants wait on.`,
      fix: `tenantry install (sets 30s / 5s / 60s where the role has none), or ALTER ROLE ${appRole} SET ${missing[0]} = '…'`,
    },
  ];
}
