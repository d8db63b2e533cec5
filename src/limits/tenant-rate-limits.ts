import type pg from 'pg';
import { isTenantId } from '../context/tenant-id.js';
import {
  ConfigurationError,
  InvalidArgumentError,
  InvalidTenantIdError,
  TenantNotFoundError,
} from '../errors/tenantry-error.js';
import { LimitCounter, redisReady, type RateLimitStore } from './limit-counter.js';
import {
  limitOverridesSchema,
  parseRateLimitConfig,
  type ParsedRateLimitConfig,
  type RateLimitConfig,
  type StoreDownPolicy,
} from './rate-limit-config.js';
import { LimitNotInPlanError, RateLimitedError } from './rate-limited-error.js';
import { TenantPlanCache, type TenantPlanCacheOptions } from './tenant-plan-cache.js';

/** How long start() waits for a Redis store that is still connecting. */
const STORE_READY_WAIT_MS = 5000;

/** Options of {@link TenantRateLimits}. */
export interface TenantRateLimitsOptions extends RateLimitConfig {
  /** Where the counters live: `{ postgres: ownerPool }` (default choice, nothing to install) or `{ redis }`. */
  store: RateLimitStore;
  /** An OWNER-role pool of the home database: tenants' plans and overrides are read from `tenantry.tenants`. */
  catalog: Pick<pg.Pool, 'query'>;
  /** Hear plan changes at their commit (recommended). See {@link TenantPlanCacheOptions.listen}. */
  listen?: TenantPlanCacheOptions['listen'];
  /** The oldest cached plan used while not listening. Default 1000 ms. */
  maxStaleMs?: number;
  /**
   * Longest wait for the store (pool queue included); past it the store counts as down (see
   * `onStoreDown`). Default 1000 ms: a shorter one fails open under a burst that queues on the pool.
   */
  storeTimeoutMs?: number;
  /** Called for each refused request (the `rate-limited requests` metric): never throws into the request. */
  onLimited?: (event: RateLimitedEvent) => void;
  /** The store failed or timed out, and the limit's `onStoreDown` decided. */
  onStoreError?: (event: { limit: string; policy: StoreDownPolicy; error: unknown }) => void;
  /**
   * A tenant's plan or overrides in the catalog are not valid for this configuration (its default
   * plan's points apply). Heard once per tenant and problem by this instance, not per request.
   */
  onBadTenantSettings?: (event: { tenantId: string; problem: string }) => void;
  /**
   * Tenants in the catalog whose plan this configuration does not know, found by `start()`:
   * `'default'` (the default) serves them with `defaultPlan`'s points and reports them to
   * `onUnknownPlans`; `'refuse'` makes `start()` throw CONFIGURATION_ERROR instead.
   */
  unknownPlans?: 'default' | 'refuse';
  /** What `start()` found with `unknownPlans: 'default'`: each unknown plan and how many tenants have it. */
  onUnknownPlans?: (event: { plans: Array<{ plan: unknown; tenants: number }>; defaultPlan: string }) => void;
}

/** What {@link TenantRateLimitsOptions.onLimited} hears. */
export interface RateLimitedEvent {
  tenantId: string;
  limit: string;
  /** True when refused because the store is down and the limit fails closed. */
  storeDown: boolean;
  /**
   * True when the limit has 0 points for the tenant (a block: 403 LIMIT_NOT_IN_PLAN), not a
   * throttle: count it apart from rate limiting (an alert on throttling should not fire for it).
   */
  blocked?: boolean;
}

/** An admitted request: what the `RateLimit-*` headers say. */
export interface RateLimitDecision {
  limit: string;
  /** The tenant's points per window. */
  points: number;
  remaining: number;
  /** Seconds until the window resets (0 when unknown: the store was down and the limit failed open). */
  resetSeconds: number;
  /** True when admitted only because the store is down and the limit fails open (nothing was counted). */
  storeDown: boolean;
}

/** The points a tenant gets for each limit now. */
export interface EffectiveLimits {
  plan: string;
  points: Record<string, number>;
}

