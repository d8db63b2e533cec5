import { LRUCache } from 'lru-cache';
import type { CacheBackend } from './cache-backend.js';

/** Options of {@link MemoryCacheBackend}. */
export interface MemoryCacheBackendOptions {
  /** Most entries kept (all tenants together); the least recently used go first. Default 10,000. */
  max?: number;
}

interface Box {
  value: unknown;
}

// NUL cannot occur in a canonical tenant id nor in a generation number, so the tenant's part of
// a stored key always ends at the first NUL whatever the caller's key holds.
const SEP = '\u0000';

/**
 * The in-process backend: one LRU (lru-cache) for every tenant, with a TTL per entry and a
 * generation counter per tenant. Values are kept as given (not copied): do not mutate what
 * you store or read. Each process has its own: invalidating here does not reach other
 * instances (settings and flags ring the others over LISTEN/NOTIFY or Redis).
 *
 * @example
 * const cache = new TenantCache({ backend: new MemoryCacheBackend({ max: 50_000 }) });
 */
export class MemoryCacheBackend implements CacheBackend {
  readonly kind = 'memory';
  readonly #lru: LRUCache<string, Box>;
  readonly #generations = new Map<string, number>();

  constructor(options: MemoryCacheBackendOptions = {}) {
    // ttlAutopurge off: expired entries are dropped when read or evicted, no timer per entry
    this.#lru = new LRUCache<string, Box>({ max: options.max ?? 10_000, ttlAutopurge: false, allowStale: false });
  }

  #key(tenantId: string, generation: number, key: string): string {
    return tenantId + SEP + generation + SEP + key;
  }

  peek(tenantId: string, key: string): unknown {
    return this.#lru.get(this.#key(tenantId, this.#generations.get(tenantId) ?? 0, key))?.value;
  }

  async generation(tenantId: string): Promise<number> {
    return this.#generations.get(tenantId) ?? 0;
  }

  async get(tenantId: string, key: string): Promise<unknown> {
    return this.peek(tenantId, key);
  }

  async set(tenantId: string, key: string, value: unknown, ttlMs: number, generation?: number): Promise<void> {
    const current = this.#generations.get(tenantId) ?? 0;
    // an older generation is unreachable: storing it would only take room
    if (generation !== undefined && generation !== current) return;
    this.#lru.set(this.#key(tenantId, current, key), { value }, { ttl: ttlMs });
  }

  async delete(tenantId: string, key: string): Promise<void> {
    this.#lru.delete(this.#key(tenantId, this.#generations.get(tenantId) ?? 0, key));
  }

  async invalidate(tenantId: string): Promise<number> {
    const next = (this.#generations.get(tenantId) ?? 0) + 1;
    this.#generations.set(tenantId, next);
    return next;
  }

  async count(tenantId: string): Promise<number> {
    return this.#keysOf(tenantId).length;
  }

  async purge(tenantId: string): Promise<number> {
    const keys = this.#keysOf(tenantId);
    for (const key of keys) this.#lru.delete(key);
    // the counter stays bumped (not removed): a load that began before the purge writes under an
    // older generation and is dropped, instead of reappearing under a counter restarted at 0
    await this.invalidate(tenantId);
    return keys.length;
  }

  #keysOf(tenantId: string): string[] {
    const prefix = tenantId + SEP;
    return [...this.#lru.keys()].filter((k) => k.startsWith(prefix));
  }
}
