import { abortError } from '../errors/wait-errors.js';

interface Waiter {
  readonly seq: number;
  readonly grant: () => void;
  done: boolean;
}

/** Entries (tenants) kept while idle; dispatch compares at most this many idle ones besides the busy. */
const KEEP_IDLE = 64;

/** Buckets kept before the full ones are swept (each a few dozen bytes). */
const MAX_BUDGETS = 10_000;

interface TenantSlots {
  held: number;
  weight: number;
  cap: number;
  waiting: Waiter[];
}

/**
 * Weighted fair sharing of a pool's connections between tenants: at most `size` checkouts at
 * once, at most `maxPerTenant` of them for one tenant, and when a connection frees up while
 * several tenants wait, it goes to the waiting tenant holding the fewest connections for its
 * weight (held / weight; ties: who waited longest). So a tenant sending ten times the load of
 * another gets at most its weighted share while the other waits, and a tenant whose statements
 * are stuck (a lock, a slow query) can never hold the connections the others need.
 *
 * Written here rather than taken from a library: p-queue, async-mutex and bottleneck queue by
 * priority or FIFO, none by a key's current holdings and weight. The uncontended path is a map
 * lookup and two counters, no promise.
 */
export class FairCheckout {
  #inUse = 0;
  #waiters = 0;
  #seq = 0;
  readonly #tenants = new Map<string, TenantSlots>();
  /** Entries of dropped idle tenants, reused (held 0, nobody waiting). */
  readonly #spare: TenantSlots[] = [];
  /** Token buckets of connection time (ms) of tenants with a budget; dropped once full again. */
  readonly #budgets = new Map<string, { tokens: number; at: number; rate: number; burst: number }>();

  constructor(
    readonly size: number,
    readonly maxPerTenant: number,
  ) {}

  /** Checkouts held right now. */
  get inUse(): number {
    return this.#inUse;
  }

  /** Checkouts waiting right now. */
  get waiting(): number {
    return this.#waiters;
  }

  /** Connections `key` holds right now. */
  heldBy(key: string): number {
    return this.#tenants.get(key)?.held ?? 0;
  }

  /** Takes a slot now when one is free, nobody waits, and `key` is under its cap (`cap`, at most `maxPerTenant`). */
  tryAcquire(key: string, weight: number, cap = Infinity): boolean {
    if (this.#inUse >= this.size || this.#waiters > 0) return false;
    const t = this.#tenant(key, weight, cap);
    if (t.held >= t.cap) return false;
    t.held++;
    this.#inUse++;
    return true;
  }

  /**
   * Resolves holding a slot for `key`; rejects with `onTimeout()` at `deadline` (Date.now() ms,
   * or Infinity) or with the work's abort error when `signal` aborts first.
   */
  acquire(
    key: string,
    weight: number,
    deadline: number,
    onTimeout: () => Error,
    signal?: AbortSignal,
    cap = Infinity,
  ): Promise<void> {
    if (this.tryAcquire(key, weight, cap)) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const left = deadline - Date.now();
    if (left <= 0) return Promise.reject(onTimeout());
    return new Promise<void>((resolve, reject) => {
      const t = this.#tenant(key, weight, cap);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const giveUp = (error: Error) => {
        if (waiter.done) return;
        waiter.done = true;
        this.#waiters--;
        const i = t.waiting.indexOf(waiter);
        if (i >= 0) t.waiting.splice(i, 1);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#forget(key, t);
        reject(error);
      };
      const onAbort = () => giveUp(abortError(signal!));
      const waiter: Waiter = {
        seq: this.#seq++,
        done: false,
        grant: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      t.waiting.push(waiter);
      this.#waiters++;
      if (Number.isFinite(left)) timer = setTimeout(() => giveUp(onTimeout()), left);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#dispatch();
    });
  }

  /**
   * How long (ms) `key` must wait before its next checkout under a budget of `rate` ms of
   * connection time per second (burst `burst` ms): 0 while its bucket is not in debt. `now` is
   * performance.now().
   */
  budgetDelay(key: string, rate: number, burst: number, now: number): number {
    const b = this.#budgets.get(key);
    if (!b) return 0;
    b.rate = rate;
    b.burst = burst;
    this.#refill(b, now);
    if (b.tokens >= burst) {
      this.#budgets.delete(key);
      return 0;
    }
    return b.tokens >= 0 ? 0 : (-b.tokens * 1000) / rate;
  }

  /** Charges `ms` of connection time to `key`'s budget (`rate` ms per second, burst `burst`). */
  charge(key: string, ms: number, rate: number, burst: number, now: number): void {
    let b = this.#budgets.get(key);
    if (!b) {
      if (this.#budgets.size >= MAX_BUDGETS) this.#sweep(now);
      b = { tokens: burst, at: now, rate, burst };
      this.#budgets.set(key, b);
    } else this.#refill(b, now);
    b.tokens -= ms;
  }

  /** Forgets the buckets that are full again (tenants that stopped): a bucket is kept only while in use. */
  #sweep(now: number): void {
    for (const [key, b] of this.#budgets) {
      this.#refill(b, now);
      if (b.tokens >= b.burst) this.#budgets.delete(key);
    }
  }

  #refill(b: { tokens: number; at: number; rate: number; burst: number }, now: number): void {
    b.tokens = Math.min(b.burst, b.tokens + ((now - b.at) * b.rate) / 1000);
    b.at = now;
  }

  /** Gives back a slot `key` held, and hands free slots to the waiters that deserve them most. */
  release(key: string): void {
    const t = this.#tenants.get(key);
    if (!t || t.held === 0) return;
    t.held--;
    this.#inUse--;
    if (this.#waiters > 0) this.#dispatch();
    this.#forget(key, t);
  }

  #tenant(key: string, weight: number, cap: number): TenantSlots {
    const limit = Math.min(cap, this.maxPerTenant);
    let t = this.#tenants.get(key);
    if (!t) {
      t = this.#spare.pop();
      if (t) {
        t.weight = weight;
        t.cap = limit;
      } else t = { held: 0, weight, cap: limit, waiting: [] };
      this.#tenants.set(key, t);
    } else {
      t.weight = weight;
      t.cap = limit;
    }
    return t;
  }

  // An idle tenant's entry is kept while few are (a checkout then allocates nothing: ~300 ns less
  // per statement in bench/accounting-cost.ts); past KEEP_IDLE entries, idle ones are dropped.
  #forget(key: string, t: TenantSlots): void {
    if (t.held === 0 && t.waiting.length === 0 && this.#tenants.size > KEEP_IDLE && this.#tenants.get(key) === t) {
      this.#tenants.delete(key);
      if (this.#spare.length < KEEP_IDLE) this.#spare.push(t); // reused by the next new tenant
    }
  }

  // O(tenants waiting) per hand-over: only tenants with waiters are compared, usually few.
  #dispatch(): void {
    while (this.#inUse < this.size && this.#waiters > 0) {
      let best: TenantSlots | undefined;
      for (const t of this.#tenants.values()) {
        if (t.waiting.length === 0 || t.held >= t.cap) continue;
        if (
          !best ||
          t.held / t.weight < best.held / best.weight ||
          (t.held / t.weight === best.held / best.weight && t.waiting[0]!.seq < best.waiting[0]!.seq)
        )
          best = t;
      }
      if (!best) return; // every waiter is at its tenant's cap
      const waiter = best.waiting.shift()!;
      waiter.done = true;
      this.#waiters--;
      best.held++;
      this.#inUse++;
      waiter.grant();
    }
  }
}
