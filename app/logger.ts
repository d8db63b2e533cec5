import { pino, type DestinationStream, type Logger } from 'pino';
import { tenantLogOptions, type PiiScrubberOptions } from 'tenantry/pino';

/**
 * Paths pino replaces with "[redacted]": tokens and passwords never reach a log line, even if
 * a future change logs headers or bodies. `err.detail` can quote row values (PII), so it goes too.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'headers.cookie',
  'headers["x-api-key"]',
  // an API key as created, an invitation code as issued
  'key',
  '*.key',
  'apiKey',
  '*.apiKey',
  'authorization',
  'password',
  'token',
  '*.password',
  '*.token',
  '*.*.password',
  '*.*.token',
  'err.detail',
];

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level?: string;
  /** Where lines go; default stdout. */
  destination?: DestinationStream;
  /** Which personal data is scrubbed by value (default: every class, client IPs included). */
  scrub?: PiiScrubberOptions;
}

/**
 * The server's pino logger: secrets redacted by path (never logged at all), every line written for
 * a tenant carries `tenant_id` (and the request's id and actor), and personal data anywhere in a
 * line (a query string, an error message) is replaced by value (`[email]`, `[card]`…).
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  // passed in, not spread over: tenantLogOptions composes its mixin and hooks with any of ours
  const config = tenantLogOptions({
    scrub: options.scrub ?? {},
    level: options.level ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  });
  return options.destination ? pino(config, options.destination) : pino(config);
}
