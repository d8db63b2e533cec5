import { randomUUID } from 'node:crypto';
import type { Queryable } from '../catalog/tenant-catalog.js';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { UsageBufferFullError, UsageFlushFailedError, UsageRecorderClosedError } from './metering-errors.js';
import { validateUsageEvent, type UsageEvent } from './usage-event.js';

/** Options of {@link UsageRecorder}. */
export interface UsageRecorderOptions {
  /**
   * Where the events go: a pool on the OWNER role (or any role that may write
   * `tenantry.usage_events`; the app role may not), in the database holding the tenant catalog.
   */
  pool: Queryable;
  /** Events (and distinct counters) held at most before `record` refuses with USAGE_BUFFER_FULL. Default 10,000. */
  maxBuffered?: number;
  /** Events written per statement. Default 500. */
  maxBatch?: number;
  /** How often buffered events are flushed, in ms (a `record` waits at most about this long for its acknowledgement). Default 250. */
  flushIntervalMs?: number;
  /** Attempts of one batch before its events are rejected with USAGE_FLUSH_FAILED. Default 5. */
  maxAttempts?: number;
  /** Window of the counters `add` aggregates, in ms (default 60,000): one event per tenant, meter and window. */
  counterWindowMs?: number;
  /** Names this process in the keys of counter events (default: a random uuid per recorder). */
  instanceId?: string;
  /** Told about a failed flush attempt and about counter units dropped because the buffer was full. */
  onError?: (error: unknown) => void;
}

interface Pending {
  event: Required<Omit<UsageEvent, 'subject'>> & { subject: string | null };
  resolve?: () => void;
  reject?: (error: unknown) => void;
}

const INSERT = `insert into tenantry.usage_events (tenant_id, idempotency_key, meter, quantity, subject, occurred_at)
  select * from unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::timestamptz[])
  on conflict (tenant_id, idempotency_key) do nothing`;

/**
 * Buffers usage events and writes them in batches, exactly once: each event carries an
 * idempotency key (unique per tenant) and a batch is one `INSERT … ON CONFLICT DO NOTHING`, so a
 * batch retried after a lost reply (a crash between COMMIT and its answer) counts nothing twice.
 *
 * `record()` resolves once the event is durable (its batch committed): that is the
 * acknowledgement. `add()` aggregates high-frequency amounts (the pool's database time) per
 * tenant, meter and window in memory; they become events with a key generated once
 * (`<meter>:<instance>:<seq>`), so their retries are exactly-once too. Both buffers are bounded;
 * what a crash loses is only what was never acknowledged.
 *
 * @example
 * const usage = new UsageRecorder({ pool: ownerPool });
 * await usage.record({ tenantId, meter: 'requests', quantity: 1, key: requestId });
 */
export class UsageRecorder {
  readonly #pool: Queryable;
  readonly #maxBuffered: number;
  readonly #maxBatch: number;
  readonly #maxAttempts: number;
  readonly #windowMs: number;
  readonly #instanceId: string;
  readonly #onError: ((error: unknown) => void) | undefined;
  readonly #queue: Pending[] = [];
  readonly #counters = new Map<string, Pending['event']>();
  readonly #timer: NodeJS.Timeout;
  #seq = 0;
  #inflight = 0;
  #flushing: Promise<unknown> | undefined;
  #closed = false;
  #dropped = 0;

  constructor(options: UsageRecorderOptions) {
    const positive = (name: string, value: number | undefined, fallback: number): number => {
      const v = value ?? fallback;
      if (!Number.isSafeInteger(v) || v < 1)
        throw new ConfigurationError(`UsageRecorder ${name} must be a positive integer`);
      return v;
    };
    if (!options?.pool || typeof options.pool.query !== 'function')
      throw new ConfigurationError('UsageRecorder needs a pool (the owner role) to write tenantry.usage_events');
    this.#pool = options.pool;
    this.#maxBuffered = positive('maxBuffered', options.maxBuffered, 10_000);
    this.#maxBatch = positive('maxBatch', options.maxBatch, 500);
    this.#maxAttempts = positive('maxAttempts', options.maxAttempts, 5);
    this.#windowMs = positive('counterWindowMs', options.counterWindowMs, 60_000);
    const interval = positive('flushIntervalMs', options.flushIntervalMs, 250);
    this.#instanceId = options.instanceId ?? randomUUID();
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(this.#instanceId))
      throw new ConfigurationError('UsageRecorder instanceId must be 1-64 letters, digits, _ . or -');
    this.#onError = options.onError;
    this.#timer = setInterval(() => void this.flush().catch(() => undefined), interval);
    this.#timer.unref();
  }

  /** Events and counters waiting to be written (for health checks). */
  get buffered(): number {
    return this.#queue.length + this.#inflight + this.#counters.size;
  }

  /** Counter units `add` could not keep because the buffer was full (never acknowledged). */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Records one event; resolves when it is durable. Rejects with INVALID_ARGUMENT (bad event),
   * USAGE_BUFFER_FULL (not recorded: retry later with the same key), USAGE_FLUSH_FAILED (not
   * acknowledged: retry with the same key) or USAGE_RECORDER_CLOSED.
   *
   * `now`: written at once instead of at the next interval (group commit: the events recorded
   * while a write is under way go together in the next one), for a caller that awaits durability
   * before it acknowledges its own work, e.g. before an HTTP response is sent.
   */
  record(event: UsageEvent, options?: { now?: boolean }): Promise<void> {
    if (this.#closed) return Promise.reject(new UsageRecorderClosedError());
    try {
      validateUsageEvent(event);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.buffered >= this.#maxBuffered) return Promise.reject(new UsageBufferFullError(this.#maxBuffered));
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ event: normalise(event), resolve, reject });
      if (options?.now || this.#queue.length >= this.#maxBatch) void this.flush().catch(() => undefined);
    });
  }

