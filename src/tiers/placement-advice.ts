import type { PlacementDecision } from './placement-policy.js';
import type { Tier } from './tenant-router.js';

/** One tenant's figures over a window, as `tenantry tenants top` gathers them. */
export interface TenantLoad {
  tenantId: string;
  slug: string;
  tier: Tier;
  /** Share of every tenant's DB time in the window, 0-1. */
  dbShare: number;
  /** DB time in the window, ms (compared with {@link LoadAdviceOptions.minDbTimeMs}). */
  dbTimeMs?: number;
  statements: number;
  timeouts: number;
  waits: number;
  waitMs: number;
}

/** Options of {@link adviseOnLoad}. */
export interface LoadAdviceOptions {
  /** A tenant past this share of DB time, outside its own database, is advised to move (default 0.25). */
  moveShare?: number;
  /** The window's length, in words ("this hour", "in the last 15 min"). */
  window: string;
  /** Where the placement policy would put a tenant that gets a database of its own (see `planPlacementPolicy`). */
  target?: (load: TenantLoad) => PlacementDecision | undefined;
  /**
   * On a Citus cluster (docs/citus.md): a hot tenant is advised a shard of its own
   * (`tenantry citus place … --apply`, the Citus placement policy) instead of a database.
   * `table` is a distributed tenant table of the colocation group.
   */
  citus?: { table: string };
  /**
   * A move (or a shard) is advised only past this much DB time in the window, ms (default 0): at
   * trivial load one tenant's share is large and means nothing. `tenants top` uses 60 s.
   */
  minDbTimeMs?: number;
  /** Connection waits are advised on only from this many waits in the window (default 1; `tenants top`: 10). */
  minWaits?: number;
}

/**
 * Advice for an operator from a window of per-tenant load: a tenant taking more than its share of
 * the database's time, outside its own database, should move there (the placement policy names
 * the cluster and database); a tenant hitting its timeouts, or waiting for connections, is named.
 *
 * @example
 * adviseOnLoad(loads, { window: 'this hour' }) // ['acme used 61 % of DB time this hour: move it to its own database (…)']
 */
export function adviseOnLoad(loads: TenantLoad[], options: LoadAdviceOptions): string[] {
  const moveShare = options.moveShare ?? 0.25;
  const minDbTimeMs = options.minDbTimeMs ?? 0;
  const minWaits = Math.max(1, options.minWaits ?? 1);
  const advice: string[] = [];
  const others = loads.filter((l) => l.tenantId !== '').length;
  for (const load of [...loads].sort((a, b) => b.dbShare - a.dbShare)) {
    if (load.tenantId === '') continue;
    const pct = Math.round(load.dbShare * 100);
    const busy = (load.dbTimeMs ?? Infinity) >= minDbTimeMs;
    if (busy && load.dbShare >= moveShare && options.citus && others > 1) {
      advice.push(
        `${load.slug} used ${pct} % of DB time ${options.window}: give it a shard of its own on the least loaded worker: tenantry citus place ${load.slug} --table ${options.citus.table} --share ${load.dbShare.toFixed(2)} --apply`,
      );
    } else if (busy && load.dbShare >= moveShare && load.tier !== 'database' && others > 1) {
      const decision = options.target?.(load);
      const where =
        decision && decision.target.tier === 'database'
          ? `: tenantry tenants move ${load.slug} --to database --database ${decision.target.database}${decision.target.cluster !== 'home' ? ` --cluster ${decision.target.cluster}` : ''}`
          : '';
      advice.push(`${load.slug} used ${pct} % of DB time ${options.window}: move it to its own database${where}`);
    }
    if (load.timeouts > 0)
      advice.push(
        `${load.slug} hit its statement or lock timeout ${load.timeouts} time(s) ${options.window}: look at its slow statements and locks, or its plan's limits`,
      );
    if (load.waits >= minWaits && load.waitMs / load.waits >= 50)
      advice.push(
        `${load.slug} waited ${Math.round(load.waitMs / load.waits)} ms on average for a connection (${load.waits} waits) ${options.window}: a bigger pool, a higher weight, or its own database`,
      );
  }
  return advice;
}
