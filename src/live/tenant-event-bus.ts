import { currentTenant } from '../context/tenant-context.js';
import { toTenantId } from '../context/tenant-id.js';
import { isDatabaseUnavailable } from '../errors/database-unavailable-error.js';
import { InvalidArgumentError, TenantryError } from '../errors/tenantry-error.js';
import { LiveSubscriber, type SubscriptionEndReason, type TenantEventHandler } from './live-subscriber.js';
import type { LiveTransport } from './live-transport.js';
import { isRoute } from './tenant-event.js';
import { TenantEventLog, type TenantQueryable } from './tenant-event-log.js';

/** Options of {@link TenantEventBus}. */
export interface TenantEventBusOptions {
  /**
   * A TenantPool (one database) or a RoutedTenantPool (tenants in every tier, on any cluster), as
   * the app role: every event is read inside `runAs(subscriber's tenant)`.
   */
  pool: TenantQueryable;
  /**
   * How doorbells travel between instances (PostgresLiveTransport, RedisLiveTransport). When
   * tenants' events are written in other databases or clusters than the one a PostgreSQL
   * transport listens on, give it `databaseRings: false` (or use Redis): the bus then rings
   * after each commit itself.
   */
  transport: LiveTransport;
  /**
   * Schema of the event tables and of `emit_tenant_event` (`liveSchemaSql`); default `public`.
   * `null`: unqualified names resolved by each statement's search path, so that, through a
   * RoutedTenantPool, a schema-tier tenant reads and appends in its own schema (see
   * `liveSchemaSql({ followSearchPath: true })` and `liveTablesSql`).
   */
  schema?: string | null;
  /** With `schema: null`: the schema of `emit_tenant_event` (default `public`; see `TenantEventLogOptions`). */
  functionSchema?: string;
  /** Events a subscriber may fall behind before it is ended with `overflow`; default 256. */
  queueLimit?: number;
  /** Events read per statement; default 100. */
  batchSize?: number;
  /** Wait before re-reading after a failed read; default 1000 ms. */
  retryDelayMs?: number;
  /** Failures the bus recovers from (a failed read, a lost listener connection). Default: ignored. */
  onError?: (error: unknown) => void;
}

/** Options of {@link TenantEventBus.subscribe}. */
export interface SubscribeOptions {
  /** Resume: deliver the events after this seq first (an SSE Last-Event-ID), then live ones. */
  after?: number;
  /** Overrides the bus's queueLimit for this subscriber. */
  queueLimit?: number;
  /** Told once when the subscription ends, and why. */
  onEnd?: (reason: SubscriptionEndReason, error?: unknown) => void;
}

/** Ends a subscription; safe to call twice. */
export type Unsubscribe = () => void;

interface TenantStream {
  readonly tenantId: string;
  readonly route: string;
  /** Seq of the last event read and handed to the subscribers. */
  cursor: number;
  readonly subscribers: Set<LiveSubscriber>;
  pumping: boolean;
  again: boolean;
  retry?: NodeJS.Timeout;
}

const MAX_CACHED_ROUTES = 10_000;
/** Failed catch-up reads (database unavailable) before a resuming subscriber is ended `unavailable`: about a minute at the default delay. */
const MAX_CATCH_UP_RETRIES = 60;

/**
 * A tenant's events, live, on every server instance. A write appends an event row (RLS-checked,
 * in the writer's transaction) and rings the stream's random route; every instance with local
 * subscribers of that route re-reads the new events INSIDE `runAs(subscriber's tenant)` through
 * the pool, once per tenant, and hands them to its subscribers. A doorbell carries no
 * tenant id and no data; a wrong or forged one reads nothing.
 *
 * @example
 * const bus = new TenantEventBus({ pool, transport: new PostgresLiveTransport({ connectionString: appUrl }) });
 * await bus.start();
 * const unsubscribe = await bus.subscribe(tenantId, (event) => console.log(event.seq, event.topic));
 * await runAs(tenantId, () => bus.publish('invoice.paid', { id }));
 *
 * // tenants in every tier (shared, schema, database) and on several clusters
 * const tiered = new TenantEventBus({ pool: routedPool, schema: null, transport: new PostgresLiveTransport({ connectionString: homeAppUrl, databaseRings: false }) });
 */
