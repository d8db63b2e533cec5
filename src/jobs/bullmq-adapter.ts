import { createHash } from 'node:crypto';
import { randomUUID } from 'node:crypto';
import { Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { SealedJob } from './job-envelope.js';
import type { ClaimedJob, JobQueueAdapter, JobState, JobToSend, QueueSettings } from './job-queue-adapter.js';

/** Options of {@link BullMqAdapter}. */
export interface BullMqAdapterOptions {
  /** Redis connection options (or an ioredis instance) BullMQ uses for every queue. */
  connection: ConnectionOptions;
  /** Key prefix in Redis (default `tenantry`). */
  prefix?: string;
}

// BullMQ: priority 1 is the highest it has above "no priority" (jobs without one run first)
const MAX_PRIORITY = 2_097_152;
const REFUSED = 'tenantry:refused';

interface Claimed {
  job: Job;
  token: string;
}

/**
 * Tenantry jobs on BullMQ (Redis). Claim-based through `Worker.getNextJob`: BullMQ never calls a
 * handler; Tenantry's worker does, after its checks. Refused jobs are BullMQ `failed` with an
 * UnrecoverableError whose reason starts `tenantry:refused` (no retry). BullMQ has no
 * dead-letter queue: a job failing for good is copied to the queue's `deadLetter` here. Jobs
 * cannot join a PostgreSQL transaction: the cron fan-out's jobs carry a key (the job id), so a
 * re-run adds no duplicate.
 */
export class BullMqAdapter implements JobQueueAdapter {
  readonly kind = 'bullmq';
  readonly #options: BullMqAdapterOptions;
  readonly #queues = new Map<string, Queue>();
  readonly #workers = new Map<string, Worker>();
  readonly #settings = new Map<string, QueueSettings>();
  readonly #claimed = new Map<string, Claimed>();

  constructor(options: BullMqAdapterOptions) {
    this.#options = options;
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    await Promise.all([...this.#workers.values()].map((w) => w.close(true)));
    await Promise.all([...this.#queues.values()].map((q) => q.close()));
    this.#workers.clear();
    this.#queues.clear();
  }

  #queue(name: string): Queue {
    let q = this.#queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.#options.connection, prefix: this.#options.prefix ?? 'tenantry' });
      q.on('error', () => undefined);
      this.#queues.set(name, q);
    }
    return q;
  }

  #worker(name: string): Worker {
    let w = this.#workers.get(name);
    if (!w) {
      // no processor, not running: jobs are only ever taken by getNextJob
      w = new Worker(name, null, {
        connection: this.#options.connection,
        prefix: this.#options.prefix ?? 'tenantry',
        autorun: false,
        lockDuration: (this.#settings.get(name)?.expireInSeconds ?? 900) * 1000,
      });
      w.on('error', () => undefined);
      this.#workers.set(name, w);
    }
    return w;
  }

  async ensureQueue(settings: QueueSettings): Promise<void> {
    this.#settings.set(settings.name, settings);
    await this.#queue(settings.name).waitUntilReady();
  }

  async send(queue: string, jobs: readonly JobToSend[]): Promise<string[]> {
    if (jobs.length === 0) return [];
    const s = this.#settings.get(queue);
    const added = await this.#queue(queue).addBulk(
      jobs.map((j) => ({
        name: queue,
        data: j.data,
        opts: {
          // a key makes the id: BullMQ ignores a second job with an existing id
          jobId: j.key ? `k${createHash('sha256').update(j.key).digest('hex').slice(0, 40)}` : randomUUID(),
          ...(j.priority < 0 ? { priority: Math.min(MAX_PRIORITY, 1 - j.priority) } : {}),
          ...(j.startAfterSeconds ? { delay: j.startAfterSeconds * 1000 } : {}),
          attempts: (s?.retryLimit ?? 2) + 1,
          backoff: {
            type: s?.retryBackoff ? 'exponential' : 'fixed',
            delay: (s?.retryDelaySeconds ?? 0) * 1000,
          },
        },
      })),
    );
    return added.map((j) => j.id!);
  }

  async claim(queue: string): Promise<ClaimedJob | undefined> {
    const token = randomUUID();
    const job = (await this.#worker(queue).getNextJob(token, { block: false })) as Job | undefined;
    if (!job) return undefined;
    this.#claimed.set(`${queue}/${job.id}`, { job, token });
    return {
      id: job.id!,
      queue,
      data: job.data,
      retryCount: job.attemptsMade,
      retryLimit: (job.opts.attempts ?? 1) - 1,
      createdOn: new Date(job.timestamp),
    };
  }

  #take(job: ClaimedJob): Claimed {
    const key = `${job.queue}/${job.id}`;
    const claimed = this.#claimed.get(key);
    if (!claimed) throw new Error('job was not claimed by this adapter');
    this.#claimed.delete(key);
    return claimed;
  }

  async complete(job: ClaimedJob): Promise<void> {
    const { job: j, token } = this.#take(job);
    await j.moveToCompleted(null, token, false);
  }

  async fail(job: ClaimedJob, error: { code?: string; message: string }): Promise<void> {
    const { job: j, token } = this.#take(job);
    await j.moveToFailed(new Error(error.code ? `${error.message} (${error.code})` : error.message), token, false);
    const dead = this.#settings.get(job.queue)?.deadLetter;
    if (dead && (await j.getState()) === 'failed')
      await this.send(dead, [{ data: j.data as SealedJob, priority: 0, key: `dead-${job.queue}-${job.id}` }]);
  }

  async refuse(job: ClaimedJob): Promise<void> {
    const { job: j, token } = this.#take(job);
    await j.moveToFailed(new UnrecoverableError(REFUSED), token, false);
  }

  async redrive(queue: string, id: string): Promise<boolean> {
    const job = await this.#queue(queue).getJob(id);
    if (!job || (await job.getState()) !== 'failed') return false;
    await job.retry('failed', { resetAttemptsMade: false });
    return true;
  }

  async state(queue: string, id: string): Promise<JobState | undefined> {
    // the state first, then the job's fields: read the other way round, a job failing in between
    // would show as failed with the reason it had before (none)
    const state = await this.#queue(queue).getJobState(id);
    if (state === 'unknown') return undefined;
    if (state === 'completed') return 'completed';
    if (state === 'active') return 'active';
    const job = await this.#queue(queue).getJob(id);
    if (!job) return undefined;
    if (state === 'failed') return job.failedReason?.startsWith(REFUSED) ? 'refused' : 'failed';
    return job.attemptsMade > 0 ? 'retry' : 'queued';
  }

  async schedule(queue: string, cron: string, data: SealedJob, timezone: string): Promise<void> {
    await this.#queue(queue).upsertJobScheduler(queue, { pattern: cron, tz: timezone }, { name: queue, data });
  }

  async unschedule(queue: string): Promise<void> {
    await this.#queue(queue).removeJobScheduler(queue);
  }
}
