import type { TargetFailure } from './database-state.js';
import { DatabasePools } from './database-pools.js';
import type { MigrateEverywhereOptions } from './migrate-everywhere.js';
import { loadMigrations } from './migration-files.js';
import { planMigrations } from './migration-plan.js';
import { listMigrationTargets, type MigrationTarget } from './migration-target.js';

/** Where one target stands. */
export interface TargetVersion {
  target: MigrationTarget;
  /** Latest applied version (null: none), and its file name. */
  version: number | null;
  latestApplied: string | null;
  /** Migrations of its scopes not applied yet. */
  pending: number;
  /** Its last failure (kept until it next succeeds), or why its database could not be read. */
  lastFailure: TargetFailure | null;
  /** An applied migration changed or missing from the directory (the run would refuse). */
  drift: string | null;
}

/** The answer of {@link migrationStatus}. */
export interface MigrationStatusReport {
  /** Highest version in the directory. */
  latest: number | null;
  targets: TargetVersion[];
  /** How many targets are at each version (`none` for no migration applied), highest first. */
  byVersion: Array<{ version: number | null; targets: number }>;
}

/**
 * `tenantry migrate status`: each target's version, pending count and last failure, read without
 * changing anything but the bookkeeping tables' existence (one query per database).
 */
export async function migrationStatus(
  options: Omit<MigrateEverywhereOptions, 'onProgress'>,
): Promise<MigrationStatusReport> {
  const concurrency = Math.max(1, options.concurrency ?? 8);
  const migrations =
    typeof options.migrations === 'string' ? await loadMigrations(options.migrations) : options.migrations;
  const pools = new DatabasePools(options.clusters, 1);
  try {
    const plans = await planMigrations(
      await listMigrationTargets(options.catalog, options.clusters),
      migrations,
      pools,
      concurrency,
    );
    const targets = plans.map((p) => ({
      target: p.target,
      version: p.applied.at(-1)?.version ?? null,
      latestApplied: p.applied.at(-1)?.name ?? null,
      pending: p.unreachable ? p.migrations.length : p.pending.length,
      lastFailure: p.unreachable ?? p.lastFailure,
      drift: p.drift?.message ?? null,
    }));
    const counts = new Map<number | null, number>();
    for (const t of targets) counts.set(t.version, (counts.get(t.version) ?? 0) + 1);
    const byVersion = [...counts]
      .map(([version, n]) => ({ version, targets: n }))
      .sort((a, b) => (b.version ?? -1) - (a.version ?? -1));
    return { latest: migrations.at(-1)?.version ?? null, targets, byVersion };
  } finally {
    await pools.end();
  }
}
