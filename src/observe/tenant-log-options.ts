import { pino, type Logger, type LoggerOptions } from 'pino';
import { tryCurrentTenant } from '../context/tenant-context.js';
import { currentLogContext, taggedLogContext } from './log-context.js';
import { PiiScrubber, type PiiScrubberOptions } from './pii-scrubber.js';

/** Options of {@link tenantLogOptions}. */
export interface TenantLogOptions {
  /** Scrubbing by value (on by default, every class); `false` turns it off. */
  scrub?: PiiScrubberOptions | false;
}

/** The fields {@link tenantLogOptions} adds to a line. */
export interface TenantLogFields {
  tenant_id?: string;
  request_id?: string;
  actor?: string;
}

/** The keys the context owns: a logged object or a child's bindings cannot set them. */
const CONTEXT_KEYS = ['tenant_id', 'request_id', 'actor'] as const;
type ContextKey = (typeof CONTEXT_KEYS)[number];
const isContextKey = (key: string): key is ContextKey => (CONTEXT_KEYS as readonly string[]).includes(key);
/** Where a value the caller gave for a context key goes: kept for the reader, never as the context's. */
const claimed = (key: ContextKey): string => `claimed_${key}`;
// the mixin hands the context's fields to the merge strategy under a symbol: pino serializes only
// string keys, so they cannot leak into the line on their own
const FIELDS = Symbol('tenantry.logFields');
// a child's serialized bindings (pino.symbols is exported for libraries that adjust logger state)
const CHINDINGS = (pino as unknown as { symbols: { chindingsSym: symbol } }).symbols.chindingsSym;
const CONTEXT_KEY_IN_BINDINGS = /"(?:tenant_id|request_id|actor)":/;

/**
 * pino options that make every line name its tenant and scrub personal data by value, merged
 * with your own options: pass them in rather than spreading the result over them, since a
 * spread `hooks` or `mixin` of either side replaces the other's.
 *
 * - `mixin` adds `tenant_id` (from `runAs`), `request_id` and `actor` (from the log context the
 *   Fastify and Express adapters set, or from the request logger's tag), so no child logger has
 *   to be passed around; your own `mixin` still runs;
 * - the context owns those three keys: `mixinMergeStrategy` puts the context's values first and
 *   moves a value the logged object (or your mixin) gave for one of them to `claimed_<key>`
 *   (dropped when it equals the context's), and `onChild` does the same to a child logger's
 *   bindings, so a line names one tenant, the context's, and has each key once;
 * - `hooks.streamWrite` scrubs the serialized line (message, bindings, serializer output, error
 *   stacks alike) with a {@link PiiScrubber}, after your own `streamWrite` if you have one;
 *   your other hooks (`logMethod`), your `mixinMergeStrategy` and `onChild` (run before
 *   Tenantry's) and everything else (`serializers`, `redact`, `level`…) are kept.
 *
 * @example
 * const logger = pino(
 *   tenantLogOptions({
 *     scrub: { classes: { ip: false } },
 *     redact: ['req.headers.authorization'],
 *     hooks: { logMethod(args, method) { method.apply(this, args); } },
 *     mixin: () => ({ service: 'api' }),
 *   }),
 * );
 * await runAs(tenantId, async () => logger.info('exported')); // {"tenant_id":"…","service":"api","msg":"exported",…}
 */
export function tenantLogOptions<O extends LoggerOptions = LoggerOptions>(
  options: TenantLogOptions & O = {} as TenantLogOptions & O,
): O & Required<Pick<LoggerOptions, 'mixin' | 'mixinMergeStrategy' | 'onChild'>> {
  const { scrub, ...own } = options;
  const scrubber = scrub === false ? undefined : new PiiScrubber(scrub);
  const theirMixin = own.mixin;
  const theirMerge = own.mixinMergeStrategy;
  const theirOnChild = own.onChild;
  const theirStreamWrite = own.hooks?.streamWrite;
  const mixin: NonNullable<LoggerOptions['mixin']> = (object, level, logger) => ({
    ...theirMixin?.(object, level, logger),
    [FIELDS]: tenantLogFields(logger),
  });
  // pino's default lets the logged object override the mixin; here the context wins
  const mixinMergeStrategy: NonNullable<LoggerOptions['mixinMergeStrategy']> = (mergeObject, mixinObject) => {
    const { [FIELDS]: fields = {}, ...theirs } = mixinObject as { [FIELDS]?: TenantLogFields };
    const merged = theirMerge ? theirMerge(mergeObject, theirs) : Object.assign(theirs, mergeObject);
    return withContextFields(merged as Record<string, unknown>, fields);
  };
  const onChild = (child: Logger): void => {
    theirOnChild?.(child);
    claimContextBindings(child);
  };
  const base = own.base ? withContextFields(own.base, {}) : own.base;
  const streamWrite =
    scrubber && theirStreamWrite
      ? (line: string) => scrubber.line(theirStreamWrite(line))
      : scrubber
        ? (line: string) => scrubber.line(line)
        : theirStreamWrite;
  const hooks = streamWrite ? { ...own.hooks, streamWrite } : own.hooks;
  return {
    ...(own as unknown as O),
    ...(own.base ? { base } : {}),
    mixin,
    mixinMergeStrategy,
    onChild,
    ...(hooks ? { hooks } : {}),
  };
}

/** `object` with the context's fields first, and the caller's own values for them as `claimed_<key>`. */
function withContextFields(object: Record<string, unknown>, fields: TenantLogFields): Record<string, unknown> {
  const out: Record<string, unknown> = { ...fields };
  for (const key of Object.keys(object)) {
    const value = object[key];
    if (!isContextKey(key)) out[key] = value;
    else if (value !== undefined && value !== fields[key]) out[claimed(key)] = value;
  }
  return out;
}

/**
 * A child's bindings (`logger.child({ tenant_id })`) are serialized once, when it is made, ahead
 * of every line's fields: left there, a line would carry the key twice (and a reader keeping the
 * first would see the caller's). They are renamed to `claimed_<key>` as the child is made.
 */
function claimContextBindings(child: Logger): void {
  const chindings = (child as unknown as Record<symbol, string>)[CHINDINGS];
  if (typeof chindings !== 'string' || !CONTEXT_KEY_IN_BINDINGS.test(chindings)) return;
  // JSON in, JSON out: the values are already serialized, so no serializer runs twice
  const bindings = JSON.parse(`{${chindings.slice(1)}}`) as Record<string, unknown>;
  if (!CONTEXT_KEYS.some((key) => key in bindings)) return; // only nested keys of that name
  const renamed = JSON.stringify(withContextFields(bindings, {}));
  (child as unknown as Record<symbol, string>)[CHINDINGS] = renamed === '{}' ? '' : `,${renamed.slice(1, -1)}`;
}

/** The tenant fields of a line written now by `logger` (exported for other logging libraries). */
export function tenantLogFields(logger?: unknown): TenantLogFields {
  const context = currentLogContext() ?? taggedLogContext(logger);
  const tenantId = tryCurrentTenant() ?? context?.tenantId;
  const fields: TenantLogFields = {};
  if (tenantId !== undefined) fields.tenant_id = tenantId;
  if (context?.requestId !== undefined) fields.request_id = context.requestId;
  if (context?.actor !== undefined) fields.actor = context.actor;
  return fields;
}
