/**
 * `tenantry/metering`: usage metering for billing. Rows written are recorded by a trigger in
 * the same transaction as the write; requests, database time, job runs and storage samples are
 * recorded exactly once under idempotency keys. Reports, and an export as CloudEvents.
 * See docs/metering.md.
 */
export { METERS, validateUsageEvent, type UsageEvent } from './usage-event.js';
export { UsageRecorder, type UsageRecorderOptions } from './usage-recorder.js';
export { meterDatabaseTime } from './database-time-meter.js';
export { meteredJob } from './metered-job.js';
export { sampleStorage, type StorageSampleOptions, type StorageSampleResult } from './storage-sampler.js';
export {
  usageReport,
  checkUsageRange,
  type UsageGranularity,
  type UsageReportQuery,
  type UsageRow,
} from './usage-report.js';
export {
  allUsageLocations,
  exportUsageEverywhere,
  usageLocations,
  usageReportEverywhere,
  type UsageEverywhereOptions,
  type UsageLocation,
} from './usage-everywhere.js';
export { exportUsage, type UsageCloudEvent, type UsageExportQuery } from './usage-export.js';
export { meterTenantTable } from './meter-tenant-table.js';
export { UsageBufferFullError, UsageFlushFailedError, UsageRecorderClosedError } from './metering-errors.js';
