import { z } from 'zod';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { SettingInvalidError, SettingUnknownError } from './settings-errors.js';

/** Where a resolved value came from, lowest layer first. */
export type SettingSource = 'library' | 'app' | 'plan' | 'tenant';

/** A zod object schema: the shape of an application's settings. */
export type SettingsSchema = z.ZodObject<z.ZodRawShape>;

/** What {@link defineSettings} takes. */
export interface SettingsDefinitionInput<S extends SettingsSchema> {
  /**
   * The settings, one zod field per key. A field's `.default()` is its library default (what a
   * library or plugin shipping the schema chose); every key needs a value from some layer.
   */
  schema: S;
  /** The application's defaults, over the schema's. */
  defaults?: Partial<z.input<S>>;
  /** Values per plan (the tenant's `settings.plan` in the catalog), over the application's defaults. */
  plans?: Record<string, Partial<z.input<S>>>;
}

/** A declared settings schema with its layers; see {@link defineSettings}. */
export interface SettingsDefinition<S extends SettingsSchema = SettingsSchema> {
  readonly schema: S;
  readonly keys: readonly string[];
  /** The plans the definition gives values for (`plans`' keys), in declaration order; optional for hand-written definitions. */
  readonly plans?: readonly string[];
  /**
   * Resolves the layers for a plan and a tenant's overrides: the typed values, and per key the
   * layer that gave it. Throws `SETTING_INVALID` naming a key no layer gives a valid value.
   */
  resolve(
    plan: string | undefined,
    overrides: Readonly<Record<string, unknown>>,
  ): {
    values: Readonly<z.output<S>>;
    sources: Readonly<Record<string, SettingSource>>;
  };
  /** Validates one override (`SETTING_UNKNOWN`, `SETTING_INVALID`); returns the value as stored. */
  check(key: string, value: unknown): unknown;
}

const KEY = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;

/**
 * Declares the application's settings: a zod object schema and the layers over it. Values
 * resolve as library defaults (the schema's `.default()`s) → application defaults → the
 * tenant's plan → the tenant's own overrides, and the result is parsed by the schema, so reads
 * are typed.
 *
 * @example
 * const definition = defineSettings({
 *   schema: z.object({ maxUploadMb: z.number().int().positive().default(10), theme: z.enum(['light', 'dark']).default('light') }),
 *   plans: { pro: { maxUploadMb: 100 } },
 * });
 */
export function defineSettings<S extends SettingsSchema>(input: SettingsDefinitionInput<S>): SettingsDefinition<S> {
  const shape = input.schema.shape as Record<string, z.ZodType>;
  const keys = Object.keys(shape);
  for (const key of keys)
    if (!KEY.test(key)) throw new ConfigurationError(`setting key "${key}" must match ${KEY.source}`);
  const library: Record<string, unknown> = {};
  for (const key of keys) {
    const parsed = shape[key]!.safeParse(undefined);
    if (parsed.success && parsed.data !== undefined) library[key] = parsed.data;
  }
  const check = (key: string, value: unknown): unknown => {
    const field = Object.hasOwn(shape, key) ? shape[key] : undefined;
    if (!field) throw new SettingUnknownError(key);
    const parsed = field.safeParse(value);
    if (!parsed.success) throw new SettingInvalidError(key, problemOf(parsed.error), parsed.error);
    // stored as jsonb, which refuses NUL and lone surrogates: refused here, naming the key
    if (!storable(value)) throw new SettingInvalidError(key, 'text must not hold NUL characters or lone surrogates');
    // what is stored is what was given (a transform's output may not parse again), once it parses
    return value;
  };
  const layer = (values: Partial<z.input<S>> | undefined, what: string): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(values ?? {})) {
      if (value === undefined) continue;
      try {
        out[key] = check(key, value);
      } catch (error) {
        throw new ConfigurationError(`settings ${what}: ${(error as Error).message}`, error);
      }
    }
    return out;
  };
  const app = layer(input.defaults, 'defaults');
  const plans = new Map(
    Object.entries(input.plans ?? {}).map(([plan, values]) => [plan, layer(values, `plan ${plan}`)]),
  );

  return Object.freeze({
    schema: input.schema,
    keys: Object.freeze(keys),
    plans: Object.freeze([...plans.keys()]),
    check,
    resolve(plan: string | undefined, overrides: Readonly<Record<string, unknown>>) {
      const merged: Record<string, unknown> = {};
      const sources: Record<string, SettingSource> = {};
      const layers: Array<[SettingSource, Record<string, unknown>]> = [
        ['library', library],
        ['app', app],
        ['plan', (plan !== undefined && plans.get(plan)) || {}],
        ['tenant', overrides],
      ];
      for (const [source, values] of layers)
        for (const key of keys)
          if (Object.hasOwn(values, key) && values[key] !== undefined) {
            merged[key] = values[key];
            sources[key] = source;
          }
      const parsed = input.schema.safeParse(merged);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new SettingInvalidError(String(issue?.path[0] ?? '(settings)'), problemOf(parsed.error), parsed.error);
      }
      return { values: Object.freeze(parsed.data) as Readonly<z.output<S>>, sources: Object.freeze(sources) };
    },
  });
}

// zod's first complaint, without the input (issues carry no value unless asked)
function problemOf(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? issue.message : 'refused by the schema';
}

/** Whether every string in `value` (keys included) can be stored in jsonb: no NUL, no lone surrogate. */
function storable(value: unknown, depth = 0): boolean {
  if (depth > 64) return false;
  if (typeof value === 'string')
    return !/\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(value);
  if (Array.isArray(value)) return value.every((v) => storable(v, depth + 1));
  if (value !== null && typeof value === 'object')
    return Object.entries(value).every(([k, v]) => storable(k, depth + 1) && storable(v, depth + 1));
  return true;
}
