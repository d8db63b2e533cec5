/**
 * `tenantry/jobs`: background jobs that always know their tenant — a signed envelope, a worker
 * that restores the context with `runAs` and never runs a job of a missing, suspended or deleted
 * tenant, cron fan-out per tenant, fair ordering across tenants. See docs/jobs.md.
 */
export {
  TenantJobs,
  type TenantJobsOptions,
  type DefineJobOptions,
  type EnqueueOptions,
  type JobContext,
  type JobHandler,
  type JobRefusal,
  type WorkOptions,
} from './tenant-jobs.js';
export { PgBossAdapter, type PgBossLike } from './pg-boss-adapter.js';
export type {
  JobQueueAdapter,
  QueueSettings,
  JobToSend,
  ClaimedJob,
  JobRunner,
  JobState,
  SqlExecutor,
} from './job-queue-adapter.js';
export { JobEnvelopeSigner, type JobEnvelope, type SealedJob, type OpenedJob } from './job-envelope.js';
export { JobTenantMissingError, JobEnvelopeInvalidError, UnknownJobError } from './job-errors.js';
export { TenantStatusGate, type JobTenantStatus } from './tenant-status-gate.js';
export type { FanOutResult, OwnerPool } from './fan-out.js';
export {
  purgeTenantJobs,
  countTenantJobs,
  jobsPurgeParticipant,
  type PurgeTenantJobsOptions,
} from './purge-tenant-jobs.js';
