import type { JobContext, JobHandler } from '../jobs/tenant-jobs.js';
import { METERS } from './usage-event.js';
import type { UsageRecorder } from './usage-recorder.js';

/**
 * Wraps a job handler so each run of a tenant's job counts one `job_runs` unit, under the key
 * `job:<id>:<retryCount>`: a run the queue delivers twice (a worker crash after the handler, an
 * at-least-once queue) counts once, and each retry is its own run. Counted whether the run
 * succeeds or throws (a failed run still used the worker); global jobs are not counted.
 *
 * @example
 * jobs.define('reports.render', meteredJob(usage, async (payload, job) => render(payload)));
 */
export function meteredJob<T>(recorder: UsageRecorder, handler: JobHandler<T>): JobHandler<T> {
  return async (payload: T, job: JobContext) => {
    try {
      return await handler(payload, job);
    } finally {
      if (job.tenantId !== null)
        // awaited: the run is acknowledged to the queue only once its usage is durable
        await recorder.record({
          tenantId: job.tenantId,
          meter: METERS.jobRuns,
          quantity: 1,
          key: `job:${job.id}:${job.retryCount}`,
          subject: job.queue,
        });
    }
  };
}
