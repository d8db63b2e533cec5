import { createHash } from 'node:crypto';
import { isRoute } from '../live/tenant-event.js';
import type { LiveTransport } from '../live/live-transport.js';
import { PostgresLiveTransport } from '../live/postgres-live-transport.js';

/** The default LISTEN/NOTIFY channel (and Redis channel) of settings and flag changes. */
export const DEFAULT_SETTINGS_CHANNEL = 'tenantry_settings';

/** The doorbell of a deployment-wide change (a flag's kill switch or rollout). */
export const GLOBAL_SETTINGS_ROUTE = '0'.repeat(32);

/**
 * The doorbell of a tenant's settings or flags: a digest of its id, not the id. Whoever hears it
 * drops what it cached for the tenants whose digest it is, and reads them again under their own
 * context: a forged or repeated doorbell costs a re-read, never a wrong value.
 */
export function settingsRouteOf(tenantId: string): string {
  return createHash('sha256').update(`tenantry.settings:${tenantId}`).digest('hex').slice(0, 32);
}

/** What a {@link SettingsFeed} tells its listeners. */
export interface SettingsFeedListener {
  /** A tenant's settings or flags changed (its route: {@link settingsRouteOf}). */
  tenant?(route: string): void;
  /** A deployment-wide flag state changed. */
  global?(): void;
  /** The feed reconnected after a gap: changes may have been missed, drop everything cached. */
  resync?(): void;
}

/** Options of {@link SettingsFeed}. */
export interface SettingsFeedOptions {
  /**
   * A direct URL of the database the changes are written in (the catalog): the feed LISTENs
   * there (LISTEN does not survive pgbouncer's transaction mode). Or give `transport`.
   */
  connectionString?: string;
  /** Any LiveTransport of `tenantry/live`, e.g. a `RedisLiveTransport` on its own channel. */
  transport?: LiveTransport;
  /** The channel of the default transport (default `tenantry_settings`). */
  channel?: string;
  /** Told about transport failures it recovers from (reconnects); never thrown. */
  onError?: (error: unknown) => void;
}

/**
 * How every instance hears of a settings or flag change within a second: writers NOTIFY in
 * their transaction (delivered at commit), each instance LISTENs on one connection and drops
 * the changed tenant's cached values. After a reconnect everything cached is dropped (a change
 * may have been missed meanwhile); cached values also expire by their TTL, which bounds the
 * damage of any doorbell lost some other way. With Redis as the transport (`databaseRings`
 * false) the writer rings after its commit instead.
 *
 * @example
 * const feed = new SettingsFeed({ connectionString: process.env.DATABASE_OWNER_URL });
 * await feed.start();
 * const settings = new TenantSettings({ definition, db: ownerPool, feed });
 */
export class SettingsFeed {
  readonly #transport: LiveTransport;
  readonly #listeners = new Set<SettingsFeedListener>();
  readonly #onError: (error: unknown) => void;
  #started: Promise<void> | undefined;

  constructor(options: SettingsFeedOptions) {
    if (!options.transport && !options.connectionString)
      throw new TypeError('SettingsFeed needs a connectionString or a transport');
    this.#transport =
      options.transport ??
      new PostgresLiveTransport({
        connectionString: options.connectionString!,
        channel: options.channel ?? DEFAULT_SETTINGS_CHANNEL,
      });
    this.#onError = options.onError ?? (() => undefined);
  }

  /** Whether the database rings by itself (NOTIFY at the writer's commit); false for Redis. */
  get databaseRings(): boolean {
    return this.#transport.databaseRings;
  }

  /** Starts listening (idempotent); rejects when the first connection fails. */
  start(): Promise<void> {
    this.#started ??= this.#transport.start({
      signal: (route) => {
        if (!isRoute(route)) return;
        for (const l of this.#listeners)
          if (route === GLOBAL_SETTINGS_ROUTE) l.global?.();
          else l.tenant?.(route);
      },
      resync: () => {
        for (const l of this.#listeners) l.resync?.();
      },
      error: (error) => this.#onError(error),
    });
    return this.#started;
  }

  /** Adds a listener; returns its removal. */
  listen(listener: SettingsFeedListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Rings for a route after a commit (only needed when the database does not ring). */
  async publish(route: string): Promise<void> {
    if (!this.databaseRings) await this.#transport.publish(route);
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    await this.#transport.close();
  }
}
