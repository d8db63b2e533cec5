import type { Queryable } from '../catalog/tenant-catalog.js';
import { ConfigurationError } from '../errors/tenantry-error.js';

/**
 * What one plan (or one tenant's override) allows a tenant in the database. Every limit is
 * applied transaction-locally in the same prefix as the tenant context; a limit left out keeps
 * whatever the connection has (the app role's default, see `DEFAULT_APP_ROLE_TIMEOUTS`).
 */
export interface DbLimits {
  /** statement_timeout in ms (1 … 24 h). */
  statementTimeoutMs?: number;
  /** lock_timeout in ms (1 … 24 h). */
  lockTimeoutMs?: number;
  /** work_mem: `'4MB'`, `'512kB'`, `'1GB'` (64 kB … 2 GB). */
  workMem?: string;
  /** Share of a pool's connections when tenants compete for them (fair checkout), 1 … 1000; default 1. */
  weight?: number;
  /** Most connections of one pool the tenant holds at once with fair checkout (1 … 10000); default the pool's `maxPerTenant`. */
  maxConnections?: number;
  /**
   * Budget of connection time with fair checkout: on average at most this many ms of connection
   * time (from checkout to release: a statement's time, a transaction's whole time) per second,
   * per pool (1 … 1,000,000; 1000 = one connection busy all the time, roughly one core of the
   * server for CPU-bound statements). A tenant over it waits at checkout until it is back under
   * (a token bucket of DB time), within `connectionTimeoutMillis`, else POOL_TIMEOUT. Not
   * work-conserving: it throttles even an idle server, as a plan's quota does. Default: none.
   */
  dbTimeMsPerSecond?: number;
  /** Connection time (ms) the tenant may use at once above its rate, e.g. after a quiet spell (1 … 24 h); default one second's worth of `dbTimeMsPerSecond`. */
  dbTimeBurstMs?: number;
}

/** Options of {@link TenantDbLimits}. */
export interface TenantDbLimitsOptions {
  /** Limits by plan name (the tenant's `settings.plan`), e.g. `{ free: {...}, pro: {...} }`. */
  plans: Record<string, DbLimits>;
  /** The plan of a tenant with no plan, an unknown plan, or not loaded yet. Must be one of `plans`. */
  defaultPlan: string;
  /** Operator overrides by tenant id, merged over the tenant's plan. */
  overrides?: Record<string, DbLimits>;
}

/** The settings a prefix sets, in the order of {@link ResolvedDbLimits.values}. */
export const DB_LIMIT_SETTINGS = ['statement_timeout', 'lock_timeout', 'work_mem'] as const;

/** One tenant's limits as the prefix sends them: a value per `DB_LIMIT_SETTINGS` (null: keep the connection's). */
export interface ResolvedDbLimits {
  readonly values: readonly (string | null)[];
  readonly weight: number;
  /** Infinity when the plan sets none (the pool's own cap applies). */
  readonly maxConnections: number;
  /** Connection time budget (ms per second) with fair checkout; undefined: none. */
  readonly dbTimeMsPerSecond: number | undefined;
  /** Burst of that budget (ms); undefined without a budget. */
  readonly dbTimeBurstMs: number | undefined;
  readonly plan: string;
}

const MAX_MS = 24 * 3600 * 1000;
const WORK_MEM = /^([1-9][0-9]{0,9})(kB|MB|GB)$/;
const KB = { kB: 1, MB: 1024, GB: 1024 * 1024 } as const;

function checkMs(value: unknown, what: string): void {
  if (value === undefined) return;
  if (!(typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_MS))
    throw new ConfigurationError(`${what} must be a whole number of milliseconds from 1 to ${MAX_MS}`);
}

