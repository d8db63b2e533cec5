/**
 * `tenantry/jobs/graphile-worker`: the graphile-worker adapter of tenantry/jobs, in its own entry
 * so `tenantry/jobs` does not load graphile-worker for pg-boss users. See docs/jobs.md.
 */
export { GraphileWorkerAdapter, type GraphileWorkerAdapterOptions } from './graphile-worker-adapter.js';
