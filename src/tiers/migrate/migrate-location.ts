import { sqlStateOf } from '../../errors/sqlstate.js';
import { InvalidArgumentError, TenantryError } from '../../errors/tenantry-error.js';
import { validIdentifier } from '../../policy/identifiers.js';
import { applyTarget, type TargetOutcome } from './apply-target.js';
import { DatabasePools } from './database-pools.js';
import type { TargetFailure } from './database-state.js';
import type { MigrationReport, TargetResult } from './migrate-everywhere.js';
import { MigrationError } from './migration-error.js';
import { loadMigrations, type Migration } from './migration-files.js';
import { planMigrations, type TargetPlan } from './migration-plan.js';
import type { MigrationTarget } from './migration-target.js';

/** Schemas that are never a tenant's (as `createTenantSchema` refuses them). */
const RESERVED_SCHEMAS = /^(public|tenantry|tenantry_private|information_schema|pg_.*)$/;

/** Options of {@link migrateLocation}. */
export interface MigrateLocationOptions {
  /** Each cluster's shared database URL (owner role or superuser), as in migrateEverywhere. */
  clusters: Record<string, string>;
  cluster: string;
  /** A database-tier tenant's database on that cluster; default (null/undefined): the cluster's shared database. */
  database?: string | null;
  /** A schema-tier tenant's schema in that database (tenant migrations only; its database is migrated first). */
  schema?: string | null;
  /** The migrations directory (`global/`, `tenant/`), or migrations already loaded. */
  migrations: string | Migration[];
  /**
   * Record the migrations with version <= this as applied WITHOUT running them (a baseline: the
   * location already has their objects, e.g. created by the application's earlier migration tool).
   * Only versions not yet recorded; recorded in the target's transaction under its advisory lock.
   */
  baselineThrough?: number;
  /** `lock_timeout` of each target's transaction, in ms (default: the server's), as in migrateEverywhere. */
  lockTimeoutMs?: number;
}

/**
 * Brings ONE location to the latest version, before any tenant is placed there (provisioning a
 * schema-tier tenant's schema, or a database-tier tenant's database, which `migrateEverywhere`
 * cannot see until the catalog names it). The same targets, guarantees and bookkeeping
 * (`tenantry.schema_migrations`) as `migrateEverywhere`, so its next run finds the location
 * current and continues from there:
 *
 * - the database first (`shared` or `database`: global and tenant migrations), then the schema if
 *   given (tenant migrations only, never beyond the version its database reached);
 * - each target in one transaction under its advisory lock: fully at the latest version or
 *   untouched; a re-run applies only what is missing;
 * - an applied migration changed or missing from the directory refuses the call before anything
 *   is applied ({@link MigrationError} `MIGRATION_CHANGED`, `MIGRATION_UNKNOWN`);
 * - a failing target throws `MIGRATION_FAILED` (target, migration, SQLSTATE, PostgreSQL's
 *   message), rolled back and recorded in `tenantry.migration_failures`. A schema's database
 *   that succeeded before it stays migrated (that is a complete version too).
 *
 * The schema must exist (`createTenantSchema(owner, schema, '')`), the database too
 * (`createTenantDatabase({ …, ddl: '' })`). Every pool it opens is closed before it returns.
 *
 * @example
 * await createTenantSchema(ownerPool, 't_acme', '');
 * await migrateLocation({ clusters: { home: ownerUrl }, cluster: 'home', schema: 't_acme', migrations: 'migrations' });
 * await placements.assign(acmeId, { tier: 'schema', cluster: 'home', schema: 't_acme' });
 */
