import type { Queryable } from '../catalog/tenant-catalog.js';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { METERS } from './usage-event.js';

/** Options of {@link sampleStorage}. */
export interface StorageSampleOptions {
  /** The sample's time (default now). */
  at?: Date;
  /**
   * Length of a sampling period in ms (default one hour): one sample per tenant, table and
   * period. Sampling again within the period records nothing (the key is the period's start).
   */
  periodMs?: number;
}

/** What one sampling pass recorded. */
export interface StorageSampleResult {
  tables: number;
  /** Samples written (tenant × table); 0 when this period was already sampled. */
  samples: number;
}

const REGISTERED_SQL = `
  select format('%I.%I', n.nspname, c.relname) as name, r.tenant_column as column
    from tenantry.registered_tables r
    join pg_catalog.pg_class c on c.oid = r.relid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where r.kind = 'tenant'
   order by 1`;

/**
 * Samples the bytes each tenant's rows take in every registered tenant table of this database
 * (`sum(pg_column_size(row))`: the rows as stored, TOAST-compressed values at their compressed
 * size; indexes and free space are not attributed to a tenant) and records them as
 * `storage_bytes` events, one per tenant, table and period. Each table's samples are written by
 * one `INSERT … SELECT … ON CONFLICT DO NOTHING`, so a pass that crashes and runs again records
 * each sample exactly once. Run it as the owner role, on a schedule (a cron job of
 * `tenantry/jobs`, a timer): it reads every row, so keep the period long on large tables.
 *
 * @example
 * await sampleStorage(ownerPool); // hourly
 */
export async function sampleStorage(db: Queryable, options: StorageSampleOptions = {}): Promise<StorageSampleResult> {
  const periodMs = options.periodMs ?? 3_600_000;
  if (!Number.isSafeInteger(periodMs) || periodMs < 60_000)
    throw new ConfigurationError('sampleStorage periodMs must be an integer of at least 60000');
  const at = options.at ?? new Date();
  const period = new Date(Math.floor(at.getTime() / periodMs) * periodMs);
  const { rows: tables } = await db.query<{ name: string; column: string }>(REGISTERED_SQL);
  let samples = 0;
  for (const t of tables) {
    // names come from the catalog, quoted by format(%I) there and by quoteIdent-like doubling here
    const column = `"${t.column.replaceAll('"', '""')}"`;
    const result = await db.query(
      `insert into tenantry.usage_events (tenant_id, idempotency_key, meter, quantity, subject, occurred_at)
       select s.${column}, $1 || ':' || $2 || ':' || $3, $1, sum(pg_column_size(s.*))::bigint, $2, $4::timestamptz
         from ${t.name} s group by s.${column}
       on conflict (tenant_id, idempotency_key) do nothing`,
      [METERS.storageBytes, t.name, period.toISOString(), period],
    );
    samples += result.rowCount ?? 0;
  }
  return { tables: tables.length, samples };
}
