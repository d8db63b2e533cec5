import { LRUCache } from 'lru-cache';
import type { TenantStatus } from '../catalog/tenant.js';
import { ConfigurationError } from '../errors/tenantry-error.js';
import type { SqlExecutor } from './job-queue-adapter.js';

/** A tenant's status as a job sees it: the catalog's, or `missing` when no row exists. */
export type JobTenantStatus = TenantStatus | 'missing';

/**
 * The worker's first line: each tenant job's tenant is looked up in the catalog (owner role)
 * before its handler runs, cached for at most `maxStalenessMs` (≤ 1000). A status change is seen
 * by every worker within that bound; the tenant pools' own refusal in the database is the
 * second line.
 */
export class TenantStatusGate {
  readonly #db: SqlExecutor;
  readonly #cache: LRUCache<string, { status: JobTenantStatus }> | undefined;

  constructor(db: SqlExecutor, options: { maxStalenessMs?: number } = {}) {
    const ttl = options.maxStalenessMs ?? 500;
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > 1000)
      throw new ConfigurationError('maxStalenessMs must be a whole number of milliseconds from 0 to 1000');
    this.#db = db;
    this.#cache = ttl === 0 ? undefined : new LRUCache({ max: 10_000, ttl, ttlAutopurge: false });
  }

  /** The tenant's status now (or at most maxStalenessMs ago). */
  async status(tenantId: string): Promise<JobTenantStatus> {
    const hit = this.#cache?.get(tenantId);
    if (hit) return hit.status;
    const { rows } = await this.#db.query<{ status: TenantStatus }>(
      'select status from tenantry.tenants where id = $1',
      [tenantId],
    );
    const status: JobTenantStatus = rows[0]?.status ?? 'missing';
    this.#cache?.set(tenantId, { status });
    return status;
  }

  /** Forgets every cached status (tests, or after a lifecycle change in this process). */
  clear(): void {
    this.#cache?.clear();
  }
}
