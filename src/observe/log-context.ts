import { AsyncLocalStorage } from 'node:async_hooks';

/** What a log line says about the request it was written for (never a credential or PII). */
export interface LogContext {
  /** The framework's request id. */
  readonly requestId?: string;
  /** Who acts: `user:<id>`, `staff:<id>`, `apiKey:<key id>`, `anonymous`. */
  readonly actor?: string;
  /** The tenant, when the line is not written inside `runAs` (a framework's own request lines). */
  readonly tenantId?: string;
}

const storage = new AsyncLocalStorage<LogContext>();

/** Where {@link tagRequestLogger} leaves the context on a request's own (child) logger. */
export const LOG_CONTEXT = Symbol.for('tenantry.logContext');

/**
 * Runs `fn` with `context` as the log context: every line written by a logger made with
 * `tenantLogOptions` inside `fn` (any logger, not just the request's) carries its fields.
 */
export function runWithLogContext<T>(context: LogContext, fn: () => T): T {
  return storage.run(context, fn);
}

/** The current log context, if any. */
export function currentLogContext(): LogContext | undefined {
  return storage.getStore();
}

/**
 * Tags a request's own logger (Fastify's `request.log`, a child made for this request) with the
 * context, so the lines the framework writes outside the handler's async context ("request
 * completed", errors) carry the tenant too. A logger that is not a per-request pino child (no
 * `bindings`, Fastify's no-op logger shared by every request) is left alone.
 */
export function tagRequestLogger(log: unknown, context: LogContext): void {
  if (typeof log !== 'object' || log === null || typeof (log as { bindings?: unknown }).bindings !== 'function') return;
  (log as { [LOG_CONTEXT]?: LogContext })[LOG_CONTEXT] = context;
}

/** The context {@link tagRequestLogger} left on a logger. */
export function taggedLogContext(log: unknown): LogContext | undefined {
  return typeof log === 'object' && log !== null ? (log as { [LOG_CONTEXT]?: LogContext })[LOG_CONTEXT] : undefined;
}

/** The `actor` of a resolved principal: a kind and an id, never a name or an address. */
export function actorOf(principal: {
  readonly kind: string;
  readonly userId?: string;
  readonly keyId?: string;
}): string {
  if (principal.kind === 'apiKey') return `apiKey:${principal.keyId ?? '?'}`;
  if (principal.userId !== undefined) return `${principal.kind}:${principal.userId}`;
  return principal.kind;
}
