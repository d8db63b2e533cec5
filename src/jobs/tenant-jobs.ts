import { runAs, runWithoutTenant, tryCurrentTenant } from '../context/tenant-context.js';
import { ConfigurationError, TenantryError, type TenantryErrorCode } from '../errors/tenantry-error.js';
import { currentLogContext, runWithLogContext } from '../observe/log-context.js';
import { telemetrySpan } from '../telemetry/telemetry-hooks.js';
import { FairOrder } from './fair-order.js';
import { fanOutTick, type FanOutResult, type OwnerPool } from './fan-out.js';
import { JobEnvelopeSigner, type OpenedJob } from './job-envelope.js';
import { JobTenantMissingError, UnknownJobError } from './job-errors.js';
import { JobKeyLedger } from './job-keys.js';
import type { ClaimedJob, JobQueueAdapter, JobRunner, JobState } from './job-queue-adapter.js';
import { TenantStatusGate, type JobTenantStatus } from './tenant-status-gate.js';
import { WorkerLoop } from './worker-loop.js';

/** What a handler learns about the job it runs (the tenant is the current one: `currentTenant()`). */
export interface JobContext {
  id: string;
  queue: string;
  /** The tenant, or null for a global job. */
  tenantId: string | null;
  actor: string | null;
  requestId: string | null;
  /** Runs before this one: 0 on the first run. */
  retryCount: number;
}

/** A job's handler: runs inside `runAs(job's tenant)`; a throw fails the run (retried by the queue). */
export type JobHandler<T> = (payload: T, job: JobContext) => unknown;

/** Options of {@link TenantJobs.define}. */
export interface DefineJobOptions<T> {
  /** A job of no tenant: enqueued outside `runAs` too, and run with no tenant in context. */
  global?: boolean;
  /** Retries after the first run (default 2). */
  retryLimit?: number;
  /** Seconds before a retry (default 5), doubled each time with `retryBackoff` (default true). */
  retryDelaySeconds?: number;
  retryBackoff?: boolean;
  /** How long one run may take, in seconds (default 900). */
  expireInSeconds?: number;
  /**
   * Runs once for a job whose retries are exhausted (the dead-letter queue `<name>__dead`),
   * through the same checks: never for an inactive tenant.
   */
  onDeadLetter?: JobHandler<T>;
  /**
   * A further check before each run of a tenant job, after the tenant's status (first runs,
   * retries, dead-letter runs and re-drives alike): a code refuses the run — the handler is not
   * called, the job ends `refused`, `onRefused` hears the code (tenantry/plugins answers
   * PLUGIN_DISABLED for a tenant without the job's plugin). A throw fails the run (retried).
   */
  gate?: (tenantId: string) => Promise<TenantryErrorCode | undefined> | TenantryErrorCode | undefined;
}

/** Options of {@link TenantJobs.enqueue}. */
export interface EnqueueOptions {
  /** Who causes the job (default: the log context's actor, e.g. `user:<id>`). Never a secret. */
  actor?: string;
  /** Default: the log context's request id. */
  requestId?: string;
  /** Delay before the first run, in seconds. */
  startAfterSeconds?: number;
}

/** Why the worker did not run a job's handler. */
export interface JobRefusal {
  queue: string;
  jobId: string;
  /**
   * TENANT_NOT_FOUND (missing), TENANT_SUSPENDED, TENANT_DELETED, JOB_ENVELOPE_INVALID,
   * JOB_REPLAYED (a copy of a job under a new id), or a gate's code.
   */
  code: TenantryErrorCode;
  /** The tenant the envelope names, when it verified. */
  tenantId?: string;
}

