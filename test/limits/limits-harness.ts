import pg from 'pg';
import { TenantCatalog } from '../../src/index.js';
import { TenantRateLimits, type TenantRateLimitsOptions } from '../../src/limits/index.js';
import type { TestDatabase } from '../support/test-database.js';

/** The configuration the tests use: `api` per minute, `export` per hour (fails closed). */
export const CONFIG = {
  limits: { api: { durationSeconds: 60 }, export: { durationSeconds: 3600, onStoreDown: 'closed' as const } },
  plans: { free: { api: 5, export: 1 }, pro: { api: 50, export: 10 } },
  defaultPlan: 'free',
};

/** One "instance": its own owner pool (its own connections), its own limiter and cache. */
export interface Instance {
  pool: pg.Pool;
  limits: TenantRateLimits;
}

export async function instance(
  db: TestDatabase,
  opened: Instance[],
  options: Partial<TenantRateLimitsOptions> = {},
): Promise<Instance> {
  const pool = new pg.Pool({ connectionString: db.ownerUrl, max: 4 });
  const limits = new TenantRateLimits({ ...CONFIG, store: { postgres: pool }, catalog: pool, ...options });
  opened.push({ pool, limits });
  await limits.start();
  return { pool, limits };
}

export async function closeAll(opened: Instance[]): Promise<void> {
  for (const i of opened.splice(0)) {
    await i.limits.close();
    await i.pool.end();
  }
}

let n = 0;
/** A new tenant with these settings. */
export async function tenant(db: TestDatabase, settings: Record<string, unknown> = {}): Promise<string> {
  return (await new TenantCatalog(db.owner).create({ slug: `t${Date.now().toString(36)}${n++}`, name: 'T', settings }))
    .id;
}

/** Rows of the counters table for a tenant's key (what the store holds). */
export async function counterRows(db: TestDatabase, tenantId: string): Promise<{ key: string; points: number }[]> {
  const { rows } = await db.admin.query<{ key: string; points: number }>(
    `select key, points from tenantry_private.rate_limits where key like '%' || $1 order by key`,
    [tenantId],
  );
  return rows;
}

/**
 * Waits until `check` holds (polling every 10 ms): it must hold for a check begun within `ms`
 * (how stale an answer is, not how long a loaded machine takes to give it); answers when that
 * check began.
 */
export async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    const at = Date.now() - started;
    if (at >= ms) throw new Error(`not within ${ms} ms`);
    if (await check()) return at;
    await new Promise((r) => setTimeout(r, 10));
  }
}
