import { TenantryError } from '../errors/tenantry-error.js';

/**
 * The recorder's buffer is full (the database has not taken its flushes for a while): the event
 * was NOT recorded. Record it again with the same idempotency key later; it is counted once.
 */
export class UsageBufferFullError extends TenantryError {
  constructor(maxBuffered: number) {
    super('USAGE_BUFFER_FULL', `The usage recorder holds ${maxBuffered} unflushed events: retry later`, {
      status: 503,
      details: { maxBuffered },
    });
  }
}

/** The recorder was closed: nothing more is recorded through it. */
export class UsageRecorderClosedError extends TenantryError {
  constructor() {
    super('USAGE_RECORDER_CLOSED', 'The usage recorder is closed', { status: 503 });
  }
}

/**
 * A flush kept failing past its retries: the events it carried are not acknowledged. Recording
 * them again with the same keys is safe (a flush that did commit is not counted twice).
 */
export class UsageFlushFailedError extends TenantryError {
  constructor(attempts: number, cause: unknown) {
    super('USAGE_FLUSH_FAILED', `Usage events could not be written after ${attempts} attempts`, {
      status: 503,
      details: { attempts },
      cause,
    });
  }
}