/** Validates one set of limits: a bad value fails at construction, never at the first statement. */
function checkLimits(limits: DbLimits, where: string): void {
  if (limits === null || typeof limits !== 'object') throw new ConfigurationError(`${where}: limits must be an object`);
  for (const key of Object.keys(limits)) {
    if (
      ![
        'statementTimeoutMs',
        'lockTimeoutMs',
        'workMem',
        'weight',
        'maxConnections',
        'dbTimeMsPerSecond',
        'dbTimeBurstMs',
      ].includes(key)
    )
      throw new ConfigurationError(`${where}: unknown limit ${key}`);
  }
  checkMs(limits.statementTimeoutMs, `${where}.statementTimeoutMs`);
  checkMs(limits.lockTimeoutMs, `${where}.lockTimeoutMs`);
  if (limits.workMem !== undefined) {
    const m = typeof limits.workMem === 'string' ? WORK_MEM.exec(limits.workMem) : null;
    const kb = m ? Number(m[1]) * KB[m[2] as keyof typeof KB] : 0;
    if (!m || kb < 64 || kb > 2 * 1024 * 1024)
      throw new ConfigurationError(`${where}.workMem must be like '4MB' (kB, MB or GB), from 64kB to 2GB`);
  }
  if (limits.weight !== undefined && !(Number.isInteger(limits.weight) && limits.weight >= 1 && limits.weight <= 1000))
    throw new ConfigurationError(`${where}.weight must be a whole number from 1 to 1000`);
  const cap = limits.maxConnections;
  if (cap !== undefined && !(Number.isInteger(cap) && cap >= 1 && cap <= 10_000))
    throw new ConfigurationError(`${where}.maxConnections must be a whole number from 1 to 10000`);
  const rate = limits.dbTimeMsPerSecond;
  if (rate !== undefined && !(Number.isInteger(rate) && rate >= 1 && rate <= 1_000_000))
    throw new ConfigurationError(`${where}.dbTimeMsPerSecond must be a whole number from 1 to 1000000`);
  checkMs(limits.dbTimeBurstMs, `${where}.dbTimeBurstMs`);
}

function resolve(plan: string, limits: DbLimits): ResolvedDbLimits {
  return Object.freeze({
    plan,
    weight: limits.weight ?? 1,
    maxConnections: limits.maxConnections ?? Infinity,
    dbTimeMsPerSecond: limits.dbTimeMsPerSecond,
    dbTimeBurstMs:
      limits.dbTimeMsPerSecond === undefined ? undefined : (limits.dbTimeBurstMs ?? limits.dbTimeMsPerSecond),
    values: Object.freeze([
      limits.statementTimeoutMs === undefined ? null : String(limits.statementTimeoutMs),
      limits.lockTimeoutMs === undefined ? null : String(limits.lockTimeoutMs),
      limits.workMem ?? null,
    ]),
  });
}

/**
 * Per-tenant database limits (statement_timeout, lock_timeout, work_mem) and fair-share weights,
 * by plan and overridable per tenant. The values come from the operator (this object's options
 * and the catalog's `settings.plan`, which only the owner role writes), are validated here, and
 * travel as bind parameters of the context prefix: nothing a tenant's request sends changes them.
 *
 * A TenantPool (`dbLimits`) asks `limitsOf(tenantId)` synchronously at every statement: plans are
 * read ahead from the catalog (`load`, `watch`), and a tenant not loaded yet gets `defaultPlan`
 * (make it the most restrictive).
 *
 * @example
 * const dbLimits = new TenantDbLimits({
 *   plans: { free: { statementTimeoutMs: 2000, lockTimeoutMs: 500, workMem: '4MB', weight: 1 },
 *            pro: { statementTimeoutMs: 30000, lockTimeoutMs: 2000, workMem: '64MB', weight: 4 } },
 *   defaultPlan: 'free',
 * });
 * const stop = dbLimits.watch(ownerPool); // reads every tenant's settings.plan, again each minute
 * const pool = new TenantPool({ connectionString, contextSecret, dbLimits });
 */
export class TenantDbLimits {
  readonly #byPlan = new Map<string, ResolvedDbLimits>();
  readonly #default: ResolvedDbLimits;
  readonly #plans: Record<string, DbLimits>;
  readonly #overrides = new Map<string, DbLimits>();
  /** Resolved limits by tenant id (plan merged with override); absent: the default plan. */
  readonly #byTenant = new Map<string, ResolvedDbLimits>();
  readonly #planOf = new Map<string, string>();

