import type { TenantPoolObserver } from '../data/pool-observer.js';
import { METERS } from './usage-event.js';
import type { UsageRecorder } from './usage-recorder.js';

/**
 * A TenantPool observer that adds each tenant statement's duration to the recorder's
 * `db_time_us` counter (microseconds). Statements with no tenant are not billed to anyone.
 *
 * @example
 * const pool = new TenantPool({ connectionString, contextSecret, observer: meterDatabaseTime(usage) });
 */
export function meterDatabaseTime(recorder: UsageRecorder): TenantPoolObserver {
  return {
    statementDone({ tenantId, durationMs }) {
      if (tenantId !== undefined) recorder.add(tenantId, METERS.dbTimeMicros, Math.round(durationMs * 1000));
    },
  };
}
