import type { Queryable } from '../catalog/tenant-catalog.js';
import { InvalidArgumentError } from '../errors/tenantry-error.js';
import { METERS } from './usage-event.js';

/** How a report groups usage in time: per UTC hour, per UTC day, or one total for the range. */
export type UsageGranularity = 'hour' | 'day' | 'total';

/** What {@link usageReport} reads. */
export interface UsageReportQuery {
  tenantId: string;
  /** Inclusive start. */
  from: Date;
  /** Exclusive end. */
  to: Date;
  /** Default `total`. */
  granularity?: UsageGranularity;
  /** One row per subject (table, queue…) instead of per meter. Default false. */
  bySubject?: boolean;
}

/** One line of a usage report. */
export interface UsageRow {
  /** Start of the window (the range's start for `total`). */
  windowStart: Date;
  meter: string;
  /** The table, queue or route; null when not reported by subject. */
  subject: string | null;
  /**
   * Sum of the window's units; for `storage_bytes` (a gauge) the largest sample of each table in
   * the window, summed over tables.
   */
  quantity: number;
}

/** Hourly reports cover at most 92 days (2,208 windows per meter): a bounded answer. */
const MAX_HOURLY_RANGE_MS = 92 * 24 * 3600 * 1000;

/** Throws INVALID_ARGUMENT unless `from < to`, both valid (and, when given, at most `maxMs` apart). */
export function checkUsageRange(from: Date, to: Date, maxMs = Infinity): void {
  if (!(from instanceof Date) || Number.isNaN(from.getTime()))
    throw new InvalidArgumentError('from is not a valid time', 'from');
  if (!(to instanceof Date) || Number.isNaN(to.getTime()))
    throw new InvalidArgumentError('to is not a valid time', 'to');
  if (from.getTime() >= to.getTime()) throw new InvalidArgumentError('from must be before to', 'from');
  if (to.getTime() - from.getTime() > maxMs)
    throw new InvalidArgumentError(`the range covers at most ${Math.round(maxMs / 86_400_000)} days`, 'to');
}

// $4 null: one window, the range's start. Storage is a gauge: its largest sample per table and window.
const REPORT_SQL = `
  with ev as (
    select coalesce(date_trunc($4, e.occurred_at, 'UTC'), $2::timestamptz) as w, e.meter, e.subject, e.quantity
      from tenantry.usage_events e
     where e.tenant_id = $1 and e.occurred_at >= $2 and e.occurred_at < $3
  ), rw as (
    select coalesce(date_trunc($4, d.at, 'UTC'), $2::timestamptz) as w, d.table_name as subject, d.rows
      from tenantry.usage_row_deltas d
     where d.tenant_id = $1 and d.at >= $2 and d.at < $3
  )
  select w, meter, subject, sum(quantity)::text as quantity from ev where meter <> '${METERS.storageBytes}' group by 1, 2, 3
  union all
  select w, meter, subject, max(quantity)::text from ev where meter = '${METERS.storageBytes}' group by 1, 2, 3
  union all
  select w, '${METERS.rowsWritten}', subject, sum(rows)::text from rw group by 1, 2, 3
  order by 1, 2, 3`;

/**
 * A tenant's usage in `[from, to)`, per meter (and subject) and window. Runs as whoever `db` is:
 * the owner role (staff, the CLI) reads any tenant; the app role inside `runAs(tenant)` reads
 * only its own tenant's rows (RLS), so asking for another tenant returns nothing.
 *
 * @example
 * const rows = await usageReport(ownerPool, { tenantId, from, to, granularity: 'day' });
 */
export async function usageReport(db: Queryable, query: UsageReportQuery): Promise<UsageRow[]> {
  const granularity = query.granularity ?? 'total';
  checkUsageRange(query.from, query.to, granularity === 'hour' ? MAX_HOURLY_RANGE_MS : Infinity);
  if (!['hour', 'day', 'total'].includes(granularity))
    throw new InvalidArgumentError('granularity is hour, day or total', 'granularity');
  const { rows } = await db.query<{ w: Date; meter: string; subject: string | null; quantity: string }>(REPORT_SQL, [
    query.tenantId,
    query.from,
    query.to,
    granularity === 'total' ? null : granularity,
  ]);
  const out = new Map<string, UsageRow>();
  for (const r of rows) {
    const subject = query.bySubject ? r.subject : null;
    const id = `${r.w.toISOString()}\u0000${r.meter}\u0000${subject ?? ''}`;
    const row = out.get(id);
    if (row) row.quantity += Number(r.quantity);
    else out.set(id, { windowStart: r.w, meter: r.meter, subject, quantity: Number(r.quantity) });
  }
  return [...out.values()];
}
