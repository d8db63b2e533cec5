import pg from 'pg';
import { quoteIdent } from '../policy/identifiers.js';
import type { LiveTransport, LiveTransportHandlers } from './live-transport.js';
import { DEFAULT_LIVE_CHANNEL } from './tenant-event.js';

/** Options of {@link PostgresLiveTransport}. */
export interface PostgresLiveTransportOptions {
  /** The APP role's URL (a direct connection: LISTEN does not survive pgbouncer's transaction mode). */
  connectionString?: string;
  /** Any other pg.Client options (host, password, ssl…). */
  clientConfig?: pg.ClientConfig;
  /** The deployment's one channel; must match `liveSchemaSql`. Default `tenantry_live`. */
  channel?: string;
  /**
   * Whether the database this transport listens on rings by itself (the NOTIFY of
   * `emit_tenant_event`, sent at the writer's commit). Default `true`: every tenant's events
   * are written in that one database.
   *
   * `false` when tenants' events are written elsewhere (tenant databases, other clusters: their
   * NOTIFY reaches only their own database's listeners, not this one): the bus rings after
   * each commit instead, `pg_notify(channel, route)` on this transport's listening connection,
   * which every instance listening on the same database hears. As with Redis, `bus.publish()`
   * does it; after your own transaction call `bus.announce()`.
   */
  databaseRings?: boolean;
  /** Reconnect delays: doubling from `minDelayMs` (default 100) up to `maxDelayMs` (default 5000). */
  minDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * Doorbells over PostgreSQL LISTEN/NOTIFY: one dedicated connection per instance LISTENs on one
 * channel for the whole deployment; the database NOTIFYs from `emit_tenant_event` at commit.
 * A lost connection is re-opened with backoff and LISTENs again, then the bus re-reads every
 * local stream, which closes the gap.
 *
 * With tenants in other databases or clusters (`RoutedTenantPool`), set `databaseRings: false`:
 * the instances still meet on this one channel of this one database, and the writer's instance
 * rings there after its commit.
 *
 * @example
 * const transport = new PostgresLiveTransport({ connectionString: homeAppUrl, databaseRings: false });
 */
export class PostgresLiveTransport implements LiveTransport {
  readonly databaseRings: boolean;
  readonly #config: pg.ClientConfig;
  readonly #channel: string;
  readonly #minDelayMs: number;
  readonly #maxDelayMs: number;
  #handlers: LiveTransportHandlers | undefined;
  #client: pg.Client | undefined;
  #timer: NodeJS.Timeout | undefined;
  #attempt = 0;
  #closed = false;
  /** The last pg_notify queued on the listening connection, and the routes waiting for their turn. */
  #sending: Promise<unknown> = Promise.resolve();
  readonly #waiting = new Map<string, Promise<void>>();

  constructor(options: PostgresLiveTransportOptions) {
    this.#channel = options.channel ?? DEFAULT_LIVE_CHANNEL;
    quoteIdent(this.#channel, 'channel');
    this.databaseRings = options.databaseRings ?? true;
    // keepAlive: a connection cut without a FIN (a dead NAT entry) is noticed, and re-opened
    this.#config = {
      application_name: 'tenantry-live',
      keepAlive: true,
      ...options.clientConfig,
      ...(options.connectionString ? { connectionString: options.connectionString } : {}),
    };
    this.#minDelayMs = options.minDelayMs ?? 100;
    this.#maxDelayMs = options.maxDelayMs ?? 5000;
  }

  /** The listening connection's backend pid (for monitoring), when connected. */
  get backendPid(): number | undefined {
    return (this.#client as { processID?: number } | undefined)?.processID;
  }

  async start(handlers: LiveTransportHandlers): Promise<void> {
    this.#handlers = handlers;
    await this.#connect();
  }

  /**
   * Rings for `route` on the listening connection (`pg_notify`, delivered at once: no transaction
   * is open there). One statement at a time on that connection; a route already waiting for
   * its turn is rung once for every caller waiting on it (each of them committed before it goes).
   */
  publish(route: string): Promise<void> {
    if (!this.#client) return Promise.reject(new Error('The live listener is not connected'));
    const waiting = this.#waiting.get(route);
    if (waiting) return waiting;
    const sent = this.#sending.then(async () => {
      this.#waiting.delete(route); // a caller from now on may have committed after this goes: it rings again
      const client = this.#client;
      if (!client) throw new Error('The live listener is not connected');
      await client.query('select pg_notify($1, $2)', [this.#channel, route]);
    });
    this.#waiting.set(route, sent);
    this.#sending = sent.catch(() => undefined);
    return sent;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    const client = new pg.Client(this.#config);
    // an idle connection that dies emits 'error' (then 'end'): never let it crash the process
    client.on('error', (error) => this.#dropped(client, error));
    client.on('end', () => this.#dropped(client));
    client.on('notification', (message) => {
      if (client === this.#client && message.channel === this.#channel && message.payload !== undefined)
        this.#handlers?.signal(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdent(this.#channel)}`);
    } catch (error) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
  }

  #dropped(client: pg.Client, error?: unknown): void {
    if (client !== this.#client || this.#closed) return;
    this.#client = undefined;
    if (error !== undefined) this.#handlers?.error(error);
    client.end().catch(() => undefined);
    this.#schedule();
  }

  #schedule(): void {
    const delay = Math.min(this.#maxDelayMs, this.#minDelayMs * 2 ** this.#attempt);
    this.#attempt += 1;
    // jitter, so that instances cut off together do not reconnect in lock-step
    this.#timer = setTimeout(() => void this.#reconnect(), delay / 2 + Math.random() * (delay / 2));
  }

  async #reconnect(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#connect();
    } catch (error) {
      this.#handlers?.error(error);
      if (!this.#closed) this.#schedule();
      return;
    }
    if (this.#closed) return;
    this.#attempt = 0;
    this.#handlers?.resync();
  }
}
