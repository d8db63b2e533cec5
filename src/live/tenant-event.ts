/**
 * One event of a tenant, as read back from the event log under that tenant's context.
 * `seq` counts the tenant's own events from 1 in commit order: it is the SSE id, and it says
 * nothing about other tenants' activity.
 */
export interface TenantEvent {
  /** Position in the tenant's own stream (1, 2, 3…); resume after it with `after`. */
  readonly seq: number;
  /** What happened, e.g. `recording.created` (`^[a-z][a-z0-9_.-]{0,62}$`). */
  readonly topic: string;
  /** What the writer chose to publish: ids and non-sensitive fields only. */
  readonly payload: Readonly<Record<string, unknown>>;
  readonly createdAt: Date;
}

/** The default name of the one channel (PostgreSQL LISTEN, Redis pub/sub) of a deployment. */
export const DEFAULT_LIVE_CHANNEL = 'tenantry_live';

// The doorbell a transport carries: a tenant stream's random route, 32 lower-case hex digits
const ROUTE = /^[0-9a-f]{32}$/;

/** True when `value` has the shape of a route; anything else on the channel is ignored. */
export function isRoute(value: unknown): value is string {
  return typeof value === 'string' && ROUTE.test(value);
}
