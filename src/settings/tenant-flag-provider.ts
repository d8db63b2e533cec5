import {
  InvalidContextError,
  TargetingKeyMissingError,
  TypeMismatchError,
  FlagNotFoundError,
  type EvaluationContext,
  type JsonValue,
  type Provider,
  type ResolutionDetails,
} from '@openfeature/server-sdk';
import { tryCurrentTenant } from '../context/tenant-context.js';
import type { FlagValue } from './flag-definition.js';
import type { TenantFlags } from './tenant-flags.js';

/**
 * An OpenFeature provider (`@openfeature/server-sdk`) whose targeting key is the current tenant
 * (`runAs`), never the evaluation context's. Some providers quietly evaluate for whatever
 * targeting key they are given, or ignore it (open-feature/js-sdk-contrib#1613); here the
 * decision is to refuse:
 *
 * - no tenant in context: `TARGETING_KEY_MISSING`, and the caller's default value;
 * - a `targetingKey` that is not the current tenant's id: `INVALID_CONTEXT`, and the default
 *   value (a tenant's request cannot see another tenant's flags by naming it, and a handler
 *   that passes a user id as targeting key learns at once that it is ignored);
 * - a `targetingKey` equal to the current tenant: accepted.
 *
 * Flags are per tenant, so other context attributes are not used for targeting.
 *
 * @example
 * await OpenFeature.setProviderAndWait(new TenantFlagProvider(flags));
 * const client = OpenFeature.getClient();
 * const on = await runAs(tenantId, () => client.getBooleanValue('new-editor', false));
 */
export class TenantFlagProvider implements Provider {
  readonly metadata = { name: 'tenantry' } as const;
  readonly runsOn = 'server' as const;
  readonly #flags: TenantFlags;

  constructor(flags: TenantFlags) {
    this.#flags = flags;
  }

  resolveBooleanEvaluation(flagKey: string, _default: boolean, context: EvaluationContext) {
    return this.#resolve(flagKey, context, 'boolean') as Promise<ResolutionDetails<boolean>>;
  }

  resolveStringEvaluation(flagKey: string, _default: string, context: EvaluationContext) {
    return this.#resolve(flagKey, context, 'string') as Promise<ResolutionDetails<string>>;
  }

  resolveNumberEvaluation(flagKey: string, _default: number, context: EvaluationContext) {
    return this.#resolve(flagKey, context, 'number') as Promise<ResolutionDetails<number>>;
  }

  resolveObjectEvaluation<T extends JsonValue>(flagKey: string, _default: T, context: EvaluationContext) {
    return this.#resolve(flagKey, context, 'object') as Promise<ResolutionDetails<T>>;
  }

  async #resolve(flagKey: string, context: EvaluationContext, kind: string): Promise<ResolutionDetails<FlagValue>> {
    const tenant = tryCurrentTenant();
    if (tenant === undefined)
      throw new TargetingKeyMissingError('no tenant in context: evaluate flags inside runAs(tenant, fn)');
    const key = context.targetingKey;
    if (key !== undefined && (typeof key !== 'string' || key.toLowerCase() !== tenant))
      throw new InvalidContextError('the targeting key is the current tenant: another targetingKey is refused');
    if (!this.#flags.definition.names.includes(flagKey)) throw new FlagNotFoundError(`unknown flag ${flagKey}`);
    const result = await this.#flags.evaluate(flagKey);
    const actual = typeof result.value;
    if (actual !== kind) throw new TypeMismatchError(`flag ${flagKey} is a ${actual}`);
    return { value: result.value, reason: result.reason, variant: result.variant };
  }
}
