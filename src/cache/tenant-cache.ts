import { createHash } from 'node:crypto';
import { currentTenant } from '../context/tenant-context.js';
import { InvalidArgumentError } from '../errors/tenantry-error.js';
import type { CacheBackend } from './cache-backend.js';
import { CacheKeyInvalidError } from './cache-errors.js';

/** Options of {@link TenantCache}. */
export interface TenantCacheOptions {
  backend: CacheBackend;
  /** Default time to live of an entry (ms). Default 300,000 (5 minutes). */
  ttlMs?: number;
  /** Longest key accepted, in UTF-16 code units. Default 4,096. Keys past 200 are stored by their SHA-256. */
  maxKeyLength?: number;
}

// keys up to this length are stored as they are; longer ones by their digest, so a huge key costs
// the backend 64 bytes, not its length
const HASH_FROM = 200;
// a lone surrogate (half of a pair): not well-formed Unicode
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * A cache whose every key belongs to the current tenant (`runAs`): the tenant comes from the
 * context, never from the key, and without a tenant every call fails closed
 * (`TENANT_SCOPE_MISSING`). A key is any well-formed string: separators, Unicode, even another
 * tenant's id spelled into it stay inside the current tenant's namespace. `invalidateTenant()`
 * empties the current tenant's cache in O(1) by bumping its generation counter; there is no
 * global flush.
 *
 * @example
 * const cache = new TenantCache({ backend: new MemoryCacheBackend() });
 * const plan = await runAs(tenantId, () => cache.getOrLoad('plan', () => loadPlan()));
 */
export class TenantCache {
  readonly backend: CacheBackend;
  readonly #ttlMs: number;
  readonly #maxKeyLength: number;

  constructor(options: TenantCacheOptions) {
    this.backend = options.backend;
    this.#ttlMs = options.ttlMs ?? 300_000;
    this.#maxKeyLength = options.maxKeyLength ?? 4096;
    if (!(this.#ttlMs > 0)) throw new InvalidArgumentError('ttlMs must be positive', 'ttlMs');
  }

  /** The current tenant's entry, or `undefined`. */
  async get<T>(key: string): Promise<T | undefined> {
    return (await this.backend.get(currentTenant(), this.#encode(key))) as T | undefined;
  }

  /**
   * The current tenant's entry, read synchronously: in-process backends only (memory). This is
   * the hot path of settings and flags.
   */
  peek<T>(key: string): T | undefined {
    const tenant = currentTenant();
    if (!this.backend.peek)
      throw new InvalidArgumentError(`the ${this.backend.kind} backend cannot be read synchronously`, 'backend');
    return this.backend.peek(tenant, this.#encode(key)) as T | undefined;
  }

  /** Stores an entry for the current tenant. */
  async set(key: string, value: unknown, options: { ttlMs?: number } = {}): Promise<void> {
    if (value === undefined) throw new InvalidArgumentError('undefined cannot be cached: delete the key', 'value');
    await this.backend.set(currentTenant(), this.#encode(key), value, options.ttlMs ?? this.#ttlMs);
  }

  /** Removes one of the current tenant's entries. */
  async delete(key: string): Promise<void> {
    await this.backend.delete(currentTenant(), this.#encode(key));
  }

  /**
   * The entry, or `load()`'s value, stored. A load that an invalidation overtakes is returned to
   * its caller but stored under the generation it started in, where no reader looks: a slow
   * read of the database never puts an old value back after a newer change was announced.
   */
  async getOrLoad<T>(key: string, load: () => Promise<T> | T, options: { ttlMs?: number } = {}): Promise<T> {
    const tenant = currentTenant();
    const encoded = this.#encode(key);
    const generation = await this.backend.generation(tenant);
    const hit = await this.backend.get(tenant, encoded);
    if (hit !== undefined) return hit as T;
    const value = await load();
    if (value !== undefined) await this.backend.set(tenant, encoded, value, options.ttlMs ?? this.#ttlMs, generation);
    return value;
  }

  /** Empties the current tenant's cache (bumps its generation); other tenants keep theirs. */
  async invalidateTenant(): Promise<void> {
    await this.backend.invalidate(currentTenant());
  }

  #encode(key: string): string {
    if (typeof key !== 'string') throw new CacheKeyInvalidError('a key must be a string');
    if (key.length === 0) throw new CacheKeyInvalidError('a key must not be empty');
    if (key.length > this.#maxKeyLength)
      throw new CacheKeyInvalidError(`a key must be at most ${this.#maxKeyLength} characters`);
    if (LONE_SURROGATE.test(key)) throw new CacheKeyInvalidError('a key must be well-formed Unicode');
    return key.length <= HASH_FROM ? `s:${key}` : `h:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
  }
}
