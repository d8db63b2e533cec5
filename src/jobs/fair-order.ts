import type { SqlExecutor } from './job-queue-adapter.js';

const MIN_PRIORITY = -2_147_483_647;
/** How often the ends counted in memory are written. */
const FLUSH_MS = 200;

/**
 * Fair ordering across tenants on a queue that orders by priority, then age (pg-boss does):
 * a job's priority is minus its tenant's backlog on that queue when it is enqueued. Tenant A's
 * 10,000-job burst gets priorities 0 … −9,999; tenant B's 10 jobs enqueued a moment later get
 * 0 … −9 and run before A's remaining backlog, whatever the worker count. Within one tenant,
 * one burst runs in order; a job enqueued while older ones of its tenant still wait may overtake
 * some of them (its priority is its backlog then): order within a tenant is not guaranteed.
 *
 * Hand-written: pg-boss has per-key concurrency caps but no fair ordering, graphile-worker none,
 * BullMQ's groups are in its paid Pro edition. The backlog is counted in
 * tenantry_private.job_backlog (one upsert per enqueue call, one update per finished job).
 */
export class FairOrder {
  readonly #pending = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly db: SqlExecutor) {}

  /** Priorities of `count` new jobs of `tenantKey` (a tenant id, or '' for global jobs). */
  async priorities(queue: string, tenantKey: string, count: number): Promise<number[]> {
    const { rows } = await this.db.query<{ backlog: string }>(
      `insert into tenantry_private.job_backlog as b (queue, tenant_key, enqueued) values ($1, $2, $3)
       on conflict (queue, tenant_key) do update set enqueued = b.enqueued + excluded.enqueued
       returning (b.enqueued - b.done - $3)::text as backlog`,
      [queue, tenantKey, count],
    );
    const backlog = Math.max(0, Number(rows[0]!.backlog));
    return Array.from({ length: count }, (_, i) => Math.max(MIN_PRIORITY, -(backlog + i)));
  }

  /**
   * A job of `tenantKey` ended (completed, refused, or failed for good). Counted in memory and
   * written at most every {@link FLUSH_MS} in one statement: a per-job UPDATE of the same row by
   * every worker would serialise them on its lock. A crash loses at most that much counting,
   * which only makes the tenant's later jobs look a little further back (never lost or unrun).
   */
  ended(queue: string, tenantKey: string): void {
    const key = JSON.stringify([queue, tenantKey]);
    this.#pending.set(key, (this.#pending.get(key) ?? 0) + 1);
    this.#timer ??= setTimeout(() => void this.flush().catch(() => undefined), FLUSH_MS);
    this.#timer.unref?.();
  }

  /** Writes the counted ends now (stop() calls it). */
  async flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.size === 0) return;
    const entries = [...this.#pending];
    this.#pending.clear();
    const keys = entries.map(([k]) => JSON.parse(k) as [string, string]);
    await this.db.query(
      `update tenantry_private.job_backlog b set done = least(b.done + e.n, b.enqueued)
         from unnest($1::text[], $2::text[], $3::bigint[]) as e(queue, tenant_key, n)
        where b.queue = e.queue and b.tenant_key = e.tenant_key`,
      [keys.map((k) => k[0]), keys.map((k) => k[1]), entries.map(([, n]) => n)],
    );
  }
}
