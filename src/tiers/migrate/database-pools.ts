import pg from 'pg';
import { TenantryError } from '../../errors/tenantry-error.js';
import { withDatabase } from '../provision.js';

/**
 * One small pool per database the migrator works in (1,000 tenant schemas in one database share
 * one pool), opened on first use and closed as soon as the run is done with that database, so
 * the connections held stay near the run's concurrency however many databases there are.
 */
export class DatabasePools {
  readonly #clusters: Record<string, string>;
  readonly #max: number;
  readonly #pools = new Map<string, pg.Pool>();

  /** `clusters`: each cluster's shared database URL (owner role, or a superuser: the migrator sets the owner role). */
  constructor(clusters: Record<string, string>, max: number) {
    this.#clusters = clusters;
    this.#max = max;
  }

  /** The shared database's name of `cluster`, as its URL names it. */
  sharedDatabase(cluster: string): string | undefined {
    const url = this.#clusters[cluster];
    return url === undefined ? undefined : decodeURIComponent(new URL(url).pathname.slice(1)) || 'postgres';
  }

  pool(cluster: string, database: string): pg.Pool {
    const key = `${cluster}/${database}`;
    let pool = this.#pools.get(key);
    if (!pool) {
      const base = this.#clusters[cluster];
      if (base === undefined) {
        throw new TenantryError('CLUSTER_UNKNOWN', `No connection is configured for cluster ${cluster}`, {
          status: 503,
          details: { cluster },
        });
      }
      const url = database === this.sharedDatabase(cluster) ? base : withDatabase(base, database);
      pool = new pg.Pool({
        connectionString: url,
        max: this.#max,
        idleTimeoutMillis: 5_000,
        application_name: 'tenantry migrate',
      });
      pool.on('error', () => undefined);
      this.#pools.set(key, pool);
    }
    return pool;
  }

  async close(cluster: string, database: string): Promise<void> {
    const key = `${cluster}/${database}`;
    const pool = this.#pools.get(key);
    this.#pools.delete(key);
    await pool?.end();
  }

  async end(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.end()));
  }
}
