import type { Queryable } from '../catalog/tenant-catalog.js';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { METERS } from './usage-event.js';
import { checkUsageRange } from './usage-report.js';

/**
 * One usage record as a CloudEvent (v1.0, JSON format): what OpenMeter ingests as is, and what
 * a small mapping turns into a Lago event or a Stripe meter event (docs/metering.md).
 */
export interface UsageCloudEvent {
  specversion: '1.0';
  /** Stable across exports: `<tenant id>/<idempotency key>` (a billing system's dedup key). */
  id: string;
  source: string;
  /** `tenantry.usage.<meter>`. */
  type: string;
  /** The tenant's id. */
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  data: { meter: string; quantity: number; subject?: string; aggregation: 'sum' | 'latest' };
}

/** What {@link exportUsage} reads. */
export interface UsageExportQuery {
  from: Date;
  to: Date;
  /** One tenant only (default: every tenant). */
  tenantId?: string;
  /** The CloudEvents `source` (default `tenantry`): name the deployment and database, e.g. `tenantry://eu-1/app`. */
  source?: string;
  /** Rows read per round trip (default 5000). */
  pageSize?: number;
  /**
   * Names the database read when it is not the catalog's (`<cluster>/<database>`, see
   * `exportUsageEverywhere`): its rows-written ids become `<tenant>/rows_written@<ledger>:<ledger id>`,
   * since each database numbers its own ledger. Default none (the catalog's database: ids unchanged).
   */
  ledger?: string;
}

const EVENTS_SQL = `
  select e.tenant_id, e.idempotency_key as key, e.meter, e.quantity::text as quantity, e.subject, e.occurred_at as time,
         e.occurred_at::text as cursor_time
    from tenantry.usage_events e
   where e.occurred_at >= $1 and e.occurred_at < $2 and ($3::uuid is null or e.tenant_id = $3)
     and (e.occurred_at, e.tenant_id, e.idempotency_key) > ($4::timestamptz, $5::uuid, $6::text)
   order by e.occurred_at, e.tenant_id, e.idempotency_key
   limit $7`;

const DELTAS_SQL = `
  select d.id::text as id, d.tenant_id, d.table_name as subject, d.rows::text as quantity, d.at as time
    from tenantry.usage_row_deltas d
   where d.at >= $1 and d.at < $2 and ($3::uuid is null or d.tenant_id = $3) and d.id > $4::bigint
   order by d.id
   limit $5`;

/**
 * Every usage record of `[from, to)` as CloudEvents, page by page (bounded memory). Ids are
 * stable, so exporting an overlapping range again is harmless: the billing system drops the
 * events it already has. Rows written are exported one event per write statement and tenant
 * (`<tenant>/rows_written:<ledger id>`); sum them.
 *
 * Run it as the owner role for every tenant; as the app role inside `runAs(tenant)` it yields
 * only that tenant's records (RLS).
 *
 * @example
 * for await (const event of exportUsage(ownerPool, { from, to, source: 'tenantry://eu-1/app' })) send(event);
 */
export async function* exportUsage(db: Queryable, query: UsageExportQuery): AsyncGenerator<UsageCloudEvent> {
  checkUsageRange(query.from, query.to);
  const source = query.source ?? 'tenantry';
  if (typeof source !== 'string' || source.length === 0 || source.length > 200)
    throw new ConfigurationError('The CloudEvents source must be 1-200 characters');
  const pageSize = query.pageSize ?? 5000;
  const tenant = query.tenantId ?? null;
  const ledger = query.ledger === undefined ? '' : `@${query.ledger}`;
  // the cursor keeps PostgreSQL's microseconds (a Date has milliseconds only)
  let after: [string, string, string] = ['-infinity', '00000000-0000-0000-0000-000000000000', ''];
  for (;;) {
    const { rows } = await db.query<{
      tenant_id: string;
      key: string;
      meter: string;
      quantity: string;
      subject: string | null;
      time: Date;
      cursor_time: string;
    }>(EVENTS_SQL, [query.from, query.to, tenant, ...after, pageSize]);
    for (const r of rows) {
      yield {
        specversion: '1.0',
        id: `${r.tenant_id}/${r.key}`,
        source,
        type: `tenantry.usage.${r.meter}`,
        subject: r.tenant_id,
        time: r.time.toISOString(),
        datacontenttype: 'application/json',
        data: {
          meter: r.meter,
          quantity: Number(r.quantity),
          ...(r.subject === null ? {} : { subject: r.subject }),
          aggregation: r.meter === METERS.storageBytes ? 'latest' : 'sum',
        },
      };
    }
    if (rows.length < pageSize) break;
    const last = rows[rows.length - 1]!;
    after = [last.cursor_time, last.tenant_id, last.key];
  }
  let afterId = '0';
  for (;;) {
    const { rows } = await db.query<{ id: string; tenant_id: string; subject: string; quantity: string; time: Date }>(
      DELTAS_SQL,
      [query.from, query.to, tenant, afterId, pageSize],
    );
    for (const r of rows) {
      yield {
        specversion: '1.0',
        id: `${r.tenant_id}/${METERS.rowsWritten}${ledger}:${r.id}`,
        source,
        type: `tenantry.usage.${METERS.rowsWritten}`,
        subject: r.tenant_id,
        time: r.time.toISOString(),
        datacontenttype: 'application/json',
        data: { meter: METERS.rowsWritten, quantity: Number(r.quantity), subject: r.subject, aggregation: 'sum' },
      };
    }
    if (rows.length < pageSize) break;
    afterId = rows[rows.length - 1]!.id;
  }
}
