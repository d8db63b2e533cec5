import type { LiveTransport, LiveTransportHandlers } from './live-transport.js';

/** The part of an ioredis (5) connection in subscriber mode that the transport uses. */
export interface RedisSubscriberLike {
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  on(event: 'ready', listener: () => void): unknown;
  off(event: 'message', listener: (channel: string, message: string) => void): unknown;
  off(event: 'ready', listener: () => void): unknown;
}

/** The part of an ioredis (5) connection that publishes (a connection that has not subscribed). */
export interface RedisPublisherLike {
  publish(channel: string, message: string): Promise<number>;
}

/** Options of {@link RedisLiveTransport}. The caller owns (and quits) both connections. */
export interface RedisLiveTransportOptions {
  subscriber: RedisSubscriberLike;
  publisher: RedisPublisherLike;
  /** The deployment's one pub/sub channel; default `tenantry:live`. */
  channel?: string;
}

/**
 * Doorbells over Redis pub/sub, for deployments where a LISTEN connection is not an option
 * (pgbouncer in transaction mode) or not wanted. The writer rings after commit
 * (`TenantEventBus.announce`, done by `publish`). ioredis reconnects and re-subscribes by
 * itself; each 'ready' after the first makes the bus re-read every local stream.
 *
 * @example
 * const transport = new RedisLiveTransport({ subscriber: new Redis(url), publisher: new Redis(url) });
 */
export class RedisLiveTransport implements LiveTransport {
  readonly databaseRings = false;
  readonly #subscriber: RedisSubscriberLike;
  readonly #publisher: RedisPublisherLike;
  readonly #channel: string;
  #onMessage: ((channel: string, message: string) => void) | undefined;
  #onReady: (() => void) | undefined;

  constructor(options: RedisLiveTransportOptions) {
    this.#subscriber = options.subscriber;
    this.#publisher = options.publisher;
    this.#channel = options.channel ?? 'tenantry:live';
  }

  async start(handlers: LiveTransportHandlers): Promise<void> {
    this.#onMessage = (channel, message) => {
      if (channel === this.#channel) handlers.signal(message);
    };
    this.#onReady = () => handlers.resync();
    this.#subscriber.on('message', this.#onMessage);
    await this.#subscriber.subscribe(this.#channel);
    // registered after the first subscription: only later 'ready's are reconnects
    this.#subscriber.on('ready', this.#onReady);
  }

  async publish(route: string): Promise<void> {
    await this.#publisher.publish(this.#channel, route);
  }

  async close(): Promise<void> {
    if (this.#onMessage) this.#subscriber.off('message', this.#onMessage);
    if (this.#onReady) this.#subscriber.off('ready', this.#onReady);
    await this.#subscriber.unsubscribe(this.#channel).catch(() => undefined);
  }
}