export async function migrateLocation(options: MigrateLocationOptions): Promise<MigrationReport> {
  const started = performance.now();
  const { cluster, clusters, baselineThrough, lockTimeoutMs } = options;
  const database = options.database == null ? null : validIdentifier(options.database, 'database');
  const schema = options.schema == null ? null : tenantSchema(options.schema);
  if (baselineThrough !== undefined && !(Number.isSafeInteger(baselineThrough) && baselineThrough >= 0)) {
    throw new InvalidArgumentError(
      'baselineThrough must be a non-negative integer (a migration version)',
      'baselineThrough',
    );
  }
  if (typeof clusters[cluster] !== 'string') {
    throw new TenantryError('CLUSTER_UNKNOWN', `No connection is configured for cluster ${cluster}`, {
      status: 503,
      details: { cluster },
    });
  }
  const migrations =
    typeof options.migrations === 'string' ? await loadMigrations(options.migrations) : options.migrations;
  const pools = new DatabasePools(clusters, 1);
  try {
    const shared = pools.sharedDatabase(cluster)!;
    const name = database ?? shared;
    const targets: MigrationTarget[] = [
      {
        key: `${cluster}/${name}`,
        kind: name === shared ? 'shared' : 'database',
        cluster,
        database: name,
        schema: null,
        scopes: ['global', 'tenant'],
      },
    ];
    if (schema)
      targets.push({
        key: `${cluster}/${name}/${schema}`,
        kind: 'schema',
        cluster,
        database: name,
        schema,
        scopes: ['tenant'],
      });
    const plans = await planMigrations(targets, migrations, pools, 1);

    // everything refused before anything runs: bad input, an unreachable database, drift
    const schemaPlan = plans[1];
    if (schemaPlan?.unreachable && schemaPlan.searchPath.indexOf(schema!, 1) > 0)
      throw new InvalidArgumentError(schemaPlan.unreachable.message, 'schema');
    if (plans[0]!.unreachable) throw failed(plans[0]!.target.key, plans[0]!.unreachable, null);
    const drift = plans.find((p) => p.drift)?.drift;
    if (drift) throw drift;
    if (schemaPlan && schemaPlan.pending.length > 0 && !(await schemaExists(pools, cluster, name, schema!))) {
      throw new InvalidArgumentError(
        `schema ${schema} does not exist in ${cluster}/${name}: create it first (createTenantSchema)`,
        'schema',
      );
    }

    const results: TargetResult[] = [];
    let reached = Number.MAX_SAFE_INTEGER;
    for (const plan of plans) {
      const result = await migrateTarget(pools, plan, reached, { lockTimeoutMs, baselineThrough });
      results.push(result);
      // a schema goes no further than its database (its tenant tables may use the global migrations' objects)
      reached = result.version ?? 0;
    }
    return { ok: true, results, latest: migrations.at(-1)?.version ?? null, durationMs: performance.now() - started };
  } finally {
    await pools.end();
  }
}

/** One target, up to version `limit`: its result, or MIGRATION_FAILED. */
async function migrateTarget(
  pools: DatabasePools,
  plan: TargetPlan,
  limit: number,
  options: { lockTimeoutMs?: number; baselineThrough?: number },
): Promise<TargetResult> {
  const { target } = plan;
  const version = plan.applied.at(-1)?.version ?? null;
  if (!plan.pending.some((m) => m.version <= limit)) {
    if (plan.pending.length > 0) {
      throw failed(
        target.key,
        {
          version: null,
          migration: null,
          sqlstate: null,
          message: `its database ${target.cluster}/${target.database} is behind (version ${limit || 'none'})`,
        },
        version,
      );
    }
    return { target, status: 'current', applied: [], baselined: [], version, failure: null };
  }
  let outcome: TargetOutcome;
  try {
    const client = await pools.pool(target.cluster, target.database).connect();
    let broken = true;
    try {
      outcome = await applyTarget(
        client,
        plan,
        plan.migrations.filter((m) => m.version <= limit),
        options,
      );
      broken = !outcome.ok;
    } finally {
      // after a failure the session may be anything (a broken socket, a role a migration set): not reused
      client.release(broken);
    }
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    outcome = {
      ok: false,
      version,
      failure: {
        version: null,
        migration: null,
        sqlstate: sqlStateOf(error) ?? (typeof code === 'string' ? code : null),
        message: (error as Error).message,
      },
    };
  }
  if (!outcome.ok) throw failed(target.key, outcome.failure, outcome.version);
  const moved = outcome.applied.length + outcome.baselined.length > 0;
  return {
    target,
    status: moved ? 'applied' : 'current',
    applied: outcome.applied.map((m) => m.name),
    baselined: outcome.baselined.map((m) => m.name),
    version: outcome.version,
    failure: null,
  };
}

function tenantSchema(schema: string): string {
  validIdentifier(schema, 'schema');
  if (RESERVED_SCHEMAS.test(schema))
    throw new TenantryError('INVALID_IDENTIFIER', `${schema} is not a tenant schema name`, {
      status: 400,
      details: { what: 'schema' },
    });
  return schema;
}

async function schemaExists(pools: DatabasePools, cluster: string, database: string, schema: string): Promise<boolean> {
  const { rows } = await pools
    .pool(cluster, database)
    .query<{ present: boolean }>('select to_regnamespace($1) is not null as present', [schema]);
  return rows[0]!.present;
}

function failed(target: string, failure: TargetFailure, version: number | null): MigrationError {
  const at = failure.migration ? ` at ${failure.migration}` : '';
  const sqlstate = failure.sqlstate ? ` (SQLSTATE ${failure.sqlstate})` : '';
  return new MigrationError('MIGRATION_FAILED', `Migrating ${target} failed${at}${sqlstate}: ${failure.message}`, {
    target,
    migration: failure.migration,
    version,
    sqlstate: failure.sqlstate,
  });
}
