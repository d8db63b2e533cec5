import { InvalidArgumentError } from '../errors/tenantry-error.js';

/**
 * The meters Tenantry records itself. Applications may record their own meters too (any name
 * matching `^[a-z][a-z0-9_]{0,62}$`).
 *
 * - `requests`: one per handled request (key: the request id)
 * - `db_time_us`: database time measured by the pool, in microseconds
 * - `job_runs`: one per job run (key: job id and retry count)
 * - `storage_bytes`: a sample of a table's bytes for the tenant (a gauge: the latest sample counts)
 * - `rows_written`: rows inserted, updated or deleted (recorded by the trigger, not the recorder)
 */
export const METERS = Object.freeze({
  requests: 'requests',
  dbTimeMicros: 'db_time_us',
  jobRuns: 'job_runs',
  storageBytes: 'storage_bytes',
  rowsWritten: 'rows_written',
} as const);

/** One unit (or amount) of usage, recorded exactly once under its idempotency key. */
export interface UsageEvent {
  tenantId: string;
  /** See {@link METERS}; lower case, digits and underscores. */
  meter: string;
  /** A non-negative integer (a count, microseconds, bytes). */
  quantity: number;
  /** Unique per tenant: the same key recorded twice counts once (a request id, `job:<id>:<retry>`). */
  key: string;
  /** When the usage happened (default: when it was recorded): the window it is billed in. */
  occurredAt?: Date;
  /** What it was about (a table, a route, a queue): never personal data. */
  subject?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const METER = /^[a-z][a-z0-9_]{0,62}$/;

/** Throws INVALID_ARGUMENT for an event the usage ledger would refuse (checked before buffering). */
export function validateUsageEvent(event: UsageEvent): void {
  if (typeof event.tenantId !== 'string' || !UUID.test(event.tenantId))
    throw new InvalidArgumentError('tenantId must be a lower-case uuid', 'tenantId');
  if (typeof event.meter !== 'string' || !METER.test(event.meter))
    throw new InvalidArgumentError('meter must match ^[a-z][a-z0-9_]{0,62}$', 'meter');
  if (!Number.isSafeInteger(event.quantity) || event.quantity < 0)
    throw new InvalidArgumentError('quantity must be a non-negative integer', 'quantity');
  if (typeof event.key !== 'string' || event.key.length < 1 || event.key.length > 200)
    throw new InvalidArgumentError('key must be 1 to 200 characters', 'key');
  if (event.subject !== undefined && (typeof event.subject !== 'string' || event.subject.length > 200))
    throw new InvalidArgumentError('subject must be at most 200 characters', 'subject');
  if (
    event.occurredAt !== undefined &&
    !(event.occurredAt instanceof Date && !Number.isNaN(event.occurredAt.getTime()))
  )
    throw new InvalidArgumentError('occurredAt must be a valid Date', 'occurredAt');
}
