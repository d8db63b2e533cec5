/**
 * `tenantry/pino`: structured logs that name their tenant, and scrubbing of personal data by
 * value. pino is an optional peer dependency: only this subpath needs it.
 */
export {
  tenantLogOptions,
  tenantLogFields,
  type TenantLogOptions,
  type TenantLogFields,
} from './tenant-log-options.js';
export { PiiScrubber, type PiiClass, type PiiScrubberOptions } from './pii-scrubber.js';
export { passesLuhn } from './luhn.js';
export {
  runWithLogContext,
  currentLogContext,
  tagRequestLogger,
  actorOf,
  LOG_CONTEXT,
  type LogContext,
} from './log-context.js';
