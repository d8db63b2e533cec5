import { z } from 'zod';
import { ConfigurationError } from '../errors/tenantry-error.js';

/**
 * What a limit does when its store (PostgreSQL or Redis) is down or slower than `storeTimeoutMs`:
 * `open` admits (the API stays up; nothing is counted meanwhile), `closed` refuses with 429
 * RATE_LIMITED and `Retry-After` (expensive operations, sign-in: an outage must not open them
 * to a flood). Never a 5xx either way.
 */
export type StoreDownPolicy = 'open' | 'closed';

/** One named limit (the same window for every plan; the points come from the plan). */
export interface LimitDefinition {
  /** Length of the window in seconds (a fixed window starting at the key's first request). */
  durationSeconds: number;
  /** See {@link StoreDownPolicy}. Default `open`. */
  onStoreDown?: StoreDownPolicy;
}

/** Points (requests, or units of cost) per window of each limit, for one plan. */
export type PlanLimits = Record<string, number>;

/** The limits part of {@link TenantRateLimitsOptions}, validated by {@link parseRateLimitConfig}. */
export interface RateLimitConfig {
  /** The limits by name, e.g. `{ api: { durationSeconds: 60 }, export: { durationSeconds: 3600, onStoreDown: 'closed' } }`. */
  limits: Record<string, LimitDefinition>;
  /** Points per window of every limit, per plan: every plan names every limit. */
  plans: Record<string, PlanLimits>;
  /** The plan of a tenant whose `settings.plan` is absent. Must be one of `plans`. */
  defaultPlan: string;
}

const NAME = /^[a-z][a-z0-9_-]{0,39}$/;
const name = z.string().regex(NAME, 'a name of 1-40 of [a-z0-9_-], starting with a letter');
const points = z
  .number({ error: 'points must be a number' })
  .int('points must be a whole number')
  .min(0, 'points must not be negative')
  .max(1_000_000_000, 'points must be at most 1,000,000,000');

const configSchema = z
  .object({
    limits: z.record(
      name,
      z
        .object({
          durationSeconds: z
            .number()
            .int('durationSeconds must be a whole number')
            .min(1, 'durationSeconds must be at least 1')
            .max(31 * 86400, 'durationSeconds must be at most 31 days'),
          onStoreDown: z.enum(['open', 'closed']).optional(),
        })
        .strict(),
    ),
    plans: z.record(name, z.record(name, points)),
    defaultPlan: name,
  })
  .strict();

/** A tenant's own points for some limits (`settings.limits`), e.g. `{ api: 5000 }`. */
export const limitOverridesSchema = z.record(name, points);

/** The validated configuration: every plan names exactly the configured limits. */
export interface ParsedRateLimitConfig {
  limits: ReadonlyMap<string, Required<LimitDefinition>>;
  plans: ReadonlyMap<string, ReadonlyMap<string, number>>;
  defaultPlan: string;
}

/**
 * Validates a rate limit configuration, or throws CONFIGURATION_ERROR naming what is wrong
 * (negative points, an unknown default plan, a plan missing a limit or naming an unknown one):
 * bad configuration fails at start, never as a silent default.
 */
export function parseRateLimitConfig(input: RateLimitConfig): ParsedRateLimitConfig {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigurationError(`Rate limits: ${issue.path.join('.') || 'config'}: ${issue.message}`);
  }
  const { limits, plans, defaultPlan } = parsed.data;
  const limitNames = Object.keys(limits);
  if (limitNames.length === 0) throw new ConfigurationError('Rate limits: no limit is defined');
  if (Object.keys(plans).length === 0) throw new ConfigurationError('Rate limits: no plan is defined');
  if (!Object.hasOwn(plans, defaultPlan))
    throw new ConfigurationError(
      `Rate limits: defaultPlan ${defaultPlan} is not a configured plan (${Object.keys(plans).join(', ')})`,
    );
  for (const [plan, values] of Object.entries(plans)) {
    for (const limit of Object.keys(values))
      if (!Object.hasOwn(limits, limit))
        throw new ConfigurationError(`Rate limits: plan ${plan} names the unknown limit ${limit}`);
    for (const limit of limitNames)
      if (!Object.hasOwn(values, limit))
        throw new ConfigurationError(`Rate limits: plan ${plan} has no points for the limit ${limit}`);
  }
  return {
    limits: new Map(
      Object.entries(limits).map(([k, v]) => [
        k,
        { durationSeconds: v.durationSeconds, onStoreDown: v.onStoreDown ?? 'open' },
      ]),
    ),
    plans: new Map(Object.entries(plans).map(([k, v]) => [k, new Map(Object.entries(v))])),
    defaultPlan,
  };
}
