import type { Finding } from './finding.js';
import type { DoctorScope } from './doctor-scope.js';
import { installDigest } from '../install-sql.js';

/**
 * Whether the install SQL that last ran here is this library version's: `tenantry.meta`
 * `install_digest` against {@link installDigest}. A database placed (tier `database`, another
 * cluster's shared database) and installed by an earlier version keeps that version's functions
 * until `tenantry install` runs there again: nothing else would tell.
 */
export async function checkInstallDigest(scope: DoctorScope): Promise<Finding[]> {
  if (!scope.installed) return [];
  const current = installDigest();
  if (scope.installDigest === current) return [];
  const { meta } = scope;
  const flags = [
    ...(meta.get('app_role') ? [`--app-role ${meta.get('app_role')}`] : []),
    ...(meta.get('owner_role') ? [`--owner-role ${meta.get('owner_role')}`] : []),
    ...(meta.get('support_role') ? [`--support-role ${meta.get('support_role')}`] : []),
    ...(scope.installedDataSchemas.join(',') === 'public' ? [] : [`--schema ${scope.installedDataSchemas.join(' ')}`]),
    ...(meta.get('context_mode') === 'unsigned' ? ['--unsigned'] : []),
  ];
  const short = (d: string) => d.slice(0, 12);
  const message =
    scope.installDigest === undefined
      ? `This database was installed by another (older) Tenantry version: tenantry.meta records no install digest. ` +
        `Objects this version's install adds or changes (such as tenantry.home_tenant_id(), tenantry.is_moving(), ` +
        `the pinned column of tenantry.registered_tables) may be missing or out of date here.`
      : `This database was installed by another Tenantry version (install digest ${short(scope.installDigest)}…, this version's is ${short(current)}…): ` +
        `its Tenantry functions, tables and grants may differ from the ones this version expects.`;
  return [
    {
      code: 'INSTALL_OUTDATED',
      severity: 'warning',
      object: scope.databaseSql,
      message,
      fix:
        `tenantry --database-url <URL of database ${scope.databaseSql}> install ${flags.join(' ')} ` +
        `(with the deployment's TENANTRY_CONTEXT_SECRET and role passwords), or every database the catalog knows at once: tenantry install --everywhere`,
    },
  ];
}
