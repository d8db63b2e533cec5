import { randomUUID } from 'node:crypto';
import type PgBoss from 'pg-boss';
import type {
  ClaimedJob,
  JobQueueAdapter,
  JobState,
  JobToSend,
  QueueSettings,
  SqlExecutor,
} from './job-queue-adapter.js';
import type { SealedJob } from './job-envelope.js';

/** The part of a PgBoss instance the adapter uses (pg-boss 10). */
export type PgBossLike = Pick<
  PgBoss,
  | 'start'
  | 'stop'
  | 'createQueue'
  | 'updateQueue'
  | 'getQueue'
  | 'insert'
  | 'fetch'
  | 'complete'
  | 'fail'
  | 'cancel'
  | 'retry'
  | 'resume'
  | 'getJobById'
  | 'schedule'
  | 'unschedule'
>;

const STATES: Record<string, JobState> = {
  created: 'queued',
  retry: 'retry',
  active: 'active',
  completed: 'completed',
  cancelled: 'refused',
  failed: 'failed',
};

/**
 * Tenantry jobs on pg-boss (10.x): the queue lives in the same PostgreSQL, in pg-boss's own
 * schema (`pgboss` by default), which the role pg-boss connects as creates on `start()` (the
 * owner role: see docs/jobs.md). Refused jobs are pg-boss's `cancelled` (terminal; never
 * retried nor dead-lettered).
 *
 * @example
 * const boss = new PgBoss({ connectionString: ownerUrl });
 * const jobs = new TenantJobs({ adapter: new PgBossAdapter(boss), catalog: ownerPool, signingSecret });
 */
export class PgBossAdapter implements JobQueueAdapter {
  readonly kind = 'pg-boss';

  constructor(private readonly boss: PgBossLike) {}

  async start(): Promise<void> {
    await this.boss.start();
  }

  async stop(): Promise<void> {
    // graceful: pg-boss waits for its own workers (Tenantry's are stopped before this)
    await this.boss.stop({ graceful: true, wait: true, timeout: 10_000 });
  }

  async ensureQueue(s: QueueSettings): Promise<void> {
    const options = {
      name: s.name,
      retryLimit: s.retryLimit,
      retryDelay: s.retryDelaySeconds,
      retryBackoff: s.retryBackoff,
      expireInSeconds: s.expireInSeconds,
      ...(s.deadLetter ? { deadLetter: s.deadLetter } : {}),
    };
    // createQueue does nothing when the queue exists: update it so changed settings apply
    if (await this.boss.getQueue(s.name)) await this.boss.updateQueue(s.name, options);
    else await this.boss.createQueue(s.name, options);
  }

  async send(queue: string, jobs: readonly JobToSend[], transaction?: SqlExecutor): Promise<string[]> {
    if (jobs.length === 0) return [];
    // pg-boss's insert returns no ids: they are chosen here
    const rows = jobs.map((j) => ({
      id: randomUUID(),
      name: queue,
      data: j.data as unknown as object,
      priority: j.priority,
      ...(j.startAfterSeconds ? { startAfter: new Date(Date.now() + j.startAfterSeconds * 1000) } : {}),
    }));
    if (transaction) await this.boss.insert(rows, { db: executorOf(transaction) });
    else await this.boss.insert(rows);
    return rows.map((r) => r.id);
  }

  async claim(queue: string): Promise<ClaimedJob | undefined> {
    const [job] = await this.boss.fetch(queue, { batchSize: 1, includeMetadata: true, priority: true });
    if (!job) return undefined;
    return {
      id: job.id,
      queue: job.name,
      data: job.data,
      retryCount: job.retryCount,
      retryLimit: job.retryLimit,
      createdOn: job.createdOn,
    };
  }

  async complete(job: ClaimedJob): Promise<void> {
    await this.boss.complete(job.queue, job.id);
  }

  async fail(job: ClaimedJob, error: { code?: string; message: string }): Promise<void> {
    await this.boss.fail(job.queue, job.id, { code: error.code ?? null, message: error.message });
  }

  async refuse(job: ClaimedJob): Promise<void> {
    await this.boss.cancel(job.queue, job.id);
  }

  async redrive(queue: string, id: string): Promise<boolean> {
    const state = await this.state(queue, id);
    // pg-boss 10 answers { affected } although its types say void
    let result: unknown;
    if (state === 'failed') result = await this.boss.retry(queue, id);
    else if (state === 'refused') result = await this.boss.resume(queue, id);
    else return false;
    return (result as { affected?: number } | undefined)?.affected === 1;
  }

  async state(queue: string, id: string): Promise<JobState | undefined> {
    const job = await this.boss.getJobById(queue, id);
    return job ? STATES[job.state] : undefined;
  }

  async schedule(queue: string, cron: string, data: SealedJob, timezone: string): Promise<void> {
    await this.boss.schedule(queue, cron, data as unknown as object, { tz: timezone });
  }

  async unschedule(queue: string): Promise<void> {
    await this.boss.unschedule(queue);
  }
}

function executorOf(db: SqlExecutor): { executeSql(text: string, values: unknown[]): Promise<{ rows: unknown[] }> } {
  return { executeSql: (text, values) => db.query(text, values) };
}
