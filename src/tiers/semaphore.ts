import { Semaphore as QueueSemaphore, withTimeout } from 'async-mutex';
import { abortError } from '../errors/wait-errors.js';

/**
 * A counting semaphore whose waits end: at most `size` holders at once, the rest wait in arrival
 * order until a deadline. The queue is async-mutex's; this adds the deadline per wait (the time
 * left of one checkout, which spans several semaphores) and a cheap path when a slot is free.
 */
export class Semaphore {
  readonly #queue: QueueSemaphore;

  constructor(readonly size: number) {
    this.#queue = new QueueSemaphore(size);
  }

  /** Slots held right now. */
  get inUse(): number {
    return this.size - this.#queue.getValue();
  }

  /** True when nobody holds or waits for a slot. */
  get idle(): boolean {
    return this.#queue.getValue() === this.size;
  }

  /**
   * Resolves holding a slot; rejects with `onTimeout()` when none is free by `deadline`
   * (Date.now() milliseconds), or with the work's abort error when `signal` aborts first. A slot
   * granted to a waiter that gave up is passed on at once.
   */
  async acquire(deadline: number, onTimeout: () => Error, signal?: AbortSignal): Promise<void> {
    // a free slot means nobody waits (a release hands it straight to the next waiter)
    if (this.#queue.getValue() > 0) {
      await this.#queue.acquire();
      return;
    }
    const left = deadline - Date.now();
    if (left <= 0) throw onTimeout();
    const ticket = withTimeout(this.#queue, left, onTimeout()).acquire();
    if (!signal) {
      await ticket;
      return;
    }
    if (signal.aborted) {
      void ticket.then(
        () => this.#queue.release(),
        () => undefined,
      );
      throw abortError(signal);
    }
    await new Promise<void>((resolve, reject) => {
      let gaveUp = false;
      const onAbort = () => {
        gaveUp = true;
        reject(abortError(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      ticket.then(
        () => {
          signal.removeEventListener('abort', onAbort);
          if (gaveUp) this.#queue.release();
          else resolve();
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          if (!gaveUp) reject(error);
        },
      );
    });
  }

  release(): void {
    this.#queue.release();
  }
}
