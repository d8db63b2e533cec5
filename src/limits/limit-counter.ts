import { createRequire } from 'node:module';
import type pg from 'pg';
import type * as Flexible from 'rate-limiter-flexible';

// rate-limiter-flexible is CommonJS: its named exports are read through require, so that this
// module loads the same under tsx, vitest and the compiled build
const flexible = createRequire(import.meta.url)('rate-limiter-flexible') as typeof Flexible;

/** The part of an ioredis (5) client the Redis store is recognised by (rate-limiter-flexible runs a Lua script). */
export interface RedisClientLike {
  status: string;
  /** ioredis's events: `ready` is awaited by `start()` while the client is still connecting. */
  once?(event: 'ready' | 'end', listener: () => void): unknown;
  removeListener?(event: 'ready' | 'end', listener: () => void): unknown;
  // rate-limiter-flexible defines its increment script as a command (`rlflxIncr`)
  defineCommand(name: string, definition: { numberOfKeys?: number; lua: string }): void;
}

/**
 * Where the counters live. `postgres`: an OWNER-role pg.Pool (or the same structural pool) of
 * the database where `tenantry install` created `tenantry_private.rate_limits` (nothing else to
 * run). `redis`: an ioredis client (the caller owns and quits it).
 */
export type RateLimitStore = { postgres: Pick<pg.Pool, 'query'> } | { redis: RedisClientLike };

/** A counter's answer: how many points the key has used in its window, and when the window ends. */
export interface CounterState {
  consumed: number;
  msBeforeReset: number;
}

// The counters never refuse by themselves: rate-limiter-flexible has one `points` per limiter
// (no per-key limit, its issue #50), and our limit depends on the tenant's plan. So each counter
// is a limiter with the column's largest points, used as an atomic "add and read back" (one
// INSERT … ON CONFLICT DO UPDATE … RETURNING, or one Lua script), and the caller compares.
const UNLIMITED = 2 ** 31 - 1;

/** An atomic fixed-window counter per key, over rate-limiter-flexible, bounded by a timeout. */
export class LimitCounter {
  readonly #limiter: Flexible.RateLimiterAbstract;

  constructor(
    store: RateLimitStore,
    options: { keyPrefix: string; durationSeconds: number; timeoutMs: number; clearExpired?: boolean },
  ) {
    const common = { keyPrefix: options.keyPrefix, points: UNLIMITED, duration: options.durationSeconds };
    const inner =
      'postgres' in store
        ? new flexible.RateLimiterPostgres({
            ...common,
            storeClient: store.postgres,
            storeType: 'pool',
            schemaName: 'tenantry_private',
            tableName: 'rate_limits',
            // the table is the limits feature's migration, not DDL at run time
            tableCreated: true,
            clearExpiredByTimeout: options.clearExpired ?? false,
          })
        : new flexible.RateLimiterRedis({
            ...common,
            storeClient: store.redis,
            // a Redis that is not connected refuses at once instead of queueing the command
            rejectIfRedisNotReady: true,
          });
    this.#limiter = new flexible.RLWrapperTimeouts({ limiter: inner, timeoutMs: options.timeoutMs });
  }

  /** Adds `cost` to the key's window and answers the total: throws when the store fails or is too slow. */
  async add(key: string, cost: number): Promise<CounterState> {
    return stateOf(await this.#limiter.consume(key, cost).catch(unwrap));
  }

  /** The key's window now (nothing consumed): `consumed` 0 when it has none. */
  async peek(key: string): Promise<CounterState> {
    const res = await this.#limiter.get(key).catch(unwrap);
    return res ? stateOf(res) : { consumed: 0, msBeforeReset: 0 };
  }

  /** Takes `points` back from the key's window (a successful sign-in is not held against its address). */
  async reward(key: string, points: number): Promise<void> {
    await this.#limiter.reward(key, points).catch(unwrap);
  }

  /** Forgets the key's window (a successful sign-in clears its account's failures). */
  async reset(key: string): Promise<void> {
    await this.#limiter.delete(key).catch(unwrap);
  }
}

function stateOf(res: Flexible.RateLimiterRes): CounterState {
  return { consumed: res.consumedPoints, msBeforeReset: Math.max(0, res.msBeforeNext) };
}

// rate-limiter-flexible rejects with a RateLimiterRes when the points run out (cannot happen at
// UNLIMITED, but answer it as a state), and with the store's error otherwise
function unwrap(reason: unknown): Flexible.RateLimiterRes {
  if (reason instanceof flexible.RateLimiterRes) return reason;
  throw reason instanceof Error ? reason : new Error('rate limit store failed');
}

/** ioredis's states while a connection is being made: `start()` waits for `ready` then. */
const CONNECTING = new Set(['wait', 'connecting', 'connect', 'reconnecting']);

/**
 * Waits (at most `timeoutMs`) for an ioredis client that is still connecting to be ready, so the
 * first requests after `start()` are counted rather than meeting a store that is "down" only
 * because its connection was not made yet (each would be admitted uncounted, or refused, by the
 * limit's `onStoreDown`). A client already ready, or gone (`end`), is left to that policy.
 * Returns whether it is ready.
 */
export async function redisReady(client: RedisClientLike, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return true;
  if (!CONNECTING.has(client.status) || typeof client.once !== 'function') return false;
  return new Promise<boolean>((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer);
      client.removeListener?.('ready', onReady);
      client.removeListener?.('end', onEnd);
      resolve(ready);
    };
    const onReady = () => done(true);
    const onEnd = () => done(false);
    const timer = setTimeout(() => done(client.status === 'ready'), timeoutMs);
    client.once!('ready', onReady);
    client.once!('end', onEnd);
  });
}
