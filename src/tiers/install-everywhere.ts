import pg from 'pg';
import type { Queryable } from '../catalog/tenant-catalog.js';
import { ConfigurationError } from '../errors/tenantry-error.js';
import type { ContextMode } from '../policy/install-sql.js';
import { install } from '../policy/installer.js';
import { withDatabase } from './provision.js';
import { listMigrationTargets, type MigrationTarget } from './migrate/migration-target.js';
import pLimit from 'p-limit';

/** Options of {@link installEverywhere}. */
export interface InstallEverywhereOptions {
  /** The home database (owner role or a superuser): the catalog of clusters and placements, and the install options recorded in its `tenantry.meta`. */
  catalog: Queryable;
  /**
   * Each cluster's shared database URL, as a superuser (install creates roles, grants on the
   * database and the event trigger); `home` is the home database. A cluster the catalog names
   * but this map does not is reported as failed, not skipped.
   */
  clusters: Record<string, string>;
  /** Passwords of the login roles (cluster-wide: set once per cluster); left unchanged when omitted. */
  appPassword?: string;
  ownerPassword?: string;
  supportPassword?: string;
  routerPassword?: string;
  /** The signed-mode secret, stored in every database (as the deployment's: a different one would stop its contexts verifying). Left unchanged when omitted. */
  contextSecret?: string;
  /** Install the deny-by-default event trigger (needs a superuser). Default true. */
  eventTrigger?: boolean;
  /** Databases installed at once. Default 4. */
  concurrency?: number;
}

/** One database's install: `ok`, or the error that stopped it (the others went on). */
export interface DatabaseInstall {
  cluster: string;
  database: string;
  /** `shared`: a cluster's shared database (the home database is `home`'s); `database`: a database-tier tenant's. */
  kind: 'shared' | 'database';
  ok: boolean;
  error: string | null;
  /** The library migrations this install applied there (`feature/NNN_name`); empty when it was current. */
  applied: string[];
}

/** The answer of {@link installEverywhere}: `ok` when every database was installed. */
export interface InstallEverywhereReport {
  ok: boolean;
  /** What every database was installed with: the home database's roles and context mode. */
  roles: { appRole: string; ownerRole: string; supportRole: string | undefined; contextMode: ContextMode };
  databases: DatabaseInstall[];
}

/**
 * `tenantry install` again in every database the catalog knows: the home database, each cluster's
 * shared database and each database-tier tenant's database (the databases `tenantry migrate` and
 * `doctorEverywhere` work on), so a library upgrade's pending migrations (new functions, columns, fixes)
 * reach the databases provisioned by an earlier version. Install is idempotent: a database
 * already current gets no migration. Each database takes the home database's role names and
 * context mode, and keeps its own data schemas. One failure (a database dropped since it was
 * placed, a cluster without a URL) is reported and does not stop the others.
 *
 * Roles are cluster-wide: on each cluster, one database is installed first (it creates the roles
 * and sets their passwords), then the cluster's other databases, in parallel, without touching
 * the roles again.
 *
 * @example
 * const report = await installEverywhere({ catalog: homeOwnerPool, clusters: { home: adminUrl, eu: euAdminUrl }, contextSecret });
 * for (const d of report.databases) if (!d.ok) console.log(`${d.cluster}/${d.database}: ${d.error}`);
 */
