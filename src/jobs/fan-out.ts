import type { JobQueueAdapter, SqlExecutor } from './job-queue-adapter.js';
import type { SealedJob } from './job-envelope.js';

/** The owner-role pool of the home database: queries, and a client for a transaction. */
export interface OwnerPool extends SqlExecutor {
  connect(): Promise<SqlExecutor & { release(error?: Error | boolean): void }>;
}

/** What one fan-out run did. */
export interface FanOutResult {
  /** Tenants sent a job by this run. */
  sent: number;
  /** Active tenants an earlier run of the same tick had already sent. */
  skipped: number;
}

const PAGE = 500;
// ledger rows outlive any retry of their tick by far; older ones are deleted as fan-outs run
const KEEP_DAYS = 7;

/**
 * One tick of a scheduled tenant job: every ACTIVE tenant gets one job. Each page of tenants is
 * one transaction that records (queue, tick, tenant) in tenantry_private.job_fanout and inserts
 * the jobs of the tenants not recorded yet: a crash leaves each page all sent or not at all, and a
 * re-run of the tick sends exactly the rest.
 */
export async function fanOutTick(input: {
  catalog: OwnerPool;
  adapter: JobQueueAdapter;
  queue: string;
  tick: string;
  seal(tenantId: string): SealedJob;
}): Promise<FanOutResult> {
  const { catalog, adapter, queue, tick } = input;
  let after = '00000000-0000-0000-0000-000000000000';
  let sent = 0;
  let skipped = 0;
  await catalog.query(`delete from tenantry_private.job_fanout where sent_at < now() - make_interval(days => $1)`, [
    KEEP_DAYS,
  ]);
  for (;;) {
    const { rows } = await catalog.query<{ id: string }>(
      `select id from tenantry.tenants where status = 'active' and id > $1 order by id limit $2`,
      [after, PAGE],
    );
    if (rows.length === 0) break;
    after = rows[rows.length - 1]!.id;
    const client = await catalog.connect();
    try {
      await client.query('begin');
      const fresh = await client.query<{ tenant_id: string }>(
        `insert into tenantry_private.job_fanout (queue, tick, tenant_id)
         select $1, $2, t from unnest($3::uuid[]) t
         on conflict do nothing returning tenant_id`,
        [queue, tick, rows.map((r) => r.id)],
      );
      await adapter.send(
        queue,
        fresh.rows.map((r) => ({ data: input.seal(r.tenant_id), priority: 0, key: `${queue}-${tick}-${r.tenant_id}` })),
        client,
      );
      await client.query('commit');
      sent += fresh.rows.length;
      skipped += rows.length - fresh.rows.length;
      client.release();
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      client.release(true);
      throw error;
    }
    if (rows.length < PAGE) break;
  }
  return { sent, skipped };
}
