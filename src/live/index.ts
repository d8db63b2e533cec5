/**
 * `tenantry/live`: a tenant's events, live, across server instances, without a tenant id or any
 * event data on the wire between them. See docs/live-channels.md.
 */
export {
  TenantEventBus,
  type TenantEventBusOptions,
  type SubscribeOptions,
  type Unsubscribe,
} from './tenant-event-bus.js';
export {
  TenantEventLog,
  type StreamHead,
  type TenantQueryable,
  type TenantEventLogOptions,
} from './tenant-event-log.js';
export type { TenantEventHandler, SubscriptionEndReason } from './live-subscriber.js';
export type { LiveTransport, LiveTransportHandlers } from './live-transport.js';
export { PostgresLiveTransport, type PostgresLiveTransportOptions } from './postgres-live-transport.js';
export {
  RedisLiveTransport,
  type RedisLiveTransportOptions,
  type RedisSubscriberLike,
  type RedisPublisherLike,
} from './redis-live-transport.js';
export {
  liveSchemaSql,
  liveTablesSql,
  liveEmitFunctionSql,
  type LiveSchemaOptions,
  type LiveTablesOptions,
  type LiveEmitFunctionOptions,
} from './live-schema-sql.js';
export { DEFAULT_LIVE_CHANNEL, isRoute, type TenantEvent } from './tenant-event.js';