export async function installEverywhere(options: InstallEverywhereOptions): Promise<InstallEverywhereReport> {
  const roles = await homeInstallOptions(options.catalog);
  const targets = (await listMigrationTargets(options.catalog, options.clusters)).filter((t) => t.schema === null);
  const limit = Math.max(1, options.concurrency ?? 4);
  const results = new Map<string, DatabaseInstall>();

  const installOne = async (target: MigrationTarget, setRoles: boolean): Promise<boolean> => {
    const result: DatabaseInstall = {
      cluster: target.cluster,
      database: target.database,
      kind: target.kind === 'shared' ? 'shared' : 'database',
      ok: false,
      error: null,
      applied: [],
    };
    results.set(target.key, result);
    try {
      const base = options.clusters[target.cluster];
      if (base === undefined) throw new ConfigurationError(`No connection is configured for cluster ${target.cluster}`);
      const url = target.kind === 'shared' ? base : withDatabase(base, target.database);
      const report = await install(url, {
        ...roles,
        dataSchemas: (await recordedDataSchemas(url)) ?? roles.dataSchemas,
        eventTrigger: options.eventTrigger ?? true,
        contextSecret: options.contextSecret,
        ...(setRoles
          ? {
              appPassword: options.appPassword,
              ownerPassword: options.ownerPassword,
              supportPassword: options.supportPassword,
              routerPassword: options.routerPassword,
            }
          : {}),
      });
      result.applied = report.applied;
      result.ok = true;
    } catch (error) {
      result.error = (error as Error).message;
    }
    return result.ok;
  };

  // per cluster, its shared database first: the first database that installs sets the roles
  const byCluster = new Map<string, MigrationTarget[]>();
  for (const t of targets) byCluster.set(t.cluster, [...(byCluster.get(t.cluster) ?? []), t]);
  const rest: MigrationTarget[] = [];
  await pLimit(limit).map([...byCluster.values()], async (list) => {
    const ordered = [...list.filter((t) => t.kind === 'shared'), ...list.filter((t) => t.kind !== 'shared')];
    let next = 0;
    while (next < ordered.length && !(await installOne(ordered[next++]!, true)));
    rest.push(...ordered.slice(next));
  });
  await pLimit(limit).map(rest, (t) => installOne(t, false).then(() => undefined));

  const databases = targets.map((t) => results.get(t.key)!);
  const { appRole, ownerRole, supportRole, contextMode } = roles;
  return {
    ok: databases.every((d) => d.ok),
    roles: { appRole, ownerRole, supportRole, contextMode },
    databases,
  };
}

/** The install options recorded in the home database's `tenantry.meta`. */
async function homeInstallOptions(catalog: Queryable): Promise<{
  appRole: string;
  ownerRole: string;
  supportRole: string | undefined;
  routerRole: string | undefined;
  contextMode: ContextMode;
  dataSchemas: string[];
}> {
  const { rows } = await catalog.query<{ key: string; value: string }>(
    `select key, value from tenantry.meta where key in ('app_role', 'owner_role', 'support_role', 'router_role', 'context_mode', 'data_schemas')`,
  );
  const meta = new Map(rows.map((r) => [r.key, r.value]));
  const appRole = meta.get('app_role');
  const ownerRole = meta.get('owner_role');
  if (!appRole || !ownerRole)
    throw new ConfigurationError(
      'The home database records no app and owner roles (tenantry.meta): run tenantry install there first',
    );
  return {
    appRole,
    ownerRole,
    supportRole: meta.get('support_role') || undefined,
    // an install of before the router role records none: the default then
    routerRole: meta.get('router_role') || undefined,
    contextMode: meta.get('context_mode') === 'unsigned' ? 'unsigned' : 'signed',
    dataSchemas: (meta.get('data_schemas') || 'public').split(',').filter(Boolean),
  };
}

/** The data schemas a database's own install recorded, or undefined when Tenantry is not installed there yet. */
async function recordedDataSchemas(url: string): Promise<string[] | undefined> {
  const client = new pg.Client({ connectionString: url, application_name: 'tenantry install' });
  await client.connect();
  try {
    const installed = await client.query<{ present: boolean }>(
      `select to_regclass('tenantry.meta') is not null as present`,
    );
    if (!installed.rows[0]?.present) return undefined;
    const { rows } = await client.query<{ value: string }>(
      `select value from tenantry.meta where key = 'data_schemas'`,
    );
    const schemas = (rows[0]?.value ?? '').split(',').filter(Boolean);
    return schemas.length > 0 ? schemas : undefined;
  } finally {
    await client.end();
  }
}
