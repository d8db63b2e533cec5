import type { LoggerOptions } from 'pino';
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

/**
 * pino options that make every line name its tenant and scrub personal data by value, merged
 * with your own options: pass them in rather than spreading the result over them, since a
 * spread `hooks` or `mixin` of either side replaces the other's.
 *
 * - `mixin` adds `tenant_id` (from `runAs`), `request_id` and `actor` (from the log context the
 *   Fastify and Express adapters set, or from the request logger's tag), so no child logger has
 *   to be passed around; your own `mixin` still runs, and its fields come first (the tenant's
 *   fields win a clash: a line cannot be made to name another tenant);
 * - `hooks.streamWrite` scrubs the serialized line (message, bindings, serializer output, error
 *   stacks alike) with a {@link PiiScrubber}, after your own `streamWrite` if you have one;
 *   your other hooks (`logMethod`) and everything else (`serializers`, `redact`, `level`…) are
 *   kept as they are.
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
 * await runAs(tenantId, async () => logger.info('exported')); // {"service":"api","tenant_id":"…","msg":"exported",…}
 */
export function tenantLogOptions<O extends LoggerOptions = LoggerOptions>(
  options: TenantLogOptions & O = {} as TenantLogOptions & O,
): O & Required<Pick<LoggerOptions, 'mixin'>> {
  const { scrub, ...own } = options;
  const scrubber = scrub === false ? undefined : new PiiScrubber(scrub);
  const theirMixin = own.mixin;
  const theirStreamWrite = own.hooks?.streamWrite;
  const mixin: NonNullable<LoggerOptions['mixin']> = theirMixin
    ? (object, level, logger) => ({ ...theirMixin(object, level, logger), ...tenantLogFields(logger) })
    : (_object, _level, logger) => tenantLogFields(logger) as object;
  const streamWrite =
    scrubber && theirStreamWrite
      ? (line: string) => scrubber.line(theirStreamWrite(line))
      : scrubber
        ? (line: string) => scrubber.line(line)
        : theirStreamWrite;
  const hooks = streamWrite ? { ...own.hooks, streamWrite } : own.hooks;
  return { ...(own as unknown as O), mixin, ...(hooks ? { hooks } : {}) };
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