/** Options of {@link TenantJobs}. */
export interface TenantJobsOptions {
  adapter: JobQueueAdapter;
  /**
   * A pool connected as the OWNER role to the home database (the catalog's): tenant status,
   * the fairness and fan-out ledgers. The same database as the queue (pg-boss's schema).
   */
  catalog: OwnerPool;
  /** Secret the job envelopes are signed with (≥ 32 characters): pass the tenant context secret. */
  signingSecret: string;
  /** Earlier signing secrets, still accepted (a rotation's overlap). */
  previousSigningSecrets?: string[];
  /**
   * How long a job's key is remembered, in days (1 … 3650, default 30): a job sealed longer ago
   * is refused (JOB_ENVELOPE_INVALID), its first run, retries and re-drives alike, and
   * `startAfterSeconds` may not reach past it. See docs/jobs.md, "Copies are refused".
   */
  jobKeyRetentionDays?: number;
  /** How stale the worker's view of a tenant's status may be, in ms (0 … 1000, default 500). */
  maxStalenessMs?: number;
  /** Order jobs fairly across tenants (default true); false is the queue's plain FIFO. */
  fair?: boolean;
  /** How long an idle worker waits before looking for jobs again, in ms (default 500). */
  pollIntervalMs?: number;
  /** Called for each job whose handler was not run (inactive tenant, invalid envelope). */
  onRefused?: (refusal: JobRefusal) => void;
  /** Called when a worker cannot reach the queue or the catalog (it retries after the poll interval). */
  onError?: (error: unknown) => void;
}

/** Options of {@link TenantJobs.work}. */
export interface WorkOptions {
  /** Job names to work on (default: every defined job, with its dead-letter and cron queues). */
  queues?: string[];
  /** Jobs run at once per queue (default 2). */
  concurrency?: number;
}

interface Definition {
  name: string;
  global: boolean;
  handler: JobHandler<unknown>;
  settings: { retryLimit: number; retryDelaySeconds: number; retryBackoff: boolean; expireInSeconds: number };
  onDeadLetter?: JobHandler<unknown>;
  gate?: (tenantId: string) => Promise<TenantryErrorCode | undefined> | TenantryErrorCode | undefined;
}

interface Route {
  definition: Definition;
  handler: JobHandler<unknown>;
  /** Queues whose signed jobs this queue also runs (a dead-letter queue: its source). */
  acceptFrom: string[];
  /** For a cron queue: fan out to the definition's tenants instead of running a handler. */
  fanOut?: boolean;
}

const NAME = /^[a-z0-9][a-z0-9_.-]{0,79}$/i;
const DEAD = '__dead';
const TICK = '__tick';

const REFUSAL: Record<Exclude<JobTenantStatus, 'active' | 'provisioning'>, TenantryErrorCode> = {
  missing: 'TENANT_NOT_FOUND',
  suspended: 'TENANT_SUSPENDED',
  deleted: 'TENANT_DELETED',
};

/**
 * Background jobs that always know their tenant. `enqueue` inside `runAs` seals the tenant (with
 * the actor and request id) into a signed envelope; the worker verifies it, checks the tenant's
 * status in the catalog, and runs the handler inside `runAs(tenant)` — or not at all, ending the
 * job as refused, for a missing, suspended or deleted tenant: on the first run, a retry, the
 * dead-letter run, a cron fan-out and an operator's re-drive alike.
 *
 * @example
 * const jobs = new TenantJobs({ adapter: new PgBossAdapter(boss), catalog: ownerPool, signingSecret: contextSecret });
 * jobs.define<{ recordingId: string }>('transcribe', async ({ recordingId }) => { … });
 * await jobs.start();
 * await runAs(tenantId, () => jobs.enqueue('transcribe', { recordingId }));
 * await jobs.work();
 */
export class TenantJobs {
  readonly #adapter: JobQueueAdapter;
  readonly #catalog: OwnerPool;
  readonly #signer: JobEnvelopeSigner;
  readonly #gate: TenantStatusGate;
  readonly #keys: JobKeyLedger;
  readonly #keyRetentionDays: number;
  readonly #fair: FairOrder | undefined;
  readonly #definitions = new Map<string, Definition>();
  readonly #routes = new Map<string, Route>();
  readonly #loops: { queue: string; loop: WorkerLoop }[] = [];
  readonly #consumed = new Map<string, JobRunner>();
  readonly #options: TenantJobsOptions;
  #started = false;