export class TenantEventBus {
  readonly log: TenantEventLog;
  readonly #transport: LiveTransport;
  readonly #queueLimit: number;
  readonly #batchSize: number;
  readonly #retryDelayMs: number;
  readonly #onError: (error: unknown) => void;
  readonly #streams = new Map<string, TenantStream>();
  readonly #byRoute = new Map<string, TenantStream>();
  readonly #opening = new Map<string, Promise<TenantStream>>();
  readonly #routes = new Map<string, string>();
  #started: Promise<void> | undefined;
  #closed = false;

  constructor(options: TenantEventBusOptions) {
    this.log = new TenantEventLog(options.pool, {
      schema: options.schema,
      ...(options.functionSchema === undefined ? {} : { functionSchema: options.functionSchema }),
    });
    this.#transport = options.transport;
    this.#queueLimit = positive(options.queueLimit ?? 256, 'queueLimit');
    this.#batchSize = positive(options.batchSize ?? 100, 'batchSize');
    this.#retryDelayMs = options.retryDelayMs ?? 1000;
    this.#onError = options.onError ?? (() => undefined);
  }

  /** Starts the transport (subscribe does it too); rejects when it cannot connect. */
  start(): Promise<void> {
    if (this.#closed) return Promise.reject(closedError());
    this.#started ??= this.#transport.start({
      signal: (route) => {
        const stream = isRoute(route) ? this.#byRoute.get(route) : undefined;
        if (stream) void this.#pump(stream);
      },
      resync: () => {
        for (const stream of this.#streams.values()) void this.#pump(stream);
      },
      error: (error) => this.#onError(error),
    });
    return this.#started;
  }

