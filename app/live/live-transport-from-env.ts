import { PostgresLiveTransport, type LiveTransport } from 'tenantry/live';

/** What {@link liveTransportFromEnv} made, and how to release it. */
export interface ConfiguredTransport {
  transport: LiveTransport;
  kind: 'postgres' | 'redis';
  /** Quits the Redis connections (the bus closes the transport itself). */
  close(): Promise<void>;
}

/**
 * The reference server's doorbell transport: PostgreSQL LISTEN/NOTIFY as the app role by
 * default (nothing else to run), Redis pub/sub when `REDIS_URL` is set. ioredis is loaded only
 * then, so the server runs without it. `databaseRings: false` when tenants live in other
 * databases: the server then rings after each commit (TenantEventBus.announce) on the listener's
 * connection, as it does over Redis.
 */
export async function liveTransportFromEnv(
  appUrl: string,
  env: NodeJS.ProcessEnv = process.env,
  options: { databaseRings?: boolean } = {},
): Promise<ConfiguredTransport> {
  const redisUrl = env.REDIS_URL?.trim();
  if (!redisUrl) {
    // databaseRings false: tenants in their own databases NOTIFY where this listener is not; the server rings after commit
    const transport = new PostgresLiveTransport({
      connectionString: appUrl,
      databaseRings: options.databaseRings ?? true,
    });
    return { transport, kind: 'postgres', close: async () => undefined };
  }
  const { Redis } = await import('ioredis');
  const subscriber = new Redis(redisUrl);
  const publisher = new Redis(redisUrl);
  const { RedisLiveTransport } = await import('tenantry/live');
  return {
    transport: new RedisLiveTransport({ subscriber, publisher }),
    kind: 'redis',
    async close() {
      await Promise.all([subscriber, publisher].map((r) => r.quit().catch(() => r.disconnect())));
    },
  };
}
