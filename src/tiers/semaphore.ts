import { abortError } from '../errors/wait-errors.js';

/** One waiter in a Semaphore's queue: `take` hands it a slot, false when it gave up meanwhile. */
interface Waiter {
  take(): boolean;
}

/**
 * A counting semaphore whose waits end: at most `size` holders at once, the rest wait in arrival
 * order until a deadline or until their work's signal aborts. A release hands its slot straight to
 * the first waiter still waiting, so a free slot means nobody waits and `tryAcquire` takes it
 * synchronously. Hand-written (issue 15): a RoutedTenantPool statement takes three slots, one of
 * them its tenant's, made on demand and dropped when idle, so a slot is a counter and a queue made
 * only when someone waits; async-mutex, used before, made a promise per acquire and a queue per
 * semaphore. A deadline and a signal per wait: the time left of one checkout, which spans several
 * semaphores.
 */
export class Semaphore {
  #free: number;
  #waiters: Waiter[] | undefined;

  constructor(readonly size: number) {
    this.#free = size;
  }

  /** Slots held right now. */
  get inUse(): number {
    return this.size - this.#free;
  }

  /** True when nobody holds or waits for a slot (a waiter that gave up does not count). */
  get idle(): boolean {
    return this.#free === this.size;
  }

  /** Takes a free slot now, if there is one (true). */
  tryAcquire(): boolean {
    if (this.#free <= 0) return false;
    this.#free--;
    return true;
  }

  /**
   * Resolves holding a slot; rejects with `onTimeout()` when none is free by `deadline`
   * (Date.now() milliseconds), or with the work's abort error when `signal` aborts first. A slot
   * released to a waiter that gave up is passed on at once.
   */
  acquire(deadline: number, onTimeout: () => Error, signal?: AbortSignal): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const left = deadline - Date.now();
    if (left <= 0) return Promise.reject(onTimeout());
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const end = () => {
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        if (done) return;
        end();
        reject(abortError(signal!));
      };
      const timer = setTimeout(() => {
        if (done) return;
        end();
        reject(onTimeout());
      }, left);
      signal?.addEventListener('abort', onAbort, { once: true });
      (this.#waiters ??= []).push({
        take: () => {
          if (done) return false;
          end();
          resolve();
          return true;
        },
      });
    });
  }

  release(): void {
    const waiters = this.#waiters;
    if (waiters !== undefined) {
      while (waiters.length > 0) if (waiters.shift()!.take()) return; // handed over: still in use
      this.#waiters = undefined;
    }
    this.#free++;
  }
}