  constructor(options: TenantDbLimitsOptions) {
    if (!options || typeof options.plans !== 'object' || options.plans === null)
      throw new ConfigurationError('TenantDbLimits needs plans: { <plan>: { statementTimeoutMs, … } }');
    for (const [plan, limits] of Object.entries(options.plans)) {
      checkLimits(limits, `plans.${plan}`);
      this.#byPlan.set(plan, resolve(plan, limits));
    }
    const fallback = this.#byPlan.get(options.defaultPlan);
    if (!fallback)
      throw new ConfigurationError(
        `defaultPlan ${String(options.defaultPlan)} is not one of the plans (${[...this.#byPlan.keys()].join(', ')})`,
      );
    this.#default = fallback;
    this.#plans = options.plans;
    for (const [tenantId, limits] of Object.entries(options.overrides ?? {})) this.setOverride(tenantId, limits);
  }

  /** True when a plan or an override sets a connection time budget (which needs fair checkout). */
  get hasDbTimeBudget(): boolean {
    for (const r of this.#byPlan.values()) if (r.dbTimeMsPerSecond !== undefined) return true;
    for (const r of this.#byTenant.values()) if (r.dbTimeMsPerSecond !== undefined) return true;
    return false;
  }

  /** The limits a statement of `tenantId` runs under (the default plan's for none, or not loaded). */
  limitsOf(tenantId: string | undefined): ResolvedDbLimits {
    if (tenantId === undefined) return this.#default;
    return this.#byTenant.get(tenantId) ?? this.#default;
  }

  /** Records a tenant's plan (an unknown plan means the default plan). */
  setPlan(tenantId: string, plan: string | undefined): void {
    if (plan === undefined || !this.#byPlan.has(plan)) this.#planOf.delete(tenantId);
    else this.#planOf.set(tenantId, plan);
    this.#recompute(tenantId);
  }

  /** Sets (or, with undefined, removes) an operator override of one tenant's limits, validated. */
  setOverride(tenantId: string, limits: DbLimits | undefined): void {
    if (limits === undefined) this.#overrides.delete(tenantId);
    else {
      checkLimits(limits, `overrides.${tenantId}`);
      this.#overrides.set(tenantId, { ...limits });
    }
    this.#recompute(tenantId);
  }

  #recompute(tenantId: string): void {
    const plan = this.#planOf.get(tenantId);
    const override = this.#overrides.get(tenantId);
    if (override === undefined) {
      if (plan === undefined) this.#byTenant.delete(tenantId);
      else this.#byTenant.set(tenantId, this.#byPlan.get(plan)!);
      return;
    }
    const name = plan ?? this.#default.plan;
    this.#byTenant.set(tenantId, resolve(name, { ...this.#plans[name], ...override }));
  }

  /**
   * Reads every tenant's `settings.plan` from the catalog (`tenantry.tenants`, as the owner role):
   * one statement, ~1 ms per thousand tenants. Returns how many tenants it read.
   */
  async load(catalog: Queryable): Promise<number> {
    const { rows } = await catalog.query<{ id: string; plan: string | null }>(
      `select id, settings->>'plan' as plan from tenantry.tenants where status <> 'deleted'`,
    );
    const seen = new Set<string>();
    for (const row of rows) {
      seen.add(row.id);
      this.setPlan(row.id, row.plan ?? undefined);
    }
    for (const id of [...this.#planOf.keys()]) if (!seen.has(id)) this.setPlan(id, undefined);
    return rows.length;
  }

  /**
   * Loads now and again every `intervalMs` (default 60 s) until the returned function is called.
   * A failed reload keeps the last plans (and goes to `onError`).
   */
  watch(catalog: Queryable, options: { intervalMs?: number; onError?: (error: unknown) => void } = {}): () => void {
    const intervalMs = options.intervalMs ?? 60_000;
    if (!(intervalMs >= 100)) throw new ConfigurationError('watch intervalMs must be at least 100');
    const run = () => void this.load(catalog).catch((error: unknown) => options.onError?.(error));
    run();
    const timer = setInterval(run, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }
}
