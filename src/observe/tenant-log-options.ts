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
 * pino options that make every line name its tenant and scrub personal data by value. Spread
 * them into your own options (keep your `redact` paths: a secret is best never logged at all):
 *
 * - `mixin` adds `tenant_id` (from `runAs`), `request_id` and `actor` (from the log context the
 *   Fastify and Express adapters set, or from the request logger's tag), so no child logger has
 *   to be passed around;
 * - `hooks.streamWrite` scrubs the serialized line (message, bindings, serializer output, error
 *   stacks alike) with a {@link PiiScrubber}.
 *
 * @example
 * const logger = pino({ ...tenantLogOptions({ scrub: { classes: { ip: false } } }), redact: ['req.headers.authorization'] });
 * await runAs(tenantId, async () => logger.info('exported')); // {"tenant_id":"…","msg":"exported",…}
 */
export function tenantLogOptions(options: TenantLogOptions = {}): Pick<LoggerOptions, 'mixin' | 'hooks'> {
  const scrubber = options.scrub === false ? undefined : new PiiScrubber(options.scrub);
  return {
    mixin: (_object, _level, logger) => tenantLogFields(logger) as object,
    ...(scrubber ? { hooks: { streamWrite: (line: string) => scrubber.line(line) } } : {}),
  };
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
