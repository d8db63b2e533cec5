import type { Queryable } from '../../catalog/tenant-catalog.js';
import { applyTarget } from './apply-target.js';
import { DatabasePools } from './database-pools.js';
import type { TargetFailure } from './database-state.js';
import { loadMigrations, type Migration } from './migration-files.js';
import { planMigrations, type TargetPlan } from './migration-plan.js';
import { listMigrationTargets, type MigrationTarget } from './migration-target.js';
import pLimit from 'p-limit';

/** Options of {@link migrateEverywhere} and `migrationStatus`. */
export interface MigrateEverywhereOptions {
  /** The home database (the catalog of clusters and placements), owner role. */
  catalog: Queryable;
  /**
   * Each cluster's shared database: `{ home: url, eu: url }`, as the owner role or a superuser
   * (every transaction runs as the owner role recorded by `tenantry install`). Tenant databases
   * are reached on the same server with the database name swapped.
   */
  clusters: Record<string, string>;
  /** The migrations directory (`global/`, `tenant/`), or migrations already loaded. */
  migrations: string | Migration[];
  /** Targets migrated at once, and so connections at work (default 8). */
  concurrency?: number;
  /**
   * `lock_timeout` of each target's transaction, in ms (default: the server's, usually none). A
   * migration that would wait longer for a lock the application holds fails that target
   * (SQLSTATE 55P03) instead of queueing every later statement on the table behind it.
   */
  lockTimeoutMs?: number;
  /** Told after each target settles. */
  onProgress?: (progress: MigrationProgress) => void;
}

/**
 * How a target ended: `applied` (moved forward: migrations run, or recorded by a baseline of
 * `migrateLocation`), `current` (nothing to do), `failed`, `blocked` (its database is behind).
 */
export type TargetStatus = 'applied' | 'current' | 'failed' | 'blocked';

/** One target's outcome. */
export interface TargetResult {
  target: MigrationTarget;
  status: TargetStatus;
  /** Names of the migrations this run applied to it (ran their SQL). */
  applied: string[];
  /**
   * Names of the migrations this run recorded as applied without running them: a baseline of
   * `migrateLocation` (`baselineThrough`); always empty for `migrateEverywhere`.
   */
  baselined: string[];
  /** Its latest applied version after the run (null: none). */
  version: number | null;
  failure: TargetFailure | null;
}

/** Progress after each target. */
export interface MigrationProgress {
  total: number;
  done: number;
  failed: number;
  last: TargetResult;
}

/** The whole run: `ok` when no target failed or was blocked. */
export interface MigrationReport {
  ok: boolean;
  results: TargetResult[];
  /** Highest version in the directory. */
  latest: number | null;
  durationMs: number;
}

/**
 * `tenantry migrate`: applies the application's migrations to every location the catalog knows:
 * each cluster's shared database (global, then tenant migrations in its data schemas), each
 * database-tier tenant's database (the same), each schema-tier tenant's schema (tenant
 * migrations, the schema first on the search path, transaction-locally).
 *
 * - Each target in its own transaction under its own advisory lock: fully at a version or
 *   untouched; two concurrent runs never apply a migration twice.
 * - Databases first, then schemas, `concurrency` at a time over pooled connections (one pool
 *   per database). A schema never gets ahead of its database's target (its tenant tables may
 *   use what the global migrations create): behind a failed database, schemas are `blocked`.
 * - A failure is reported (target, migration, SQLSTATE, message), recorded for `status`, and
 *   does not stop the others. Re-running applies only what is missing.
 * - An applied migration whose file changed, or that the directory lacks, refuses the run
 *   before anything is applied ({@link MigrationError}).
 *
 * @example
 * const report = await migrateEverywhere({ catalog: homeOwnerPool, clusters: { home: homeOwnerUrl }, migrations: 'migrations' });
 * for (const r of report.results.filter((r) => r.failure)) console.error(r.target.key, r.failure);
 */
