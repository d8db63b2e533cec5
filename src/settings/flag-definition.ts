import { createHash } from 'node:crypto';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { FlagUnknownError, FlagValueInvalidError } from './settings-errors.js';

/** A flag's value: what OpenFeature resolves (boolean, string, number or a JSON object). */
export type FlagValue = boolean | string | number | { [key: string]: unknown };

/** How the application declares one flag. */
export interface FlagDeclaration<V extends FlagValue = FlagValue> {
  /** The value when the flag is off for a tenant (and for everyone under the kill switch). */
  off: V;
  /** The value when it is on (plan entitlement, rollout). Default `true` for a boolean flag. */
  on?: V;
  /** Plans entitled to the flag: their tenants get `on`. */
  plans?: readonly string[];
  /** Percentage of tenants (0-100, by a stable hash of the tenant and the flag) that get `on`. */
  rollout?: number;
  description?: string;
}

/** A flag's deployment-wide state, as stored (`tenantry_private.feature_flags`). */
export interface FlagState {
  killed: boolean;
  /** `null`: the declaration's rollout. */
  rolloutPercent: number | null;
}

/** The facts of one tenant a flag is evaluated on. */
export interface FlagFacts {
  tenantId: string;
  plan: string | null;
  overrides: Readonly<Record<string, unknown>>;
}

/** Why a tenant got its value, in OpenFeature's reasons. */
export type FlagReason = 'DISABLED' | 'TARGETING_MATCH' | 'SPLIT' | 'DEFAULT';

/** An evaluation: the value, the reason, and the rule that matched (OpenFeature's variant). */
export interface FlagEvaluation {
  value: FlagValue;
  reason: FlagReason;
  variant: 'killed' | 'override' | 'plan' | 'rollout' | 'off';
}

/** The declared flags; see {@link defineFlags}. */
export interface FlagsDefinition {
  readonly names: readonly string[];
  declaration(flag: string): FlagDeclaration;
  /** Validates a per-tenant override (the same kind of value as `off`). */
  check(flag: string, value: unknown): FlagValue;
  /** Validates a rollout percentage (0-100). */
  checkRollout(flag: string, percent: number): number;
  evaluate(flag: string, facts: FlagFacts, state: FlagState | undefined): FlagEvaluation;
}

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;

/**
 * The tenant's bucket for a flag, 0 ≤ b < 100: the first 32 bits of SHA-256 over the flag and
 * the tenant. Stable across instances and restarts, independent between flags (a tenant early
 * in one rollout is not early in all), and monotone: raising a rollout only adds tenants.
 */
export function rolloutBucket(flag: string, tenantId: string): number {
  const digest = createHash('sha256').update(`${flag}\u0000${tenantId}`).digest();
  return (digest.readUInt32BE(0) / 2 ** 32) * 100;
}

/**
 * Declares the application's feature flags. Evaluation for a tenant, first match wins: the
 * kill switch (everyone gets `off`), the tenant's override, its plan's entitlement (`on`), the
 * rollout by a stable hash of the tenant (`on`), else `off`.
 *
 * @example
 * const flags = defineFlags({ 'new-editor': { off: false, plans: ['pro'], rollout: 10 } });
 */
export function defineFlags(declarations: Record<string, FlagDeclaration>): FlagsDefinition {
  const flags = new Map<string, FlagDeclaration>();
  for (const [name, d] of Object.entries(declarations)) {
    if (!NAME.test(name)) throw new ConfigurationError(`flag name "${name}" must match ${NAME.source}`);
    const on = d.on ?? (typeof d.off === 'boolean' ? !d.off : undefined);
    if (on === undefined) throw new ConfigurationError(`flag "${name}" needs an "on" value`);
    if (kindOf(on) !== kindOf(d.off)) throw new ConfigurationError(`flag "${name}": "on" and "off" differ in type`);
    if (d.rollout !== undefined && !(d.rollout >= 0 && d.rollout <= 100))
      throw new ConfigurationError(`flag "${name}": rollout must be 0-100`);
    flags.set(name, Object.freeze({ ...d, on, plans: Object.freeze([...(d.plans ?? [])]) }));
  }
  const declaration = (flag: string): FlagDeclaration => {
    const d = flags.get(flag);
    if (!d) throw new FlagUnknownError(flag);
    return d;
  };
  return Object.freeze({
    names: Object.freeze([...flags.keys()]),
    declaration,
    check(flag: string, value: unknown): FlagValue {
      const d = declaration(flag);
      if (kindOf(value) !== kindOf(d.off))
        throw new FlagValueInvalidError(flag, `expected a ${kindOf(d.off)}, got a ${kindOf(value)}`);
      if (JSON.stringify(value).length > 8192) throw new FlagValueInvalidError(flag, 'the value is too large');
      return value as FlagValue;
    },
    checkRollout(flag: string, percent: number): number {
      declaration(flag);
      if (typeof percent !== 'number' || !(percent >= 0 && percent <= 100))
        throw new FlagValueInvalidError(flag, 'a rollout is a percentage from 0 to 100');
      return Math.round(percent * 100) / 100;
    },
    evaluate(flag: string, facts: FlagFacts, state: FlagState | undefined): FlagEvaluation {
      const d = declaration(flag);
      if (state?.killed) return { value: d.off, reason: 'DISABLED', variant: 'killed' };
      if (Object.hasOwn(facts.overrides, flag) && kindOf(facts.overrides[flag]) === kindOf(d.off))
        return { value: facts.overrides[flag] as FlagValue, reason: 'TARGETING_MATCH', variant: 'override' };
      if (facts.plan !== null && d.plans?.includes(facts.plan))
        return { value: d.on!, reason: 'TARGETING_MATCH', variant: 'plan' };
      const rollout = state?.rolloutPercent ?? d.rollout ?? 0;
      if (rollout > 0 && rolloutBucket(flag, facts.tenantId) < rollout)
        return { value: d.on!, reason: 'SPLIT', variant: 'rollout' };
      return { value: d.off, reason: 'DEFAULT', variant: 'off' };
    },
  });
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}
