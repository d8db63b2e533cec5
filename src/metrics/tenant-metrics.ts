import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { installTelemetry, type StatementEnd, type StatementStart } from '../telemetry/telemetry-hooks.js';
import { OTHER_TENANTS, TopTenants } from './top-tenants.js';

/** Options of {@link TenantMetrics}. */
export interface TenantMetricsOptions {
  /** Tenants with a label value of their own (default 20); every other tenant is `other`. */
  topK?: number;
  /** How often the top K is chosen again, in ms (default 60,000). */
  windowMs?: number;
  /** Tenants the cost summary tracks (default `max(1000, 50 × topK)`). */
  capacity?: number;
  /** Where the metrics are registered (default: a registry of their own, see `registry`). */
  registry?: Registry;
  /** Prefix of every metric name (default `tenantry_`). */
  prefix?: string;
  /** Latency histogram buckets in seconds (default 5 ms … 10 s). */
  buckets?: number[];
  /** The clock of the top-K windows (tests). */
  now?: () => number;
}

const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Per-tenant Prometheus metrics with bounded cardinality (prom-client): requests, server errors,
 * request latency, database time, statements, rows and rate-limited requests, labelled `tenant`
 * with the tenant's id for the top K tenants by cost and `other` for the rest (see
 * {@link TopTenants}), so each metric has at most K + 1 tenant series whatever the number of
 * tenants. The label is the tenant's id only: never a slug or a name (an id identifies no person,
 * and a slug a tenant chose may).
 *
 * `install()` has Tenantry report to it (pools, Fastify and Express adapters, rate limits); the
 * application serves `registry.metrics()` on a protected endpoint.
 *
 * @example
 * const metrics = new TenantMetrics({ topK: 50 });
 * metrics.install();
 * app.get('/metrics', async (req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
 */
export class TenantMetrics {
  /** The registry holding these metrics. */
  readonly registry: Registry;
  readonly #top: TopTenants;
  readonly #requests: Counter<'tenant'>;
  readonly #errors: Counter<'tenant'>;
  readonly #latency: Histogram<'tenant'>;
  readonly #dbSeconds: Counter<'tenant'>;
  readonly #statements: Counter<'tenant'>;
  readonly #rows: Counter<'tenant'>;
  readonly #rateLimited: Counter<'tenant'>;
  readonly #withoutTenant: Counter<'status_class'>;
  readonly #labeled: Gauge;
  /**
   * Statement counts not yet added to the counters, by label value (at most K + 1 entries): the
   * pool's hot path adds to plain numbers, the counters take them at each scrape (prom-client's
   * `inc` hashes its labels, about 1 µs a call, three calls a statement).
   */
  readonly #pending = new Map<string, { seconds: number; statements: number; rows: number }>();
  #uninstall: (() => void) | undefined;

  constructor(options: TenantMetricsOptions = {}) {
    const { topK = 20, windowMs = 60_000, prefix = 'tenantry_', buckets = DEFAULT_BUCKETS } = options;
    if (!Number.isInteger(topK) || topK < 0 || topK > 10_000)
      throw new ConfigurationError(`TenantMetrics: topK must be an integer from 0 to 10000 (got ${String(topK)})`);
    if (!(windowMs >= 1000)) throw new ConfigurationError('TenantMetrics: windowMs must be at least 1000');
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix))
      throw new ConfigurationError('TenantMetrics: prefix must be a valid Prometheus metric name prefix');
    this.registry = options.registry ?? new Registry();
    const registers = [this.registry];
    const labelNames = ['tenant'] as const;
    this.#requests = new Counter({
      name: `${prefix}tenant_requests_total`,
      help: 'Requests of tenant routes, by tenant (top K tenants by cost, the rest "other")',
      labelNames,
      registers,
    });
    this.#errors = new Counter({
      name: `${prefix}tenant_request_errors_total`,
      help: 'Requests of tenant routes answered with a 5xx status, by tenant',
      labelNames,
      registers,
    });
    this.#latency = new Histogram({
      name: `${prefix}tenant_request_duration_seconds`,
      help: 'Latency of tenant routes, by tenant',
      labelNames,
      buckets,
      registers,
    });
    this.#dbSeconds = new Counter({
      name: `${prefix}tenant_db_seconds_total`,
      help: 'Time spent in the database by statements of the tenant, measured by the pool',
      labelNames,
      registers,
      collect: () => this.#flush(),
    });
    this.#statements = new Counter({
      name: `${prefix}tenant_db_statements_total`,
      help: 'Statements run as the tenant',
      labelNames,
      registers,
      collect: () => this.#flush(),
    });
    this.#rows = new Counter({
      name: `${prefix}tenant_db_rows_total`,
      help: 'Rows returned or changed by statements of the tenant',
      labelNames,
      registers,
      collect: () => this.#flush(),
    });
    this.#rateLimited = new Counter({
      name: `${prefix}tenant_rate_limited_total`,
      help: 'Requests of the tenant refused by a rate limit',
      labelNames,
      registers,
    });
    this.#withoutTenant = new Counter({
      name: `${prefix}requests_without_tenant_total`,
      help: 'Requests of tenant routes refused before a tenant was resolved (401, 404…), by status class',
      labelNames: ['status_class'],
      registers,
    });
    this.#labeled = new Gauge({
      name: `${prefix}metrics_labeled_tenants`,
      help: 'Tenants that have a label value of their own in the per-tenant metrics (at most topK)',
      registers,
      collect: () => this.#labeled.set(this.#top.labeled().size),
    });
    const perTenant = [
      this.#requests,
      this.#errors,
      this.#latency,
      this.#dbSeconds,
      this.#statements,
      this.#rows,
      this.#rateLimited,
    ];
    this.#top = new TopTenants({
      k: topK,
      windowMs,
      capacity: options.capacity,
      now: options.now,
      // the series of a tenant that left the top K end: its next events count under "other", and
      // so do its statements not yet added to its counters (they were in no series: dropping
      // them lost them, try-out of issue 12)
      onRetire: (tenants) => {
        for (const tenant of tenants) {
          const pending = this.#pending.get(tenant);
          if (pending) {
            this.#pending.delete(tenant);
            const other = this.#pending.get(OTHER_TENANTS);
            if (other) {
              other.seconds += pending.seconds;
              other.statements += pending.statements;
              other.rows += pending.rows;
            } else this.#pending.set(OTHER_TENANTS, pending);
          }
          for (const metric of perTenant) metric.remove({ tenant });
        }
      },
    });
  }

  /** Has Tenantry's pools, adapters and rate limits report here (until `uninstall`). Idempotent. */
  install(): this {
    this.#uninstall ??= installTelemetry({
      statement: (start) => this.#statement(start),
      requestEnded: (tenantId, status, seconds) => this.recordRequest(tenantId, status, seconds),
      rateLimited: (tenantId) => this.recordRateLimited(tenantId),
    });
    return this;
  }

  /** Stops reporting (the metrics keep their values). */
  uninstall(): void {
    this.#uninstall?.();
    this.#uninstall = undefined;
  }

  /** Counts one request; `tenantId` undefined for a request refused before its tenant was known. */
  recordRequest(tenantId: string | undefined, status: number, seconds: number): void {
    if (tenantId === undefined) {
      this.#withoutTenant.inc({ status_class: statusClass(status) });
      return;
    }
    const tenant = this.#top.label(tenantId, seconds);
    this.#requests.inc({ tenant });
    if (status >= 500) this.#errors.inc({ tenant });
    this.#latency.observe({ tenant }, seconds);
  }

  /** Counts one statement of a tenant: its database time and rows. */
  recordStatement(tenantId: string, seconds: number, rows: number | undefined): void {
    const tenant = this.#top.label(tenantId, seconds);
    let pending = this.#pending.get(tenant);
    if (pending === undefined) {
      pending = { seconds: 0, statements: 0, rows: 0 };
      this.#pending.set(tenant, pending);
    }
    pending.seconds += seconds;
    pending.statements++;
    if (rows !== undefined && rows > 0) pending.rows += rows;
  }

  /** Adds the pending statement counts to the counters (called by prom-client as it collects). */
  #flush(): void {
    for (const [tenant, pending] of this.#pending) {
      this.#dbSeconds.inc({ tenant }, pending.seconds);
      this.#statements.inc({ tenant }, pending.statements);
      if (pending.rows > 0) this.#rows.inc({ tenant }, pending.rows);
    }
    this.#pending.clear();
  }

  /** Counts one request of `tenantId` refused by a rate limit (also reachable as `recordRateLimited` of `tenantry`). */
  recordRateLimited(tenantId: string): void {
    this.#rateLimited.inc({ tenant: this.#top.label(tenantId, 0) });
  }

  /** Chooses the top K again now, without waiting for the window's end (tests, or an operator's tool). */
  rotate(): void {
    this.#top.rotate();
  }

  /** The tenants that have a label value of their own now (at most topK). */
  labeledTenants(): ReadonlySet<string> {
    return this.#top.labeled();
  }

  #statement(start: StatementStart): StatementEnd | undefined {
    const tenantId = start.tenantId;
    // a statement of no tenant (the control plane, migrations) is no tenant's cost
    if (tenantId === undefined) return undefined;
    const started = performance.now();
    return (_error, rows) => this.recordStatement(tenantId, (performance.now() - started) / 1000, rows);
  }
}

export { OTHER_TENANTS };

function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}