  /**
   * Adds an amount to the tenant's counter of this meter in the current window (no promise: for
   * hot paths such as every statement's database time). Written at the next flush.
   */
  add(tenantId: string, meter: string, quantity: number, subject?: string): void {
    if (this.#closed || quantity <= 0) return;
    const at = Math.floor(Date.now() / this.#windowMs) * this.#windowMs;
    const id = `${tenantId}\u0000${meter}\u0000${subject ?? ''}\u0000${at}`;
    const counter = this.#counters.get(id);
    if (counter) {
      counter.quantity += quantity;
      return;
    }
    try {
      validateUsageEvent({ tenantId, meter, quantity: Math.round(quantity), key: 'k', subject });
    } catch (error) {
      this.#report(error);
      return;
    }
    if (this.buffered >= this.#maxBuffered) {
      this.#dropped += quantity;
      this.#report(new UsageBufferFullError(this.#maxBuffered));
      return;
    }
    this.#counters.set(id, { tenantId, meter, quantity, key: '', occurredAt: new Date(at), subject: subject ?? null });
  }

  /** Writes everything buffered so far (counters included); resolves when it is durable. */
  flush(): Promise<void> {
    // counters become events now, each with its key fixed for all its retries
    for (const counter of this.#counters.values()) {
      const quantity = Math.round(counter.quantity);
      if (quantity > 0)
        this.#queue.push({
          event: { ...counter, quantity, key: `${counter.meter}:${this.#instanceId}:${++this.#seq}` },
        });
    }
    this.#counters.clear();
    // one drain at a time, in order: this one starts after every earlier one and writes all that
    // is queued by then (so everything buffered before this call)
    const next = (this.#flushing ?? Promise.resolve()).then(() => this.#drain());
    this.#flushing = next.catch(() => undefined);
    return next;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) await this.#write(this.#queue.splice(0, this.#maxBatch));
  }

  /** Flushes what is buffered and stops; later calls of `record` are refused. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#timer);
    await this.flush().catch(() => undefined);
    this.#closed = true;
  }

  /**
   * Stops at once, without flushing: what is buffered is lost (as it would be in a crash) and
   * never acknowledged. For tests and for a process that must exit now.
   */
  abandon(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    const lost = this.#queue.splice(0);
    this.#counters.clear();
    for (const p of lost) p.reject?.(new UsageRecorderClosedError());
  }

  async #write(batch: Pending[]): Promise<void> {
    this.#inflight += batch.length;
    const values = [
      batch.map((p) => p.event.tenantId),
      batch.map((p) => p.event.key),
      batch.map((p) => p.event.meter),
      batch.map((p) => p.event.quantity),
      batch.map((p) => p.event.subject),
      batch.map((p) => p.event.occurredAt),
    ];
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#pool.query(INSERT, values);
          break;
        } catch (error) {
          this.#report(error);
          if (attempt >= this.#maxAttempts || this.#closed) {
            const failed = new UsageFlushFailedError(attempt, error);
            for (const p of batch) p.reject?.(failed);
            // counter events have nobody to retry them: they stay queued, under the same keys
            if (!this.#closed) this.#queue.unshift(...batch.filter((p) => !p.reject));
            throw failed;
          }
          // bounded backoff: 50 ms, 100 ms, … at most 2 s
          await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** (attempt - 1))));
        }
      }
      for (const p of batch) p.resolve?.();
    } finally {
      this.#inflight -= batch.length;
    }
  }

  #report(error: unknown): void {
    try {
      this.#onError?.(error);
    } catch {
      // a throwing handler must not break the recorder
    }
  }
}

function normalise(event: UsageEvent): Pending['event'] {
  return {
    tenantId: event.tenantId,
    meter: event.meter,
    quantity: event.quantity,
    key: event.key,
    occurredAt: event.occurredAt ?? new Date(),
    subject: event.subject ?? null,
  };
}
