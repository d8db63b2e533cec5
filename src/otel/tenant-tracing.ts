import {
  context,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Tracer,
} from '@opentelemetry/api';
import {
  installTelemetry,
  type StatementEnd,
  type StatementStart,
  type TelemetryAttributes,
  type TelemetrySink,
} from '../telemetry/telemetry-hooks.js';
import { errorType } from './error-type.js';
import { startOwnSpan } from './own-span.js';
import { statementOperation } from './statement-operation.js';

/** Options of {@link installTenantTracing}. */
export interface TenantTracingOptions {
  /** The tracer to start spans with (default: the global provider's tracer named `tenantry`). */
  tracer?: Tracer;
  /** One span per pool statement (default true). */
  statements?: boolean;
  /**
   * Record each statement's text as `db.query.text` (default false). Parameter values are never
   * recorded (they are not part of the text), but a literal the application wrote into the text
   * itself would be: turn it on only where every value travels as a parameter.
   */
  statementText?: boolean;
}

/** What {@link installTenantTracing} returns. */
export interface TenantTracing {
  /** Stops reporting spans (the tracer and its provider are left as they are). */
  uninstall(): void;
}

/**
 * Reports Tenantry's work as OpenTelemetry spans, each carrying `tenant.id` from the tenant
 * context: one `tenantry.request` span per request of a Fastify tenant route (the HTTP server
 * span of an instrumentation, when one is active, gets `tenant.id` too, with Express as well), a
 * `tenantry.job` span per job run, `tenantry.move` spans for moves, and one CLIENT span per pool
 * statement (`db.system` `postgresql`, `db.operation.name`, never a parameter value, never the
 * context prefix). Errors are recorded by code or class only, never by message.
 *
 * Needs `@opentelemetry/api` (an optional peer of tenantry: only this subpath imports it) and a
 * tracer provider registered by the application (the OpenTelemetry SDK, with the exporter of its
 * choice). Without this call, Tenantry reports nothing and costs one check per statement.
 *
 * @example
 * import { installTenantTracing } from 'tenantry/otel';
 * const tracing = installTenantTracing();
 * // …
 * tracing.uninstall();
 */
export function installTenantTracing(options: TenantTracingOptions = {}): TenantTracing {
  const tracer = options.tracer ?? trace.getTracer('tenantry');
  const withText = options.statementText === true;
  const sink: TelemetrySink = {
    capture: () => context.active(),
    requestTenant: (tenantId) => trace.getActiveSpan()?.setAttribute('tenant.id', tenantId),
    span: (name, attributes, fn) =>
      tracer.startActiveSpan(name, { attributes: defined(attributes) }, async (span) => {
        try {
          return await fn((more) => span.setAttributes(defined(more)));
        } catch (error) {
          span.setStatus({ code: SpanStatusCode.ERROR });
          span.setAttribute('error.type', errorType(error));
          throw error;
        } finally {
          span.end();
        }
      }),
  };
  if (options.statements !== false)
    sink.statement = (start: StatementStart): StatementEnd => {
      const operation = statementOperation(start.text);
      const attributes: Attributes = {
        'db.system': 'postgresql',
        'db.system.name': 'postgresql',
        'db.operation.name': operation,
      };
      if (start.tenantId !== undefined) attributes['tenant.id'] = start.tenantId;
      if (start.location !== undefined) attributes['tenantry.location'] = start.location;
      if (withText && start.text !== undefined) attributes['db.query.text'] = start.text;
      const parent = (start.parent as Context | undefined) ?? context.active();
      const span = startOwnSpan(() => tracer.startSpan(operation, { kind: SpanKind.CLIENT, attributes }, parent));
      return (error, rows) => {
        if (error) {
          span.setStatus({ code: SpanStatusCode.ERROR });
          span.setAttribute('error.type', errorType(error));
        } else if (rows !== undefined) span.setAttribute('db.response.returned_rows', rows);
        span.end();
      };
    };
  const uninstall = installTelemetry(sink);
  return { uninstall };
}

function defined(attributes: TelemetryAttributes): Attributes {
  const out: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) out[key] = value;
  return out;
}