export async function migrateEverywhere(options: MigrateEverywhereOptions): Promise<MigrationReport> {
  const started = performance.now();
  const concurrency = Math.max(1, options.concurrency ?? 8);
  const migrations =
    typeof options.migrations === 'string' ? await loadMigrations(options.migrations) : options.migrations;
  const pools = new DatabasePools(options.clusters, concurrency);
  try {
    const targets = await listMigrationTargets(options.catalog, options.clusters);
    const plans = await planMigrations(targets, migrations, pools, concurrency);
    const drift = plans.find((p) => p.drift);
    if (drift?.drift) throw drift.drift;

    const results = new Map<string, TargetResult>();
    let failed = 0;
    const settle = (result: TargetResult): void => {
      results.set(result.target.key, result);
      if (result.status === 'failed' || result.status === 'blocked') failed++;
      options.onProgress?.({ total: plans.length, done: results.size, failed, last: result });
    };
    const run = async (plan: TargetPlan, limit: number): Promise<void> => {
      const wanted = plan.pending.filter((m) => m.version <= limit);
      const version = plan.applied.at(-1)?.version ?? null;
      if (wanted.length === 0) {
        const status = plan.pending.length === 0 ? 'current' : 'blocked';
        const failure =
          status === 'blocked'
            ? {
                version: null,
                migration: null,
                sqlstate: null,
                message: `its database ${plan.target.cluster}/${plan.target.database} is behind (version ${limit || 'none'})`,
              }
            : null;
        settle({ target: plan.target, status, applied: [], baselined: [], version, failure });
        return;
      }
      let outcome;
      try {
        const client = await pools.pool(plan.target.cluster, plan.target.database).connect();
        let failed = true;
        try {
          outcome = await applyTarget(
            client,
            plan,
            plan.migrations.filter((m) => m.version <= limit),
            { lockTimeoutMs: options.lockTimeoutMs },
          );
          failed = !outcome.ok;
        } finally {
          // after a failure the session may be anything (a broken socket, a role a migration set): not reused
          client.release(failed);
        }
      } catch (error) {
        outcome = {
          ok: false as const,
          version,
          failure: { version: null, migration: null, sqlstate: null, message: (error as Error).message },
        };
      }
      settle(
        outcome.ok
          ? {
              target: plan.target,
              status: outcome.applied.length ? 'applied' : 'current',
              applied: outcome.applied.map((m) => m.name),
              baselined: [],
              version: outcome.version,
              failure: null,
            }
          : {
              target: plan.target,
              status: 'failed',
              applied: [],
              baselined: [],
              version: outcome.version,
              failure: outcome.failure,
            },
      );
    };

    const latest = migrations.at(-1)?.version ?? null;
    const databases = plans.filter((p) => p.target.schema === null);
    const schemas = plans.filter((p) => p.target.schema !== null);
    const where = (t: MigrationTarget) => `${t.cluster}/${t.database}`;
    const awaited = new Set(schemas.filter((s) => s.pending.length > 0).map((s) => where(s.target)));
    for (const p of plans.filter((p) => p.unreachable)) {
      settle({ target: p.target, status: 'failed', applied: [], baselined: [], version: null, failure: p.unreachable });
    }
    await pLimit(concurrency).map(
      databases.filter((p) => !p.unreachable),
      async (plan) => {
        await run(plan, Number.MAX_SAFE_INTEGER);
        if (!awaited.has(where(plan.target))) await pools.close(plan.target.cluster, plan.target.database);
      },
    );
    // each database's version after its own target ran: its schemas go no further
    const reached = new Map(databases.map((p) => [where(p.target), results.get(p.target.key)?.version ?? 0]));
    await pLimit(concurrency).map(
      schemas.filter((p) => !p.unreachable),
      (plan) => run(plan, reached.get(where(plan.target)) ?? 0),
    );
    const ordered = plans.map((p) => results.get(p.target.key)!);
    return {
      ok: ordered.every((r) => r.status === 'applied' || r.status === 'current'),
      results: ordered,
      latest,
      durationMs: performance.now() - started,
    };
  } finally {
    await pools.end();
  }
}
