import { TenantryError } from '../errors/tenantry-error.js';

/**
 * A tenant job was enqueued with no tenant in context (outside `runAs`): refused, since a job
 * without a tenant would run for nobody or, worse, for whoever the worker ran last. Declare the
 * job `global: true` if it really belongs to no tenant.
 */
export class JobTenantMissingError extends TenantryError {
  constructor(queue: string) {
    super(
      'JOB_TENANT_MISSING',
      `Job ${queue} needs a tenant: enqueue it inside runAs(tenant, fn), or define it with global: true`,
      { status: 500, details: { queue } },
    );
  }
}

/**
 * A job's envelope failed verification: its signature does not match (a row edited in the queue
 * table, e.g. to switch its tenant), it was moved to another queue, or it is not a Tenantry job.
 * The worker never runs such a job; it ends it at once (no retries).
 */
export class JobEnvelopeInvalidError extends TenantryError {
  constructor(queue: string, reason: string) {
    super('JOB_ENVELOPE_INVALID', `Job envelope of ${queue} refused: ${reason}`, {
      status: 500,
      details: { queue, reason },
    });
  }
}

/** A job name that was never defined on this TenantJobs (enqueue, schedule, re-drive). */
export class UnknownJobError extends TenantryError {
  constructor(queue: string) {
    super('JOB_UNKNOWN', `No job named ${queue} is defined: call jobs.define() first`, {
      status: 500,
      details: { queue },
    });
  }
}

/**
 * A job payload that cannot be stored as sent: undefined, not JSON-serialisable (a BigInt, a
 * cycle, a function), or larger than `maxPayloadBytes` once serialised. Refused at enqueue;
 * nothing is sent. The reason never quotes the payload.
 */
export class JobPayloadInvalidError extends TenantryError {
  constructor(queue: string, reason: string, details: Record<string, unknown> = {}) {
    super('JOB_PAYLOAD_INVALID', `Job ${queue}: payload refused: ${reason}`, {
      status: 400,
      details: { queue, reason, ...details },
    });
  }
}
