import type { SealedJob } from './job-envelope.js';

/** Something that runs SQL: a pg.Pool, or a pg.PoolClient inside a transaction. */
export interface SqlExecutor {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- mirrors node-postgres' QueryResultRow default (any)
  query<R extends Record<string, any> = any>(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: R[]; rowCount: number | null }>;
}

/** How a queue retries and where its exhausted jobs go. */
export interface QueueSettings {
  name: string;
  /** Retries after the first run (default 2). */
  retryLimit: number;
  /** Seconds before a retry (doubled each time when `retryBackoff`). */
  retryDelaySeconds: number;
  retryBackoff: boolean;
  /** How long one run may take before the queue fails it, in seconds. */
  expireInSeconds: number;
  /** The queue that receives a copy of a job whose retries are exhausted. */
  deadLetter?: string;
}

/** One job to insert. */
export interface JobToSend {
  data: SealedJob;
  /** Higher runs first; Tenantry's fair ordering uses 0 and below. */
  priority: number;
  startAfterSeconds?: number;
  /**
   * An idempotency key: a queue that cannot insert inside the caller's PostgreSQL transaction
   * (Redis) ignores a second job with the same key, so a re-run after a crash adds no duplicate.
   */
  key?: string;
}

/** A job a worker has claimed (active in the queue until completed, failed or refused). */
export interface ClaimedJob {
  id: string;
  queue: string;
  data: unknown;
  /** Runs before this one (0 on the first run). */
  retryCount: number;
  retryLimit: number;
  createdOn: Date;
}

/** A job's state as the queue reports it, in Tenantry's words. */
export type JobState = 'queued' | 'retry' | 'active' | 'completed' | 'refused' | 'failed';

/**
 * Runs one job through Tenantry's checks (envelope, tenant status, `runAs`); it ends the job with
 * the adapter's complete, fail or refuse before it resolves.
 */
export type JobRunner = (job: ClaimedJob) => Promise<void>;

/**
 * What Tenantry needs of a job queue: thin files map it onto pg-boss (pg-boss-adapter.ts), BullMQ
 * (bullmq-adapter.ts) and graphile-worker (graphile-worker-adapter.ts). Claim-based by default:
 * Tenantry's worker claims one job, checks its envelope and tenant, runs the handler inside
 * `runAs`, then reports the outcome. A push-style queue (graphile-worker calls task functions)
 * implements `consume` instead: its runner hands each job to a {@link JobRunner}, which makes the
 * same checks. Either way no queue library ever calls a handler directly.
 */
export interface JobQueueAdapter {
  /** A short name for logs and benchmarks (`pg-boss`). */
  readonly kind: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Creates (or updates) a queue. */
  ensureQueue(settings: QueueSettings): Promise<void>;
  /**
   * Inserts jobs; inside `transaction` when given and the queue lives in that database (pg-boss),
   * so they commit with it; otherwise once per `key`.
   */
  send(queue: string, jobs: readonly JobToSend[], transaction?: SqlExecutor): Promise<string[]>;
  /**
   * Push-style queues only: runs `runners` (queue name → runner) with at most `concurrency` jobs
   * at once per queue, until stop(). Called again with more queues, it takes them on too. When
   * present, Tenantry never calls `claim`.
   */
  consume?(runners: ReadonlyMap<string, JobRunner>, concurrency: number): Promise<void>;
  /** Claims the next job of `queue` (highest priority, then oldest), or undefined. */
  claim(queue: string): Promise<ClaimedJob | undefined>;
  complete(job: ClaimedJob): Promise<void>;
  /** Records a failed run: the queue retries it, or (retries exhausted) fails it and dead-letters it. */
  fail(job: ClaimedJob, error: { code?: string; message: string }): Promise<void>;
  /** Ends a job at once, never retried nor dead-lettered: its tenant is inactive or its envelope invalid. */
  refuse(job: ClaimedJob): Promise<void>;
  /** Runs a failed or refused job again (operator's re-drive); false when it is not in such a state. */
  redrive(queue: string, id: string): Promise<boolean>;
  state(queue: string, id: string): Promise<JobState | undefined>;
  /** Sends `data` to `queue` on every tick of `cron`. */
  schedule(queue: string, cron: string, data: SealedJob, timezone: string): Promise<void>;
  unschedule(queue: string): Promise<void>;
}
