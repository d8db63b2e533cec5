import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { isTenantId } from '../context/tenant-id.js';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { JobEnvelopeInvalidError } from './job-errors.js';

/** Who and what a job runs for: stored in the queue next to the payload, signed with it. */
export interface JobEnvelope {
  /** Format version (2: bound to a job key; version 1 envelopes are refused). */
  v: 2;
  /** The queue (job name) it was enqueued to: a row copied into another queue does not verify. */
  queue: string;
  /** The tenant it runs as; null for a job defined `global`. */
  tenant: string | null;
  /** Who caused it (a user id, `cron`, `system`…), for logs and audit; never a secret. */
  actor: string | null;
  /** The request that enqueued it, for tracing. */
  requestId: string | null;
  /**
   * The job key: 128 random bits (base64url) drawn when the job is sealed. The worker records it
   * with the job's id on the first run and refuses it under any other id (a copied row).
   */
  key: string;
  /** When it was sealed, in seconds since the epoch: keys are remembered for a bounded time. */
  iat: number;
  /** HMAC-SHA256 (hex) over the fields above and the payload's JSON text. */
  sig: string;
}

/**
 * A job's data as it sits in the queue table: the envelope and the payload as JSON text. Text,
 * not a JSON value: PostgreSQL's jsonb reorders keys, and the signature covers exact bytes.
 */
export interface SealedJob {
  tenantry: JobEnvelope;
  payload: string;
}

/** An opened, verified job: its envelope fields and its payload, parsed. */
export interface OpenedJob<T = unknown> {
  queue: string;
  tenant: string | null;
  actor: string | null;
  requestId: string | null;
  /** The job key (see {@link JobEnvelope.key}). */
  key: string;
  /** When it was sealed, in seconds since the epoch. */
  iat: number;
  payload: T;
}

const MAX_FIELD = 200;
const KEY = /^[A-Za-z0-9_-]{22}$/;

/**
 * Signs and verifies job envelopes. The key is derived (HKDF-SHA256) from a secret of at least 32
 * characters, by default the tenant context secret, so there is no new secret to manage; the
 * derivation keeps the two keys apart (a job signature is never a valid context value). A
 * rotation lists the old secrets in `previous`: jobs signed with them still verify.
 */
export class JobEnvelopeSigner {
  readonly #keys: Buffer[];

  constructor(secret: string, previous: readonly string[] = []) {
    this.#keys = [secret, ...previous].map((s) => {
      if (typeof s !== 'string' || s.length < 32)
        throw new ConfigurationError('The job signing secret must be at least 32 characters');
      return Buffer.from(hkdfSync('sha256', Buffer.from(s, 'utf8'), 'tenantry', 'tenantry/jobs envelope v1', 32));
    });
  }

  /** The data to store for one job. */
  seal(fields: Omit<JobEnvelope, 'v' | 'sig' | 'key' | 'iat'>, payload: unknown): SealedJob {
    const text = JSON.stringify(payload ?? null);
    if (text === undefined) throw new ConfigurationError('A job payload must be JSON-serialisable');
    for (const [name, value] of [
      ['actor', fields.actor],
      ['requestId', fields.requestId],
    ] as const)
      if (value !== null && (typeof value !== 'string' || value.length > MAX_FIELD))
        throw new ConfigurationError(`job ${name} must be a string of at most ${MAX_FIELD} characters`);
    // a fresh key per seal: two jobs never share one, even with the same fields and payload
    const envelope = {
      v: 2 as const,
      ...fields,
      key: randomBytes(16).toString('base64url'),
      iat: Math.floor(Date.now() / 1000),
    };
    return { tenantry: { ...envelope, sig: this.#sign(this.#keys[0]!, envelope, text) }, payload: text };
  }

  /** Verifies stored job data; throws JOB_ENVELOPE_INVALID (never says more than why). */
  open<T = unknown>(queue: string, data: unknown, acceptFrom: readonly string[] = []): OpenedJob<T> {
    const sealed = data as Partial<SealedJob> | null;
    const e = sealed?.tenantry;
    if (!e || typeof e !== 'object' || typeof sealed.payload !== 'string')
      throw new JobEnvelopeInvalidError(queue, 'not a Tenantry job');
    // version 1 had no job key: a copy of its row would run again, so it is not accepted
    if ((e.v as number) === 1) throw new JobEnvelopeInvalidError(queue, 'version 1 envelope (no job key)');
    if (e.v !== 2 || typeof e.sig !== 'string' || !/^[0-9a-f]{64}$/.test(e.sig))
      throw new JobEnvelopeInvalidError(queue, 'malformed envelope');
    if (e.tenant !== null && !isTenantId(e.tenant)) throw new JobEnvelopeInvalidError(queue, 'malformed envelope');
    if (typeof e.key !== 'string' || !KEY.test(e.key) || !Number.isSafeInteger(e.iat) || e.iat! < 0)
      throw new JobEnvelopeInvalidError(queue, 'malformed envelope');
    const fields = {
      v: 2 as const,
      queue: e.queue,
      tenant: e.tenant,
      actor: e.actor,
      requestId: e.requestId,
      key: e.key,
      iat: e.iat,
    };
    const given = Buffer.from(e.sig, 'hex');
    const ok = this.#keys.some((key) =>
      timingSafeEqual(Buffer.from(this.#sign(key, fields, sealed.payload!), 'hex'), given),
    );
    if (!ok) throw new JobEnvelopeInvalidError(queue, 'signature does not match');
    if (e.queue !== queue && !acceptFrom.includes(e.queue!))
      throw new JobEnvelopeInvalidError(queue, 'signed for another queue');
    let payload: T;
    try {
      payload = JSON.parse(sealed.payload) as T;
    } catch {
      throw new JobEnvelopeInvalidError(queue, 'payload is not JSON');
    }
    return {
      queue: e.queue!,
      tenant: e.tenant ?? null,
      actor: e.actor ?? null,
      requestId: e.requestId ?? null,
      key: e.key,
      iat: e.iat!,
      payload,
    };
  }

  #sign(key: Buffer, e: Omit<JobEnvelope, 'sig'>, payload: string): string {
    // a JSON array: unambiguous field boundaries whatever the values hold
    const message = JSON.stringify([e.v, e.queue, e.tenant, e.actor, e.requestId, e.key, e.iat, payload]);
    return createHmac('sha256', key).update(message).digest('hex');
  }
}
