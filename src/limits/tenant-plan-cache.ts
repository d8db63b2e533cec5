import { LRUCache } from 'lru-cache';
import type pg from 'pg';
import { PostgresLiveTransport } from '../live/postgres-live-transport.js';

/** The channel limits migration 001's trigger rings when a tenant's plan or limit overrides change. */
export const LIMITS_CHANNEL = 'tenantry_limits';

/** A tenant's plan and limit overrides as `tenantry.tenants.settings` holds them (unvalidated). */
export interface TenantPlanFacts {
  plan: unknown;
  overrides: unknown;
}

/** Options of {@link TenantPlanCache}. */
export interface TenantPlanCacheOptions {
  /**
   * Listen for plan changes (a direct connection to the catalog's database, any role: LISTEN does
   * not survive pgbouncer's transaction mode). While listening, cached plans live `listeningCacheMs`
   * and a change is seen at its commit; while not (or when the connection is lost), `maxStaleMs`.
   */
  listen?: { connectionString?: string; clientConfig?: pg.ClientConfig };
  /** The oldest cached plan used while not listening. Default 1000 (a plan change shows within 1 s). */
  maxStaleMs?: number;
  /** How long a cached plan lives while listening (a safety net). Default 60 000. */
  listeningCacheMs?: number;
  /** Tenants cached at most (least recently used leave first). Default 10 000. */
  maxTenants?: number;
  /** Listener trouble (reconnects on its own). */
  onListenError?: (error: unknown) => void;
}

interface Entry {
  facts: TenantPlanFacts;
  readAt: number;
}

/**
 * Each tenant's plan and overrides, read from the catalog (owner pool) and cached; forgotten
 * everywhere at the commit of a change (LISTEN), or within `maxStaleMs` without a listener.
 */
export class TenantPlanCache {
  readonly #db: Pick<pg.Pool, 'query'>;
  readonly #maxStaleMs: number;
  readonly #listeningCacheMs: number;
  readonly #cache: LRUCache<string, Entry>;
  readonly #loading = new Map<string, Promise<TenantPlanFacts>>();
  readonly #transport: PostgresLiveTransport | undefined;
  readonly #onListenError: ((error: unknown) => void) | undefined;
  // bumped by every change heard: a read begun before a change is not cached after it
  #generation = 0;

  constructor(db: Pick<pg.Pool, 'query'>, options: TenantPlanCacheOptions = {}) {
    this.#db = db;
    this.#maxStaleMs = options.maxStaleMs ?? 1000;
    this.#listeningCacheMs = options.listeningCacheMs ?? 60_000;
    this.#cache = new LRUCache({ max: options.maxTenants ?? 10_000 });
    this.#onListenError = options.onListenError;
    // the live channels' LISTEN connection (reconnects with backoff) on the limits channel
    this.#transport = options.listen
      ? new PostgresLiveTransport({ ...options.listen, channel: LIMITS_CHANNEL })
      : undefined;
  }

  /** Opens the listening connection (when configured). */
  async start(): Promise<void> {
    await this.#transport?.start({
      signal: () => this.clear(),
      resync: () => this.clear(),
      error: (error) => {
        this.clear();
        this.#onListenError?.(error);
      },
    });
  }

  /** Whether a change is heard at its commit now (the listening connection is up). */
  get listening(): boolean {
    return this.#transport?.backendPid !== undefined;
  }

  /** The tenant's plan facts, from the cache while fresh. */
  async get(tenantId: string): Promise<TenantPlanFacts> {
    const entry = this.#cache.get(tenantId);
    const maxAge = this.listening ? this.#listeningCacheMs : this.#maxStaleMs;
    if (entry && Date.now() - entry.readAt < maxAge) return entry.facts;
    const loading = this.#loading.get(tenantId);
    if (loading) return loading;
    const generation = this.#generation;
    const readAt = Date.now();
    const load: Promise<TenantPlanFacts> = this.#db
      .query<TenantPlanFacts>(
        `select settings -> 'plan' as plan, settings -> 'limits' as overrides from tenantry.tenants where id = $1`,
        [tenantId],
      )
      .then(({ rows }) => {
        const facts = rows[0] ?? { plan: null, overrides: null };
        if (generation === this.#generation) this.#cache.set(tenantId, { facts, readAt });
        return facts;
      })
      .finally(() => {
        if (this.#loading.get(tenantId) === load) this.#loading.delete(tenantId);
      });
    this.#loading.set(tenantId, load);
    return load;
  }

  /** Forgets every cached plan (a change was heard, or made by this instance). */
  clear(): void {
    this.#generation++;
    this.#cache.clear();
    this.#loading.clear();
  }

  async close(): Promise<void> {
    await this.#transport?.close();
  }
}