/**
 * Per-tenant rate limits by plan (`settings.plan`), overridable per tenant (`settings.limits`),
 * for the API and for expensive operations (exports, moves, onboarding). Counters live in
 * PostgreSQL (`tenantry_private.rate_limits`, migration limits/001) or Redis, through
 * rate-limiter-flexible, so every instance shares them: the count is one atomic upsert, exact
 * across instances. A plan change is seen at its commit by every listening instance (within
 * `maxStaleMs` otherwise).
 *
 * @example
 * const limits = new TenantRateLimits({
 *   store: { postgres: ownerPool },
 *   catalog: ownerPool,
 *   listen: { connectionString: ownerUrl },
 *   limits: { api: { durationSeconds: 60 }, export: { durationSeconds: 3600, onStoreDown: 'closed' } },
 *   plans: { free: { api: 600, export: 2 }, pro: { api: 6000, export: 20 } },
 *   defaultPlan: 'free',
 * });
 * await limits.start(); // a plan in the catalog it does not know: defaultPlan, reported to onUnknownPlans
 * await limits.consume(tenantId, 'export'); // throws RateLimitedError (429 RATE_LIMITED)
 */
export class TenantRateLimits {
  readonly config: ParsedRateLimitConfig;
  readonly #options: TenantRateLimitsOptions;
  readonly #counters = new Map<string, LimitCounter>();
  readonly #plans: TenantPlanCache;
  /** `tenant problem` pairs reported to onBadTenantSettings: once each, not on every request. */
  readonly #reported = new Set<string>();

