import { isSpanContextValid, ROOT_CONTEXT, trace, type TracerProvider } from '@opentelemetry/api';

/**
 * Whether a tracer provider that records spans is registered (the OpenTelemetry SDK, or any
 * real provider): without one, `@opentelemetry/api` hands out no-op tracers and every span
 * Tenantry starts goes nowhere, silently. Starts one root span and looks at its ids: a no-op
 * tracer's are all zeros, an SDK's are real even when its sampler drops the span. The probe span
 * is ended at once and has no attributes.
 *
 * @example
 * if (!hasTracerProvider()) throw new Error('tracing is on but no OpenTelemetry SDK is registered');
 * installTenantTracing();
 */
export function hasTracerProvider(provider: TracerProvider = trace.getTracerProvider()): boolean {
  const span = provider.getTracer('tenantry').startSpan('tenantry.probe', { root: true }, ROOT_CONTEXT);
  try {
    return isSpanContextValid(span.spanContext());
  } finally {
    span.end();
  }
}
