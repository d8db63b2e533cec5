import pg from 'pg';
import { TenantryError } from '../../errors/tenantry-error.js';
import { MOVING_SETTING } from '../../tiers/placements.js';
import { withDatabase } from '../../tiers/provision.js';

/**
 * The owner-role pools of the databases a purge works in (one small pool per database, opened on
 * first use), and a superuser connection per cluster for DROP DATABASE. Every owner connection
 * carries `tenantry.moving = on`, as a move's do: application triggers that derive rows (events,
 * counters) skip the rows the purge deletes, instead of writing new rows for the tenant.
 */
export class PurgeDatabases {
  readonly #owners: Record<string, string>;
  readonly #admins: Record<string, string>;
  readonly #pools = new Map<string, pg.Pool>();

  constructor(owners: Record<string, string>, admins: Record<string, string> = {}) {
    this.#owners = owners;
    this.#admins = admins;
  }

  /** The name of `cluster`'s shared database, as its owner URL names it. */
  sharedDatabase(cluster: string): string | undefined {
    const url = this.#owners[cluster];
    return url === undefined ? undefined : decodeURIComponent(new URL(url).pathname.slice(1)) || 'postgres';
  }

  hasAdmin(cluster: string): boolean {
    return this.#admins[cluster] !== undefined;
  }

  pool(cluster: string, database: string): pg.Pool {
    const key = `${cluster}/${database}`;
    let pool = this.#pools.get(key);
    if (!pool) {
      const base = this.#owners[cluster];
      if (base === undefined)
        throw new TenantryError('CLUSTER_UNKNOWN', `No owner connection is configured for cluster ${cluster}`, {
          status: 503,
          details: { cluster },
        });
      pool = new pg.Pool({
        connectionString: database === this.sharedDatabase(cluster) ? base : withDatabase(base, database),
        max: 2,
        idleTimeoutMillis: 5_000,
        connectionTimeoutMillis: 10_000,
        application_name: 'tenantry purge',
        onConnect: async (client) => {
          await client.query(`select pg_catalog.set_config('${MOVING_SETTING}', 'on', false)`);
        },
      });
      pool.on('error', () => undefined);
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /** Drops a database-tier tenant's database (superuser of its cluster), closing this purge's pool to it first. */
  async dropDatabase(cluster: string, database: string, quoted: string): Promise<void> {
    const url = this.#admins[cluster];
    if (url === undefined)
      throw new TenantryError('CLUSTER_UNKNOWN', `No superuser connection is configured for cluster ${cluster}`, {
        status: 503,
        details: { cluster },
      });
    const key = `${cluster}/${database}`;
    const pool = this.#pools.get(key);
    this.#pools.delete(key);
    await pool?.end();
    const client = new pg.Client({
      connectionString: url,
      application_name: 'tenantry purge',
      connectionTimeoutMillis: 10_000,
    });
    await client.connect();
    try {
      await client.query(`DROP DATABASE IF EXISTS ${quoted} WITH (FORCE)`);
    } finally {
      await client.end();
    }
  }

  async databaseExists(cluster: string, database: string): Promise<boolean> {
    const shared = this.sharedDatabase(cluster);
    if (shared === undefined) return false;
    const { rows } = await this.pool(cluster, shared).query('select 1 from pg_database where datname = $1', [database]);
    return rows.length > 0;
  }

  async end(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  }
}