  /**
   * Delivers `tenantId`'s events to `handler`, in order, one at a time: every event committed
   * after this resolves, and with `after` every event after that seq first.
   */
  async subscribe(tenantId: string, handler: TenantEventHandler, options: SubscribeOptions = {}): Promise<Unsubscribe> {
    const tenant = toTenantId(tenantId);
    const { after } = options;
    if (after !== undefined && (!Number.isSafeInteger(after) || after < 0))
      throw new InvalidArgumentError('after must be a non-negative integer', 'after');
    const limit = positive(options.queueLimit ?? this.#queueLimit, 'queueLimit');
    await this.start();
    let stream: TenantStream;
    // a stream released while this call waited for it is not the tenant's stream any more
    do stream = await this.#stream(tenant);
    while (this.#streams.get(tenant) !== stream);
    let start = after ?? stream.cursor;
    // a client may be ahead of this instance (it read on another one), never ahead of the log
    if (start > stream.cursor) start = Math.min(start, (await this.log.head(tenant)).lastSeq);
    if (this.#closed) throw closedError();
    const subscriber: LiveSubscriber = new LiveSubscriber(start, limit, handler, (reason, error) => {
      stream.subscribers.delete(subscriber);
      this.#release(stream);
      options.onEnd?.(reason, error);
    });
    stream.subscribers.add(subscriber);
    if (start < stream.cursor) {
      subscriber.catchingUp = true;
      void this.#catchUp(stream, subscriber, limit);
    }
    return () => subscriber.end('unsubscribed');
  }

  /**
   * Appends an event for the current tenant (inside `runAs`) and rings. With `db` (a client in
   * your transaction) the event commits with your change; then call {@link announce} after
   * COMMIT if the transport needs it (`databaseRings` false: Redis, or PostgreSQL for tenants in
   * other databases or clusters). Returns the event's seq.
   */
  async publish(topic: string, payload: Record<string, unknown> = {}, db?: TenantQueryable): Promise<number> {
    const seq = await this.log.append(topic, payload, db);
    if (db === undefined) await this.announce();
    return seq;
  }

  /**
   * Rings the current tenant's stream after a commit that appended events (inside `runAs`). A
   * no-op when the database rings itself (a PostgreSQL transport with `databaseRings`, the
   * default); rings through the transport otherwise (Redis, or PostgreSQL with
   * `databaseRings: false`). Never throws: a failure goes to `onError`, and subscribers get the
   * events at the next doorbell or resync.
   */
  async announce(): Promise<void> {
    if (this.#transport.databaseRings || this.#closed) return;
    try {
      const tenant = currentTenant();
      let route = this.#streams.get(tenant)?.route ?? this.#routes.get(tenant);
      if (route === undefined) {
        route = (await this.log.head(tenant)).route;
        if (this.#routes.size >= MAX_CACHED_ROUTES) this.#routes.clear();
        this.#routes.set(tenant, route);
      }
      await this.start();
      await this.#transport.publish(route);
    } catch (error) {
      this.#onError(error);
    }
  }

  /** Number of tenants with local subscribers, and of subscribers (for metrics and tests). */
  stats(): { tenants: number; subscribers: number } {
    let subscribers = 0;
    for (const stream of this.#streams.values()) subscribers += stream.subscribers.size;
    return { tenants: this.#streams.size, subscribers };
  }

  /** Ends every subscription (`bus-closed`) and closes the transport. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const stream of [...this.#streams.values()])
      for (const subscriber of [...stream.subscribers]) subscriber.end('bus-closed');
    for (const stream of this.#streams.values()) clearTimeout(stream.retry);
    this.#streams.clear();
    this.#byRoute.clear();
    const started = this.#started;
    if (started)
      await started.then(
        () => this.#transport.close(),
        () => undefined,
      );
  }

  #stream(tenant: string): Promise<TenantStream> {
    const existing = this.#streams.get(tenant);
    if (existing) return Promise.resolve(existing);
    let opening = this.#opening.get(tenant);
    if (!opening) {
      opening = (async () => {
        const head = await this.log.head(tenant);
        const stream: TenantStream = {
          tenantId: tenant,
          route: head.route,
          cursor: head.lastSeq,
          subscribers: new Set(),
          pumping: false,
          again: false,
        };
        this.#streams.set(tenant, stream);
        this.#byRoute.set(stream.route, stream);
        // a doorbell rung between reading the head and mapping the route was not heard: read once
        void this.#pump(stream);
        return stream;
      })().finally(() => this.#opening.delete(tenant));
      this.#opening.set(tenant, opening);
    }
    return opening;
  }

  #release(stream: TenantStream): void {
    if (stream.subscribers.size > 0 || this.#streams.get(stream.tenantId) !== stream) return;
    this.#streams.delete(stream.tenantId);
    this.#byRoute.delete(stream.route);
    clearTimeout(stream.retry);
  }

  // Reads what the tenant committed since the stream's cursor and hands it to every subscriber.
  // One reader per stream at a time; doorbells that ring meanwhile make it read again.
  async #pump(stream: TenantStream): Promise<void> {
    if (stream.pumping) {
      stream.again = true;
      return;
    }
    stream.pumping = true;
    clearTimeout(stream.retry);
    stream.retry = undefined;
    try {
      do {
        stream.again = false;
        let events;
        do {
          if (this.#closed || this.#streams.get(stream.tenantId) !== stream) return;
          events = await this.log.readAfter(stream.tenantId, stream.cursor, this.#batchSize);
          for (const event of events) {
            if (event.seq <= stream.cursor) continue;
            stream.cursor = event.seq;
            for (const subscriber of stream.subscribers) subscriber.offerLive(event);
          }
        } while (events.length === this.#batchSize);
      } while (stream.again);
    } catch (error) {
      this.#onError(error);
      if (!this.#closed && this.#streams.get(stream.tenantId) === stream) {
        stream.retry = setTimeout(() => void this.#pump(stream), this.#retryDelayMs);
      }
    } finally {
      stream.pumping = false;
    }
  }

  // Replays (after, stream cursor] to one resuming subscriber, a batch at a time, while live
  // events wait in its pending list; batches never exceed its queue.
  async #catchUp(stream: TenantStream, subscriber: LiveSubscriber, limit: number): Promise<void> {
    const batch = Math.min(this.#batchSize, limit);
    for (let failures = 0; ;) {
      try {
        for (;;) {
          const events = await this.log.readAfter(stream.tenantId, subscriber.cursor, batch);
          for (const event of events) subscriber.offer(event);
          if (subscriber.ended || events.length < batch) break;
          await subscriber.idle();
        }
        subscriber.finishCatchUp();
        return;
      } catch (error) {
        this.#onError(error);
        // a database that is down or restarting: read again later, from where it got (live events
        // wait in the subscriber's bounded pending list meanwhile); anything else ends it
        if (!isDatabaseUnavailable(error) || this.#closed || subscriber.ended || ++failures > MAX_CATCH_UP_RETRIES)
          return subscriber.end('unavailable', error);
        await new Promise((resolve) => setTimeout(resolve, this.#retryDelayMs));
        if (subscriber.ended) return;
      }
    }
  }
}

function positive(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1)
    throw new InvalidArgumentError(`${name} must be a positive integer`, name);
  return value;
}

function closedError(): TenantryError {
  return new TenantryError('UNSUPPORTED', 'The event bus is closed', { status: 503 });
}
