/**
 * Where a {@link TenantCache} keeps its entries. Every method names the tenant explicitly and
 * the backend owns the tenant's generation counter: an entry is stored under the generation
 * current when it was written, so bumping the counter makes every older entry of that tenant
 * unreachable at once (no scan, no global flush) and leaves other tenants' entries alone.
 *
 * Backends are given canonical tenant ids (validated UUIDs) and keys already encoded by the
 * cache (`s:` + key, or `h:` + SHA-256 of a long key): nothing the caller controls comes before
 * the tenant's part of the stored key.
 */
export interface CacheBackend {
  /** Shown in errors and docs, e.g. `memory` or `redis`. */
  readonly kind: string;
  /** The tenant's current generation (0 before the first invalidation). */
  generation(tenantId: string): Promise<number>;
  /** The entry under the tenant's current generation, or `undefined`. */
  get(tenantId: string, key: string): Promise<unknown>;
  /**
   * Stores an entry. With `generation`, under that generation (a loader that started before an
   * invalidation then writes where nobody reads); without it, under the current one.
   */
  set(tenantId: string, key: string, value: unknown, ttlMs: number, generation?: number): Promise<void>;
  /** Removes one entry of the current generation. */
  delete(tenantId: string, key: string): Promise<void>;
  /** Bumps the tenant's generation: all its entries are gone for readers. Returns the new one. */
  invalidate(tenantId: string): Promise<number>;
  /** How many stored entries (any generation) belong to the tenant. */
  count(tenantId: string): Promise<number>;
  /** Removes every stored entry of the tenant (any generation) and its counter; returns how many. */
  purge(tenantId: string): Promise<number>;
  /** Synchronous read for in-process backends (the hot path of settings and flags). */
  peek?(tenantId: string, key: string): unknown;
}
