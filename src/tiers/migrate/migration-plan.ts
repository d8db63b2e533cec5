import { sqlStateOf } from '../../errors/sqlstate.js';
import type { DatabasePools } from './database-pools.js';
import { readDatabaseState, type AppliedMigration, type DatabaseState, type TargetFailure } from './database-state.js';
import { MigrationError } from './migration-error.js';
import type { Migration } from './migration-files.js';
import type { MigrationTarget } from './migration-target.js';
import pLimit from 'p-limit';

/** One target as the run found it: where it stands and what it still needs. */
export interface TargetPlan {
  target: MigrationTarget;
  /** The name its rows carry in `tenantry.schema_migrations`: its schema, or the database's first data schema. */
  tracking: string;
  /** The search path its tenant migrations run under (the schema first, then the data schemas). */
  searchPath: string[];
  ownerRole: string;
  /** Every migration of its scopes, in order. */
  migrations: Migration[];
  applied: AppliedMigration[];
  pending: Migration[];
  lastFailure: TargetFailure | null;
  /** An applied migration changed or missing from the directory: the run refuses to start. */
  drift: MigrationError | null;
  /** The database could not be read (unreachable, not installed, unknown cluster): the target fails. */
  unreachable: TargetFailure | null;
}

/**
 * Reads every target's state, one database at a time (at most `concurrency` at once): each
 * database's bookkeeping is read in one query for all its targets, so 1,000 schemas cost no
 * per-schema round trip before the work starts. Pools of databases with nothing to do are closed.
 */
export async function planMigrations(
  targets: MigrationTarget[],
  migrations: Migration[],
  pools: DatabasePools,
  concurrency: number,
): Promise<TargetPlan[]> {
  const byDatabase = new Map<string, MigrationTarget[]>();
  for (const t of targets) {
    const key = `${t.cluster}/${t.database}`;
    const group = byDatabase.get(key);
    if (group) group.push(t);
    else byDatabase.set(key, [t]);
  }
  const plans = new Map<string, TargetPlan>();
  await pLimit(concurrency).map([...byDatabase.values()], async (group) => {
    const { cluster, database } = group[0]!;
    let state: DatabaseState | undefined;
    let unreachable: TargetFailure | null = null;
    try {
      const client = await pools.pool(cluster, database).connect();
      try {
        state = await readDatabaseState(client);
      } finally {
        client.release();
      }
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      unreachable = {
        version: null,
        migration: null,
        sqlstate: sqlStateOf(error) ?? (typeof code === 'string' ? code : null),
        message: (error as Error).message,
      };
    }
    for (const target of group) plans.set(target.key, planTarget(target, migrations, state, unreachable));
    if (group.every((t) => plans.get(t.key)!.pending.length === 0 || plans.get(t.key)!.unreachable))
      await pools.close(cluster, database);
  });
  return targets.map((t) => plans.get(t.key)!);
}

function planTarget(
  target: MigrationTarget,
  all: Migration[],
  state: DatabaseState | undefined,
  unreachable: TargetFailure | null,
): TargetPlan {
  const migrations = all.filter((m) => target.scopes.includes(m.scope));
  const base = { target, migrations, drift: null, lastFailure: null, applied: [], pending: [] };
  if (!state) return { ...base, tracking: target.schema ?? '', searchPath: [], ownerRole: '', unreachable };
  const tracking = target.schema ?? state.dataSchemas[0]!;
  const searchPath = target.schema ? [target.schema, ...state.dataSchemas] : state.dataSchemas;
  const common = {
    ...base,
    tracking,
    searchPath,
    ownerRole: state.ownerRole,
    lastFailure: state.failures.get(tracking) ?? null,
  };
  if (target.schema && state.dataSchemas.includes(target.schema)) {
    const message = `schema ${target.schema} is a data schema of the database, not a tenant schema`;
    return { ...common, unreachable: { version: null, migration: null, sqlstate: null, message } };
  }
  const applied = state.applied.get(tracking) ?? [];
  const byVersion = new Map(migrations.map((m) => [m.version, m]));
  let drift: MigrationError | null = null;
  for (const a of applied) {
    const m = byVersion.get(a.version);
    if (!m) {
      drift = new MigrationError(
        'MIGRATION_UNKNOWN',
        `${target.key} has applied ${a.name}, which the migrations directory does not have`,
        { target: target.key, migration: a.name },
      );
    } else if (m.checksum !== a.checksum || m.name !== a.name) {
      drift = new MigrationError(
        'MIGRATION_CHANGED',
        `${m.scope}/${m.name} changed after ${target.key} applied it: add a new migration instead`,
        { target: target.key, migration: m.name },
      );
    }
    if (drift) break;
  }
  const done = new Set(applied.map((a) => a.version));
  return { ...common, applied, drift, unreachable: null, pending: migrations.filter((m) => !done.has(m.version)) };
}
