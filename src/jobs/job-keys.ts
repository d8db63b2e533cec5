import type { SqlExecutor } from './job-queue-adapter.js';

/** What the ledger says of one run of a job. */
export type JobKeyVerdict =
  /** The key is this job's (first run, a retry, a re-drive): run it. */
  | 'ok'
  /** The key is bound to another job id (a copied row), or a dead-letter copy of a job that never failed for good. */
  | 'replayed'
  /** The envelope is older than the keys' retention: its key may have been forgotten. */
  | 'expired';

/**
 * The single-use job keys (tenantry_private.job_keys): a job's key is bound to the id it first
 * ran under, in the queue it ran in. A row copied or re-inserted under a new id carries the same
 * signed key and is refused; the queue's own retries and an operator's re-drive keep the id and
 * run. A dead-letter queue's job is a copy by design: it runs once, and only when its source job
 * was recorded as failed for good. Rows are kept `retentionDays` after their envelope was sealed;
 * an older envelope is refused (`expired`), so a forgotten key cannot be used again.
 */
export class JobKeyLedger {
  readonly #db: SqlExecutor;
  readonly #retentionSeconds: number;
  #lastPrune = 0;

  constructor(db: SqlExecutor, retentionDays: number) {
    this.#db = db;
    this.#retentionSeconds = retentionDays * 86_400;
  }

  /**
   * Binds `key` to `jobId` in `queue` on its first run; `source` names the queue a dead-letter
   * copy came from (its key must be recorded there as exhausted).
   */
  async claim(input: {
    key: string;
    iat: number;
    queue: string;
    jobId: string;
    source?: string;
  }): Promise<JobKeyVerdict> {
    if (input.iat < Date.now() / 1000 - this.#retentionSeconds) return 'expired';
    if (input.source !== undefined) {
      const { rows } = await this.#db.query<{ exhausted: boolean }>(
        'select exhausted from tenantry_private.job_keys where job_key = $1 and queue = $2',
        [input.key, input.source],
      );
      if (rows[0]?.exhausted !== true) return 'replayed';
    }
    const inserted = await this.#db.query(
      `insert into tenantry_private.job_keys (job_key, queue, job_id, issued_at)
       values ($1, $2, $3, to_timestamp($4)) on conflict (job_key, queue) do nothing`,
      [input.key, input.queue, input.jobId, input.iat],
    );
    if (inserted.rowCount === 1) return 'ok';
    // a separate statement: under READ COMMITTED it sees the row a concurrent claim committed
    const { rows } = await this.#db.query<{ job_id: string }>(
      'select job_id from tenantry_private.job_keys where job_key = $1 and queue = $2',
      [input.key, input.queue],
    );
    return rows[0]?.job_id === input.jobId ? 'ok' : 'replayed';
  }

  /** Records that the job failed for good: its dead-letter copy may run. */
  async exhausted(key: string, queue: string): Promise<void> {
    await this.#db.query('update tenantry_private.job_keys set exhausted = true where job_key = $1 and queue = $2', [
      key,
      queue,
    ]);
  }

  /**
   * Deletes keys past their retention (plus a day: envelopes are refused from the retention on,
   * whatever the clocks' skew), at most once an hour per process.
   */
  async prune(): Promise<void> {
    if (Date.now() - this.#lastPrune < 3_600_000) return;
    this.#lastPrune = Date.now();
    await this.#db.query(`delete from tenantry_private.job_keys where issued_at < now() - make_interval(secs => $1)`, [
      this.#retentionSeconds + 86_400,
    ]);
  }
}
