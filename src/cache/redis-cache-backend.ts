import { InvalidArgumentError } from '../errors/tenantry-error.js';
import type { CacheBackend } from './cache-backend.js';

/** The part of an ioredis client the Redis backend uses (structural: Tenantry does not import ioredis). */
export interface RedisCacheClientLike {
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  get(key: string): Promise<string | null>;
  set(key: string, value: string, mode: 'PX', ttlMs: number): Promise<unknown>;
  incr(key: string): Promise<number>;
  del(...keys: string[]): Promise<number>;
  scan(cursor: string, match: 'MATCH', pattern: string, count: 'COUNT', n: number): Promise<[string, string[]]>;
}

/** Options of {@link RedisCacheBackend}. */
export interface RedisCacheBackendOptions {
  /** Prefix of every key, e.g. `myapp:cache:` (default `tenantry:cache:`): [A-Za-z0-9:_-] only. */
  prefix?: string;
}

// One round trip for a read: the tenant's generation and the entry under it. Every key of a
// tenant carries the same hash tag ({tenant-id}), so they live in one slot of a Redis Cluster.
const GET_SCRIPT = `local g = redis.call('GET', KEYS[1]) or '0'
return redis.call('GET', ARGV[1] .. g .. ':' .. ARGV[2])`;
const SET_SCRIPT = `local g = redis.call('GET', KEYS[1]) or '0'
if ARGV[4] ~= '' and ARGV[4] ~= g then return 0 end
redis.call('SET', ARGV[1] .. g .. ':' .. ARGV[2], ARGV[3], 'PX', ARGV[5])
return 1`;
const DEL_SCRIPT = `local g = redis.call('GET', KEYS[1]) or '0'
return redis.call('DEL', ARGV[1] .. g .. ':' .. ARGV[2])`;

/**
 * The shared backend on Redis (ioredis): entries are JSON under
 * `<prefix>{<tenant-id>}:<generation>:<key>`, the counter under `<prefix>{<tenant-id>}:gen`.
 * Invalidation is one INCR; the old generation's entries expire by their TTL. A purge SCANs
 * only the tenant's own keys (the pattern starts with the fixed-length tenant id, before any
 * part the caller chose) and deletes them with the counter.
 *
 * @example
 * const cache = new TenantCache({ backend: new RedisCacheBackend(new Redis(process.env.REDIS_URL)) });
 */
export class RedisCacheBackend implements CacheBackend {
  readonly kind = 'redis';
  readonly #redis: RedisCacheClientLike;
  readonly #prefix: string;

  constructor(redis: RedisCacheClientLike, options: RedisCacheBackendOptions = {}) {
    this.#redis = redis;
    this.#prefix = options.prefix ?? 'tenantry:cache:';
    if (!/^[A-Za-z0-9:_-]{1,100}$/.test(this.#prefix))
      throw new InvalidArgumentError('prefix must be 1-100 of [A-Za-z0-9:_-]', 'prefix');
  }

  #tenant(tenantId: string): string {
    return `${this.#prefix}{${tenantId}}:`;
  }

  async generation(tenantId: string): Promise<number> {
    return Number((await this.#redis.get(`${this.#tenant(tenantId)}gen`)) ?? 0);
  }

  async get(tenantId: string, key: string): Promise<unknown> {
    const base = this.#tenant(tenantId);
    const raw = (await this.#redis.eval(GET_SCRIPT, 1, `${base}gen`, base, key)) as string | null;
    return raw === null ? undefined : JSON.parse(raw);
  }

  async set(tenantId: string, key: string, value: unknown, ttlMs: number, generation?: number): Promise<void> {
    const base = this.#tenant(tenantId);
    const json = JSON.stringify(value);
    if (json === undefined) throw new InvalidArgumentError('the value must be JSON-serialisable', 'value');
    await this.#redis.eval(
      SET_SCRIPT,
      1,
      `${base}gen`,
      base,
      key,
      json,
      generation === undefined ? '' : String(generation),
      Math.max(1, Math.ceil(ttlMs)),
    );
  }

  async delete(tenantId: string, key: string): Promise<void> {
    const base = this.#tenant(tenantId);
    await this.#redis.eval(DEL_SCRIPT, 1, `${base}gen`, base, key);
  }

  async invalidate(tenantId: string): Promise<number> {
    return this.#redis.incr(`${this.#tenant(tenantId)}gen`);
  }

  async count(tenantId: string): Promise<number> {
    return (await this.#keysOf(tenantId)).filter((k) => !k.endsWith('}:gen')).length;
  }

  async purge(tenantId: string): Promise<number> {
    const keys = await this.#keysOf(tenantId);
    for (let i = 0; i < keys.length; i += 500) await this.#redis.del(...keys.slice(i, i + 500));
    return keys.filter((k) => !k.endsWith('}:gen')).length;
  }

  async #keysOf(tenantId: string): Promise<string[]> {
    // the prefix is [A-Za-z0-9:_-] and the tenant id a UUID: no glob character before the '*'
    const pattern = `${this.#tenant(tenantId)}*`;
    const keys = new Set<string>();
    let cursor = '0';
    do {
      const [next, batch] = await this.#redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      for (const k of batch) keys.add(k);
      cursor = next;
    } while (cursor !== '0');
    return [...keys];
  }
}
