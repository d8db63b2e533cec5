import {
  Logger,
  makeWorkerUtils,
  parseCronItems,
  run,
  type Job,
  type Runner,
  type Task,
  type WorkerUtils,
} from 'graphile-worker';
import type { Pool } from 'pg';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { quoteIdent } from '../policy/identifiers.js';
import type { SealedJob } from './job-envelope.js';
import type {
  ClaimedJob,
  JobQueueAdapter,
  JobRunner,
  JobState,
  JobToSend,
  QueueSettings,
  SqlExecutor,
} from './job-queue-adapter.js';

/** Options of {@link GraphileWorkerAdapter}. */
export interface GraphileWorkerAdapterOptions {
  /** A pg.Pool as the OWNER role on the home database: graphile-worker migrates its schema there on start(). */
  pgPool: Pool;
  /** graphile-worker's schema (default `graphile_worker`). */
  schema?: string;
  /** How often an idle runner looks for due jobs, in ms (default 2000; new jobs wake it through LISTEN/NOTIFY). */
  pollInterval?: number;
  /** graphile-worker's logger (default: its warnings and errors on the console, task failures left out: Tenantry reports those). */
  logger?: Logger;
}

const REFUSED = 'tenantry:refused';
// graphile-worker's priority is a smallint, lowest first
const MAX_PRIORITY = 32_767;

type Outcome = { kind: 'complete' } | { kind: 'fail' | 'refuse'; message: string };

const quietLogger = new Logger(() => (level, message, meta) => {
  if ((level === 'error' || level === 'warning') && !(meta as { failure?: boolean } | undefined)?.failure)
    console.warn(`[graphile-worker] ${message}`);
});

/**
 * Tenantry jobs on graphile-worker (0.17): the queue lives in the same PostgreSQL, in its own
 * schema. Push-style: graphile-worker's runner calls a task function per job, which hands the job
 * to Tenantry's checks ({@link JobQueueAdapter.consume}); the outcome Tenantry reports decides how
 * the task ends (returns: done, the row is deleted; throws: graphile-worker retries it with its own
 * backoff, `exp(attempts)` seconds — `retryDelaySeconds` does not apply). A refused job has its
 * `max_attempts` lowered to its attempts before the task throws `tenantry:refused`: terminal, never
 * retried nor dead-lettered. graphile-worker has no dead-letter queue: a job failing for good is
 * copied to the queue's `deadLetter` here. Jobs are added with `add_jobs` on the caller's
 * transaction when given (the cron fan-out's page commits with its jobs). Cron runs in UTC, in the
 * processes that `work()`. graphile-worker deletes a completed job: `state()` answers `completed`
 * for an id it issued and no longer holds (a purged job's id too).
 *
 * @example
 * const adapter = new GraphileWorkerAdapter({ pgPool: ownerPool });
 * const jobs = new TenantJobs({ adapter, catalog: ownerPool, signingSecret });
 */
export class GraphileWorkerAdapter implements JobQueueAdapter {
  readonly kind = 'graphile-worker';
  readonly #options: GraphileWorkerAdapterOptions;
  readonly #schema: string;
  readonly #settings = new Map<string, QueueSettings>();
  readonly #crons = new Map<string, { cron: string; data: SealedJob }>();
  readonly #runners = new Map<string, JobRunner>();
  readonly #outcomes = new Map<string, Outcome>();
  #concurrency = 1;
  #utils: WorkerUtils | undefined;
  #sequence = '';
  #runner: Runner | undefined;
  #restarting: Promise<void> = Promise.resolve();

  constructor(options: GraphileWorkerAdapterOptions) {
    this.#options = options;
    this.#schema = quoteIdent(options.schema ?? 'graphile_worker', 'schema');
  }

