/** What a transport tells the bus. */
export interface LiveTransportHandlers {
  /** A doorbell: the tenant stream with this route has new events (or someone rang falsely). */
  signal(route: string): void;
  /** The transport (re)connected after a gap: doorbells may have been missed, re-read everything. */
  resync(): void;
  /** A failure the transport recovers from by itself (reported, never thrown). */
  error(error: unknown): void;
}

/**
 * Carries doorbells between server instances. A doorbell is only a stream's random route:
 * no tenant id, no event data. Whoever receives one re-reads the events under the tenant's own
 * context, so a transport can lose, repeat, reorder or forge doorbells without delivering an
 * event to the wrong tenant, or losing one (a resync re-reads since the last event seen).
 */
export interface LiveTransport {
  /**
   * True when the database itself rings (PostgreSQL NOTIFY sent by the event function, in the
   * writer's transaction): `TenantEventBus.announce()` then has nothing to do.
   */
  readonly databaseRings: boolean;
  /** Connects and starts listening; rejects when the first connection fails. */
  start(handlers: LiveTransportHandlers): Promise<void>;
  /** Rings for `route` (after the events were committed). */
  publish(route: string): Promise<void>;
  /** Stops listening and releases what the transport opened. */
  close(): Promise<void>;
}
