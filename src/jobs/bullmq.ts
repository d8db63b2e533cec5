/**
 * `tenantry/jobs/bullmq`: the BullMQ (Redis) adapter of tenantry/jobs, in its own entry so
 * `tenantry/jobs` does not load BullMQ for pg-boss users. See docs/jobs.md.
 */
export { BullMqAdapter, type BullMqAdapterOptions } from './bullmq-adapter.js';