  async start(): Promise<void> {
    this.#utils ??= await makeWorkerUtils({
      pgPool: this.#options.pgPool,
      schema: this.#options.schema ?? 'graphile_worker',
      logger: this.#options.logger ?? quietLogger,
    });
    await this.#utils.migrate();
    // the jobs table was renamed (`jobs` → `_private_jobs`); its id sequence kept its name
    const { rows } = await this.#options.pgPool.query<{ seq: string }>(
      `select pg_get_serial_sequence($1, 'id') as seq`,
      [`${this.#schema}._private_jobs`],
    );
    this.#sequence = rows[0]!.seq;
  }

  async stop(): Promise<void> {
    this.#runners.clear();
    await this.#restart();
    await this.#utils?.release();
    this.#utils = undefined;
  }

  async ensureQueue(settings: QueueSettings): Promise<void> {
    this.#settings.set(settings.name, settings);
  }

  async send(queue: string, jobs: readonly JobToSend[], transaction?: SqlExecutor): Promise<string[]> {
    if (jobs.length === 0) return [];
    const attempts = (this.#settings.get(queue)?.retryLimit ?? 2) + 1;
    const specs = jobs.map((j) => ({
      identifier: queue,
      payload: j.data,
      run_at: j.startAfterSeconds ? new Date(Date.now() + j.startAfterSeconds * 1000).toISOString() : null,
      max_attempts: attempts,
      priority: Math.min(MAX_PRIORITY, Math.max(-MAX_PRIORITY, -j.priority)),
    }));
    const db: SqlExecutor = transaction ?? this.#options.pgPool;
    const { rows } = await db.query<{ id: string }>(
      `select id::text as id from ${this.#schema}.add_jobs(array(
         select json_populate_record(null::${this.#schema}.job_spec, s) from json_array_elements($1::json) s))`,
      [JSON.stringify(specs)],
    );
    return rows.map((r) => r.id);
  }

  async consume(runners: ReadonlyMap<string, JobRunner>, concurrency: number): Promise<void> {
    for (const [queue, runner] of runners) this.#runners.set(queue, runner);
    this.#concurrency = Math.max(this.#concurrency, concurrency * this.#runners.size);
    await this.#restart();
  }

  /** Push-style: graphile-worker's runner takes the jobs (see consume); never called by TenantJobs. */
  async claim(): Promise<ClaimedJob | undefined> {
    return undefined;
  }

  async complete(job: ClaimedJob): Promise<void> {
    this.#outcomes.set(job.id, { kind: 'complete' });
  }

  async fail(job: ClaimedJob, error: { code?: string; message: string }): Promise<void> {
    const dead = this.#settings.get(job.queue)?.deadLetter;
    if (dead && job.retryCount >= job.retryLimit) await this.send(dead, [{ data: job.data as SealedJob, priority: 0 }]);
    this.#outcomes.set(job.id, {
      kind: 'fail',
      message: error.code ? `${error.message} (${error.code})` : error.message,
    });
  }

  async refuse(job: ClaimedJob): Promise<void> {
    // the job is locked by this runner: reschedule_jobs would skip it, so the row is updated here
    await this.#options.pgPool.query(`update ${this.#schema}._private_jobs set max_attempts = attempts where id = $1`, [
      job.id,
    ]);
    this.#outcomes.set(job.id, { kind: 'refuse', message: REFUSED });
  }

  async redrive(_queue: string, id: string): Promise<boolean> {
    // one more attempt for a job that has none left, and not locked (not running)
    const { rowCount } = await this.#options.pgPool.query(
      `update ${this.#schema}._private_jobs
          set max_attempts = attempts + 1, run_at = now(), updated_at = now()
        where id = $1 and attempts >= max_attempts and locked_at is null`,
      [toBigint(id)],
    );
    return rowCount === 1;
  }

  async state(_queue: string, id: string): Promise<JobState | undefined> {
    const bigint = toBigint(id);
    if (bigint === null || !this.#sequence) return undefined;
    const { rows } = await this.#options.pgPool.query<{
      attempts: number;
      max_attempts: number;
      last_error: string | null;
      locked: boolean;
      issued: boolean;
    }>(
      `select j.attempts, j.max_attempts, j.last_error, j.locked_at is not null as locked, true as issued
         from ${this.#schema}._private_jobs j where j.id = $1
       union all
       select 0, 0, null, false, $1 <= (select last_value from ${this.#sequence})
        where not exists (select 1 from ${this.#schema}._private_jobs where id = $1)`,
      [bigint],
    );
    const row = rows[0];
    if (!row) return undefined;
    if (row.max_attempts === 0) return row.issued ? 'completed' : undefined;
    if (row.locked) return 'active';
    if (row.attempts >= row.max_attempts) return row.last_error === REFUSED ? 'refused' : 'failed';
    return row.attempts > 0 ? 'retry' : 'queued';
  }

  async schedule(queue: string, cron: string, data: SealedJob, timezone: string): Promise<void> {
    if (timezone !== 'UTC') throw new ConfigurationError("graphile-worker's cron runs in UTC: pass no timezone");
    this.#crons.set(queue, { cron, data });
    if (this.#runner) await this.#restart();
  }

  async unschedule(queue: string): Promise<void> {
    if (this.#crons.delete(queue) && this.#runner) await this.#restart();
  }

  #task(queue: string): Task {
    return async (payload, helpers) => {
      const job: Job = helpers.job;
      const runner = this.#runners.get(queue);
      if (!runner) throw new Error('no runner for this queue');
      await runner({
        id: String(job.id),
        queue,
        data: payload,
        retryCount: job.attempts - 1,
        retryLimit: job.max_attempts - 1,
        createdOn: new Date(job.created_at),
      });
      const outcome = this.#outcomes.get(String(job.id));
      this.#outcomes.delete(String(job.id));
      if (outcome && outcome.kind !== 'complete') throw new Error(outcome.message);
    };
  }

  /** Stops the runner and starts one for the current queues and schedules (graphile-worker fixes both at start). */
  #restart(): Promise<void> {
    this.#restarting = this.#restarting.then(async () => {
      const previous = this.#runner;
      this.#runner = undefined;
      await previous?.stop();
      if (this.#runners.size === 0) return;
      this.#runner = await run({
        pgPool: this.#options.pgPool,
        schema: this.#options.schema ?? 'graphile_worker',
        logger: this.#options.logger ?? quietLogger,
        concurrency: this.#concurrency,
        pollInterval: this.#options.pollInterval ?? 2000,
        noHandleSignals: true,
        taskList: Object.fromEntries([...this.#runners.keys()].map((q) => [q, this.#task(q)])),
        parsedCronItems: parseCronItems(
          [...this.#crons].map(([queue, { cron, data }]) => ({
            task: queue,
            identifier: queue,
            match: cron,
            payload: data as unknown as Record<string, unknown>,
            options: { backfillPeriod: 0, maxAttempts: (this.#settings.get(queue)?.retryLimit ?? 2) + 1 },
          })),
        ),
      });
    });
    return this.#restarting;
  }
}

function toBigint(id: string): string | null {
  return /^[0-9]{1,18}$/.test(id) ? id : null;
}
