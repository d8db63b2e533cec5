import type { TenantEvent } from './tenant-event.js';

/** Why a subscription ended. `overflow`: the handler fell `queueLimit` events behind; `unavailable`: the catch-up read failed. */
export type SubscriptionEndReason = 'unsubscribed' | 'overflow' | 'handler-error' | 'unavailable' | 'bus-closed';

/** Receives a tenant's events one at a time; the next waits until the returned promise settles. */
export type TenantEventHandler = (event: TenantEvent) => void | Promise<void>;

/**
 * One subscriber: a bounded queue drained by one handler call at a time. A subscriber that
 * falls `limit` events behind is ended (`overflow`) rather than buffering without bound; it
 * resumes from the log with the last seq it handled (SSE: the client's Last-Event-ID).
 */
export class LiveSubscriber {
  /** Seq of the last event accepted (queued or handled). */
  cursor: number;
  /** While true, live events wait in `pending` so that catch-up reads stay in order. */
  catchingUp = false;
  readonly #pending: TenantEvent[] = [];
  readonly #queue: TenantEvent[] = [];
  readonly #limit: number;
  readonly #handler: TenantEventHandler;
  readonly #onEnd: (reason: SubscriptionEndReason, error?: unknown) => void;
  #draining = false;
  #ended = false;
  #idle: Array<() => void> = [];

  constructor(
    cursor: number,
    limit: number,
    handler: TenantEventHandler,
    onEnd: (reason: SubscriptionEndReason, error?: unknown) => void,
  ) {
    this.cursor = cursor;
    this.#limit = limit;
    this.#handler = handler;
    this.#onEnd = onEnd;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** A live event from the tenant's stream. */
  offerLive(event: TenantEvent): void {
    if (this.#ended) return;
    if (!this.catchingUp) return this.offer(event);
    if (this.#pending.length >= this.#limit) return this.end('overflow');
    this.#pending.push(event);
  }

  /** Queues `event` unless it was already accepted. */
  offer(event: TenantEvent): void {
    if (this.#ended || event.seq <= this.cursor) return;
    if (this.#queue.length >= this.#limit) return this.end('overflow');
    this.#queue.push(event);
    this.cursor = event.seq;
    if (!this.#draining) void this.#drain();
  }

  /** Ends catch-up: the live events that waited are queued (those already read are skipped). */
  finishCatchUp(): void {
    this.catchingUp = false;
    for (const event of this.#pending.splice(0)) this.offer(event);
  }

  /** Resolves when the queue is empty (or the subscriber ended). */
  idle(): Promise<void> {
    if (this.#ended || (!this.#draining && this.#queue.length === 0)) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  end(reason: SubscriptionEndReason, error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#queue.length = 0;
    this.#pending.length = 0;
    this.#wake();
    this.#onEnd(reason, error);
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      while (!this.#ended && this.#queue.length > 0) {
        const event = this.#queue.shift()!;
        try {
          await this.#handler(event);
        } catch (error) {
          this.end('handler-error', error);
        }
      }
    } finally {
      this.#draining = false;
      this.#wake();
    }
  }

  #wake(): void {
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}