  constructor(options: TenantJobsOptions) {
    this.#options = options;
    this.#adapter = options.adapter;
    this.#catalog = options.catalog;
    this.#signer = new JobEnvelopeSigner(options.signingSecret, options.previousSigningSecrets);
    this.#gate = new TenantStatusGate(options.catalog, { maxStalenessMs: options.maxStalenessMs });
    this.#fair = options.fair === false ? undefined : new FairOrder(options.catalog);
    const retention = options.jobKeyRetentionDays ?? 30;
    if (!Number.isInteger(retention) || retention < 1 || retention > 3650)
      throw new ConfigurationError('jobKeyRetentionDays must be a whole number of days from 1 to 3650');
    this.#keyRetentionDays = retention;
    this.#keys = new JobKeyLedger(options.catalog, retention);
    const poll = options.pollIntervalMs ?? 500;
    if (!Number.isInteger(poll) || poll < 10 || poll > 60_000)
      throw new ConfigurationError('pollIntervalMs must be a whole number of milliseconds from 10 to 60000');
  }

  /** The defined jobs' names, in the order they were defined (what `work()` runs by default). */
  get names(): string[] {
    return [...this.#definitions.keys()];
  }

  /** The queue adapter's name (`pg-boss`). */
  get kind(): string {
    return this.#adapter.kind;
  }

  /** Defines a job: its name (its queue), handler and retry policy. Call before `start()`. */
  define<T>(name: string, handler: JobHandler<T>, options: DefineJobOptions<T> = {}): void {
    if (typeof name !== 'string' || !NAME.test(name) || name.includes('__'))
      throw new ConfigurationError(
        'A job name is 1-80 of [A-Za-z0-9_.-], starting with a letter or digit, without "__"',
      );
    if (this.#definitions.has(name)) throw new ConfigurationError(`Job ${name} is defined twice`);
    const retryLimit = options.retryLimit ?? 2;
    const retryDelaySeconds = options.retryDelaySeconds ?? 5;
    const expireInSeconds = options.expireInSeconds ?? 900;
    if (!Number.isInteger(retryLimit) || retryLimit < 0 || retryLimit > 100)
      throw new ConfigurationError('retryLimit must be a whole number from 0 to 100');
    if (!Number.isInteger(retryDelaySeconds) || retryDelaySeconds < 0 || retryDelaySeconds > 86_400)
      throw new ConfigurationError('retryDelaySeconds must be a whole number from 0 to 86400');
    if (!Number.isInteger(expireInSeconds) || expireInSeconds < 1 || expireInSeconds > 86_400)
      throw new ConfigurationError('expireInSeconds must be a whole number from 1 to 86400');
    const definition: Definition = {
      name,
      global: options.global === true,
      handler: handler as JobHandler<unknown>,
      settings: { retryLimit, retryDelaySeconds, retryBackoff: options.retryBackoff ?? true, expireInSeconds },
      onDeadLetter: options.onDeadLetter as JobHandler<unknown> | undefined,
      ...(options.gate ? { gate: options.gate } : {}),
    };
    this.#definitions.set(name, definition);
    this.#routes.set(name, { definition, handler: definition.handler, acceptFrom: [] });
    if (definition.onDeadLetter)
      this.#routes.set(name + DEAD, { definition, handler: definition.onDeadLetter, acceptFrom: [name] });
  }

  /** Starts the queue (pg-boss creates or migrates its schema here) and creates every defined queue. */
  async start(): Promise<void> {
    await this.#adapter.start();
    this.#started = true;
    for (const d of this.#definitions.values()) {
      const dead = d.onDeadLetter ? d.name + DEAD : undefined;
      if (dead) await this.#adapter.ensureQueue({ name: dead, ...d.settings, retryLimit: 0 });
      await this.#adapter.ensureQueue({ name: d.name, ...d.settings, ...(dead ? { deadLetter: dead } : {}) });
    }
  }

  /**
   * Enqueues a job for the current tenant (inside `runAs`); a global job needs none. Throws
   * JOB_TENANT_MISSING outside `runAs` for a tenant job, JOB_UNKNOWN for a name never defined.
   */
  async enqueue<T>(name: string, payload: T, options: EnqueueOptions = {}): Promise<string> {
    const [id] = await this.enqueueMany(name, [payload], options);
    return id!;
  }

  /** Enqueues several jobs of one name for the current tenant, in one statement. */
  async enqueueMany<T>(name: string, payloads: readonly T[], options: EnqueueOptions = {}): Promise<string[]> {
    const definition = this.#definitions.get(name);
    if (!definition) throw new UnknownJobError(name);
    const tenant = definition.global ? null : (tryCurrentTenant() ?? null);
    if (!definition.global && tenant === null) throw new JobTenantMissingError(name);
    if (payloads.length === 0) return [];
    const delay = options.startAfterSeconds ?? 0;
    // a job must run while its key is remembered (a day of margin for the queue's own delays)
    if (!Number.isInteger(delay) || delay < 0 || delay > (this.#keyRetentionDays - 1) * 86_400)
      throw new ConfigurationError(
        `startAfterSeconds must be a whole number of seconds within jobKeyRetentionDays - 1 (${this.#keyRetentionDays - 1} days)`,
      );
    const log = currentLogContext();
    const fields = {
      queue: name,
      tenant,
      actor: options.actor ?? log?.actor ?? null,
      requestId: options.requestId ?? log?.requestId ?? null,
    };
    const priorities = this.#fair
      ? await this.#fair.priorities(name, tenant ?? '', payloads.length)
      : payloads.map(() => 0);
    const jobs = payloads.map((payload, i) => ({
      data: this.#signer.seal(fields, payload),
      priority: priorities[i]!,
      startAfterSeconds: options.startAfterSeconds,
    }));
    const ids = await this.#adapter.send(name, jobs);
    // workers of this process start at once instead of at their next poll
    for (const w of this.#loops) if (w.queue === name) w.loop.wake();
    return ids;
  }

  /**
   * Runs job `name` on every tick of `cron` (UTC unless `timezone`): a tenant job once per
   * ACTIVE tenant (fan-out, resumable: a crashed fan-out run again sends only what it had not),
   * a global job once. `payload` is what each run receives.
   */
  async schedule<T>(name: string, cron: string, payload: T, options: { timezone?: string } = {}): Promise<void> {
    const definition = this.#definitions.get(name);
    if (!definition) throw new UnknownJobError(name);
    const tick = name + TICK;
    if (!this.#routes.has(tick))
      this.#routes.set(tick, { definition, handler: definition.handler, acceptFrom: [], fanOut: !definition.global });
    await this.#adapter.ensureQueue({ name: tick, ...definition.settings });
    const data = this.#signer.seal({ queue: tick, tenant: null, actor: 'cron', requestId: null }, payload);
    await this.#adapter.schedule(tick, cron, data, options.timezone ?? 'UTC');
  }

  /** Stops a schedule. */
  async unschedule(name: string): Promise<void> {
    await this.#adapter.unschedule(name + TICK);
  }

  /**
   * One tick of a scheduled tenant job, by hand (the cron queue's worker calls it): sends `name`
   * with `payload` to every active tenant not yet sent for `tick`.
   */
  async fanOut<T>(name: string, tick: string, payload: T): Promise<FanOutResult> {
    const definition = this.#definitions.get(name);
    if (!definition) throw new UnknownJobError(name);
    if (definition.global) throw new ConfigurationError(`Job ${name} is global: it has no tenants to fan out to`);
    return fanOutTick({
      catalog: this.#catalog,
      adapter: this.#adapter,
      queue: name,
      tick,
      seal: (tenant) => this.#signer.seal({ queue: name, tenant, actor: 'cron', requestId: `tick:${tick}` }, payload),
    });
  }

  /** Runs a failed or refused job again (operator's re-drive), through every check; false if not re-drivable. */
  async redrive(name: string, id: string): Promise<boolean> {
    if (!this.#routes.has(name)) throw new UnknownJobError(name);
    return this.#adapter.redrive(name, id);
  }

  /** A job's state (`refused`: its handler was not run, see onRefused). */
  state(name: string, id: string): Promise<JobState | undefined> {
    return this.#adapter.state(name, id);
  }

  /** Starts workers in this process. */
  async work(options: WorkOptions = {}): Promise<void> {
    if (!this.#started) throw new ConfigurationError('Call start() before work()');
    const concurrency = options.concurrency ?? 2;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 100)
      throw new ConfigurationError('concurrency must be a whole number from 1 to 100');
    const names = options.queues ?? [...this.#definitions.keys()];
    for (const name of names) if (!this.#definitions.has(name)) throw new UnknownJobError(name);
    const queues = [...this.#routes.keys()].filter((q) => names.some((n) => q === n || q.startsWith(n + '__')));
    if (this.#adapter.consume) {
      // a push-style queue (graphile-worker): its runner hands each job to the same checks
      for (const queue of queues) this.#consumed.set(queue, (job) => this.#run(this.#routes.get(queue)!, job));
      await this.#adapter.consume(this.#consumed, concurrency);
      return;
    }
    for (const queue of queues)
      for (let i = 0; i < concurrency; i++)
        this.#loops.push({
          queue,
          loop: new WorkerLoop({
            claim: () => this.#adapter.claim(queue),
            run: (job) => this.#run(this.#routes.get(queue)!, job),
            pollIntervalMs: this.#options.pollIntervalMs ?? 500,
            onError: (error) => this.#options.onError?.(error),
          }),
        });
    for (const w of this.#loops) w.loop.start();
  }

  /** Stops the workers (each finishes its current job, bounded by `timeoutMs`), then the queue. */
  async stop(timeoutMs = 10_000): Promise<void> {
    await Promise.all(this.#loops.splice(0).map((w) => w.loop.stop(timeoutMs)));
    this.#consumed.clear();
    await this.#fair?.flush().catch((error: unknown) => this.#options.onError?.(error));
    if (this.#started) await this.#adapter.stop();
    this.#started = false;
  }

  async #run(route: Route, job: ClaimedJob): Promise<void> {
    let opened: OpenedJob;
    try {
      opened = this.#signer.open(job.queue, job.data, route.acceptFrom);
      const wantsTenant = !route.definition.global && !route.fanOut;
      if (wantsTenant !== (opened.tenant !== null))
        throw new TenantryError('JOB_ENVELOPE_INVALID', 'tenant does not fit the job definition');
    } catch (error) {
      return this.#refuse(job, '', 'JOB_ENVELOPE_INVALID', undefined, error);
    }
    const tenantKey = opened.tenant ?? '';
    // single use: the key is bound to the id the job first ran under (a cron tick's envelope is
    // sent again on every tick by design: its fan-out is keyed by the tick instead)
    if (!route.fanOut) {
      let verdict;
      try {
        verdict = await this.#keys.claim({
          key: opened.key,
          iat: opened.iat,
          queue: job.queue,
          jobId: job.id,
          ...(opened.queue !== job.queue ? { source: opened.queue } : {}),
        });
      } catch (error) {
        // the ledger is out of reach: the run fails (and is retried), the handler is not called
        return this.#fail(route, job, tenantKey, error);
      }
      this.#keys.prune().catch((error: unknown) => this.#options.onError?.(error));
      // a copy never counted in the tenant's backlog: it does not count as one of its ends either
      if (verdict === 'replayed') return this.#refuse(job, undefined, 'JOB_REPLAYED', opened.tenant ?? undefined);
      if (verdict === 'expired')
        return this.#refuse(job, tenantKey, 'JOB_ENVELOPE_INVALID', opened.tenant ?? undefined);
    }
    if (opened.tenant !== null) {
      let status: JobTenantStatus;
      try {
        status = await this.#gate.status(opened.tenant);
      } catch (error) {
        // the catalog is out of reach: the run fails (and is retried), the handler is not called
        return this.#fail(route, job, tenantKey, error, opened.key);
      }
      // a job enqueued while its tenant is onboarded (by a seed hook): not run, retried later
      if (status === 'provisioning')
        return this.#fail(
          route,
          job,
          tenantKey,
          new TenantryError('TENANT_PROVISIONING', 'The tenant is still being onboarded', { status: 409 }),
          opened.key,
        );
      if (status !== 'active') return this.#refuse(job, tenantKey, REFUSAL[status], opened.tenant);
      if (route.definition.gate && !route.fanOut) {
        let code: TenantryErrorCode | undefined;
        try {
          code = await route.definition.gate(opened.tenant);
        } catch (error) {
          return this.#fail(route, job, tenantKey, error, opened.key);
        }
        if (code !== undefined) return this.#refuse(job, tenantKey, code, opened.tenant);
      }
    }
    const context: JobContext = {
      id: job.id,
      queue: job.queue,
      tenantId: opened.tenant,
      actor: opened.actor,
      requestId: opened.requestId,
      retryCount: job.retryCount,
    };
    try {
      const work = route.fanOut
        ? () => this.fanOut(route.definition.name, job.id, opened.payload)
        : () => route.handler(opened.payload, context);
      const log = { requestId: opened.requestId ?? undefined, actor: opened.actor ?? undefined };
      const run = () =>
        runWithLogContext(log, () =>
          opened.tenant === null || route.fanOut ? runWithoutTenant(work) : runAs(opened.tenant, work),
        );
      // a span per run (tenantry/otel): the job's statements are its children
      await telemetrySpan(
        'tenantry.job',
        {
          'tenant.id': opened.tenant ?? undefined,
          'messaging.destination.name': route.definition.name,
          'tenantry.job.id': job.id,
          'tenantry.job.retry_count': job.retryCount,
        },
        async () => {
          await run();
        },
      );
    } catch (error) {
      return this.#fail(route, job, tenantKey, error, opened.key);
    }
    await this.#adapter.complete(job);
    this.#fair?.ended(job.queue, tenantKey);
  }

  async #refuse(
    job: ClaimedJob,
    tenantKey: string | undefined,
    code: TenantryErrorCode,
    tenantId?: string,
    cause?: unknown,
  ) {
    // told before the state changes: whoever sees the job refused can already know why
    this.#options.onRefused?.({ queue: job.queue, jobId: job.id, code, ...(tenantId ? { tenantId } : {}) });
    if (cause !== undefined && !this.#options.onRefused) this.#options.onError?.(cause);
    await this.#adapter.refuse(job);
    if (tenantKey !== undefined) this.#fair?.ended(job.queue, tenantKey);
  }

  async #fail(route: Route, job: ClaimedJob, tenantKey: string, error: unknown, key?: string): Promise<void> {
    // failing for good with a dead-letter queue: recorded first, so the copy the queue makes may run
    if (
      key !== undefined &&
      job.retryCount >= job.retryLimit &&
      route.definition.onDeadLetter &&
      !route.acceptFrom.length
    )
      await this.#keys.exhausted(key, job.queue).catch((e: unknown) => this.#options.onError?.(e));
    const code = error instanceof TenantryError ? error.code : undefined;
    // the message may carry a handler's data: only its class and code go to the queue
    const message = error instanceof Error ? `${error.name}${code ? ` ${code}` : ''}` : 'non-Error thrown';
    await this.#adapter.fail(job, { code, message });
    if (job.retryCount >= job.retryLimit) this.#fair?.ended(job.queue, tenantKey);
    this.#options.onError?.(error);
  }
}