  constructor(options: TenantRateLimitsOptions) {
    this.config = parseRateLimitConfig({
      limits: options.limits,
      plans: options.plans,
      defaultPlan: options.defaultPlan,
    });
    this.#options = options;
    const timeoutMs = options.storeTimeoutMs ?? 1000;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      throw new ConfigurationError('Rate limits: storeTimeoutMs must be a positive number');
    if (options.unknownPlans !== undefined && options.unknownPlans !== 'default' && options.unknownPlans !== 'refuse')
      throw new ConfigurationError("Rate limits: unknownPlans must be 'default' or 'refuse'");
    if (options.maxStaleMs !== undefined && (!Number.isFinite(options.maxStaleMs) || options.maxStaleMs < 0))
      throw new ConfigurationError('Rate limits: maxStaleMs must be a number ≥ 0');
    if (!options.store || !('postgres' in options.store || 'redis' in options.store))
      throw new ConfigurationError('Rate limits: store must be { postgres: pool } or { redis: client }');
    let first = true;
    for (const [name, def] of this.config.limits) {
      this.#counters.set(
        name,
        new LimitCounter(options.store, {
          keyPrefix: `tenantry:t:${name}`,
          durationSeconds: def.durationSeconds,
          timeoutMs,
          // one sweeper of expired rows per instance is enough (they share the table)
          clearExpired: first,
        }),
      );
      first = false;
    }
    this.#plans = new TenantPlanCache(options.catalog, {
      ...(options.listen ? { listen: options.listen } : {}),
      ...(options.maxStaleMs !== undefined ? { maxStaleMs: options.maxStaleMs } : {}),
    });
  }

  /**
   * Checks the configuration against the database, then listens: the counters' table exists
   * (PostgreSQL store) and every override is valid. A plan tenants have that is not configured is
   * reported to `onUnknownPlans` (those tenants get `defaultPlan`), or refused with
   * `unknownPlans: 'refuse'`. Throws CONFIGURATION_ERROR naming what is wrong.
   */
  async start(): Promise<void> {
    const store = this.#options.store;
    // a Redis client made just before start() is still connecting: wait for it (bounded), so the
    // first requests are counted; one that does not come up is left to each limit's onStoreDown
    // (each request then reports it through onStoreError)
    if ('redis' in store) await redisReady(store.redis, STORE_READY_WAIT_MS);
    if ('postgres' in store) {
      const { rows } = await store.postgres.query<{ present: boolean }>(
        `select to_regclass('tenantry_private.rate_limits') is not null as present`,
      );
      if (!rows[0]?.present)
        throw new ConfigurationError(
          'Rate limits: tenantry_private.rate_limits is missing: run `tenantry install` (limits migration 001)',
        );
    }
    const { rows: plans } = await this.#options.catalog.query<{ plan: unknown; tenants: string }>(
      `select settings -> 'plan' as plan, count(*)::text as tenants from tenantry.tenants
        where status <> 'deleted' and settings ? 'plan' group by 1`,
    );
    const unknown = plans.filter((p) => typeof p.plan !== 'string' || !this.config.plans.has(p.plan));
    if (unknown.length > 0 && this.#options.unknownPlans !== 'refuse')
      this.#options.onUnknownPlans?.({
        plans: unknown.map((p) => ({ plan: p.plan, tenants: Number(p.tenants) })),
        defaultPlan: this.config.defaultPlan,
      });
    else if (unknown.length > 0)
      throw new ConfigurationError(
        `Rate limits: tenants have plans this configuration does not know: ${unknown
          .map((p) => `${JSON.stringify(p.plan)} (${p.tenants} tenants)`)
          .join(', ')}; configured: ${[...this.config.plans.keys()].join(', ')}`,
      );
    const { rows: overrides } = await this.#options.catalog.query<{ slug: string; overrides: unknown }>(
      `select slug, settings -> 'limits' as overrides from tenantry.tenants
        where status <> 'deleted' and settings ? 'limits'`,
    );
    for (const row of overrides) {
      const problem = this.#overrideProblem(row.overrides);
      if (problem) throw new ConfigurationError(`Rate limits: tenant ${row.slug}: settings.limits ${problem}`);
    }
    await this.#plans.start();
  }

  /**
   * Counts `cost` points of `limit` for the tenant: resolves with what is left, or throws
   * RateLimitedError (429 RATE_LIMITED with `retryAfterSeconds`). A store that is down admits
   * (`onStoreDown: 'open'`) or refuses with Retry-After 1 (`'closed'`), never a 5xx.
   */
  async consume(tenantId: string, limit: string, cost = 1): Promise<RateLimitDecision> {
    if (!isTenantId(tenantId)) throw new InvalidTenantIdError();
    const counter = this.#counters.get(limit);
    const def = this.config.limits.get(limit);
    if (!counter || !def) throw new InvalidArgumentError(`unknown limit ${limit}`, 'limit');
    if (!Number.isInteger(cost) || cost < 1 || cost > 1_000_000)
      throw new InvalidArgumentError('cost must be a whole number from 1 to 1,000,000', 'cost');
    let points: number;
    let state;
    try {
      // the plan (cached) and the count in parallel: no extra wait for the plan
      [points, state] = await Promise.all([this.#pointsOf(tenantId, limit), counter.add(tenantId.toLowerCase(), cost)]);
    } catch (error) {
      this.#options.onStoreError?.({ limit, policy: def.onStoreDown, error });
      if (def.onStoreDown === 'open') return { limit, points: 0, remaining: 0, resetSeconds: 0, storeDown: true };
      this.#limited({ tenantId, limit, storeDown: true });
      throw new RateLimitedError({ limit, scope: 'tenant', retryAfterSeconds: 1, storeDown: true });
    }
    if (points === 0) {
      // a limit of 0 points (plan or override) is a block, not a throttle: no Retry-After would help
      this.#limited({ tenantId, limit, storeDown: false, blocked: true });
      throw new LimitNotInPlanError(limit);
    }
    const resetSeconds = Math.max(1, Math.ceil(state.msBeforeReset / 1000));
    if (state.consumed > points) {
      this.#limited({ tenantId, limit, storeDown: false });
      throw new RateLimitedError({ limit, scope: 'tenant', retryAfterSeconds: resetSeconds, points });
    }
    return { limit, points, remaining: points - state.consumed, resetSeconds, storeDown: false };
  }

  /** The tenant's plan and points per limit now (its overrides applied). */
  async limitsOf(tenantId: string): Promise<EffectiveLimits> {
    if (!isTenantId(tenantId)) throw new InvalidTenantIdError();
    const { plan, overrides } = await this.#effective(tenantId);
    const points: Record<string, number> = {};
    for (const [name, value] of this.config.plans.get(plan)!) points[name] = overrides[name] ?? value;
    return { plan, points };
  }

  /**
   * Sets a tenant's plan (`settings.plan`, owner role): refused (INVALID_ARGUMENT) for a plan
   * this configuration does not know. Every instance uses it from the commit on.
   */
  async setPlan(tenantId: string, plan: string, db: Pick<pg.Pool, 'query'> = this.#options.catalog): Promise<void> {
    if (!isTenantId(tenantId)) throw new InvalidTenantIdError();
    if (!this.config.plans.has(plan)) throw new InvalidArgumentError(`unknown plan ${plan}`, 'plan');
    const { rowCount } = await db.query(
      `update tenantry.tenants set settings = jsonb_set(settings, '{plan}', to_jsonb($2::text)), updated_at = now() where id = $1`,
      [tenantId, plan],
    );
    // a tenant the catalog does not hold: said, not a silent success that changed nothing
    if (!rowCount) throw new TenantNotFoundError();
    this.#plans.clear();
  }

  /**
   * Overrides one limit's points for one tenant (`settings.limits`), or removes the override
   * (`null`). Validated like the configuration (known limit, whole points ≥ 0).
   */
  async setOverride(
    tenantId: string,
    limit: string,
    points: number | null,
    db: Pick<pg.Pool, 'query'> = this.#options.catalog,
  ): Promise<void> {
    if (!isTenantId(tenantId)) throw new InvalidTenantIdError();
    if (!this.config.limits.has(limit)) throw new InvalidArgumentError(`unknown limit ${limit}`, 'limit');
    let changed: number | null;
    if (points === null) {
      ({ rowCount: changed } = await db.query(
        `update tenantry.tenants set settings = settings #- array['limits', $2::text], updated_at = now() where id = $1`,
        [tenantId, limit],
      ));
    } else {
      if (!Number.isInteger(points) || points < 0 || points > 1_000_000_000)
        throw new InvalidArgumentError('points must be a whole number from 0 to 1,000,000,000', 'points');
      ({ rowCount: changed } = await db.query(
        `update tenantry.tenants
            set settings = jsonb_set(settings, '{limits}', coalesce(settings -> 'limits', '{}'::jsonb) || jsonb_build_object($2::text, $3::int)),
                updated_at = now()
          where id = $1`,
        [tenantId, limit, points],
      ));
    }
    if (!changed) throw new TenantNotFoundError();
    this.#plans.clear();
  }

  /** Whether plan changes are heard at their commit now (the listening connection is up). */
  get listening(): boolean {
    return this.#plans.listening;
  }

  /** Closes the listening connection (the pools and Redis client are the caller's). */
  async close(): Promise<void> {
    await this.#plans.close();
  }

  async #pointsOf(tenantId: string, limit: string): Promise<number> {
    const { plan, overrides } = await this.#effective(tenantId);
    return overrides[limit] ?? this.config.plans.get(plan)!.get(limit)!;
  }

  async #effective(tenantId: string): Promise<{ plan: string; overrides: Record<string, number> }> {
    const facts = await this.#plans.get(tenantId.toLowerCase());
    let plan = this.config.defaultPlan;
    if (typeof facts.plan === 'string' && this.config.plans.has(facts.plan)) plan = facts.plan;
    else if (facts.plan !== null && facts.plan !== undefined)
      this.#badSettings(tenantId, `settings.plan is not a configured plan: ${this.config.defaultPlan}'s limits apply`);
    let overrides: Record<string, number> = {};
    if (facts.overrides !== null && facts.overrides !== undefined) {
      const problem = this.#overrideProblem(facts.overrides);
      if (problem) this.#badSettings(tenantId, `settings.limits ${problem}`);
      else overrides = facts.overrides as Record<string, number>;
    }
    return { plan, overrides };
  }

  #badSettings(tenantId: string, problem: string): void {
    const key = `${tenantId} ${problem}`;
    if (this.#reported.has(key)) return;
    // bounded: a catalog full of bad plans is reported again after ten thousand, never grows memory
    if (this.#reported.size >= 10_000) this.#reported.clear();
    this.#reported.add(key);
    try {
      this.#options.onBadTenantSettings?.({ tenantId, problem });
    } catch {
      // a log's failure must not change the answer
    }
  }

  #overrideProblem(value: unknown): string | undefined {
    const parsed = limitOverridesSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return `${issue.path.join('.')}: ${issue.message}`.replace(/^: /, '');
    }
    const unknown = Object.keys(parsed.data).find((k) => !this.config.limits.has(k));
    return unknown ? `names the unknown limit ${unknown}` : undefined;
  }

  #limited(event: RateLimitedEvent): void {
    try {
      this.#options.onLimited?.(event);
    } catch {
      // a metric's failure must not change the answer
    }
  }
}
