import { tryCurrentTenant } from '../context/tenant-context.js';
import { startingOwnSpan } from './own-span.js';

/** The slice of an SDK span that {@link TenantSpanProcessor} writes to. */
interface WritableSpan {
  setAttribute(key: string, value: string): unknown;
}

/**
 * An OpenTelemetry span processor that gives `tenant.id` to every span started inside a tenant
 * context (`runAs`), whoever starts it: the pg, Redis or fetch instrumentations, the application's
 * own spans. Add it to the SDK's tracer provider next to the exporter's processor. Structurally
 * typed (the SDK's `SpanProcessor`), so tenantry does not depend on the SDK.
 *
 * @example
 * import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
 * const provider = new BasicTracerProvider({
 *   spanProcessors: [new TenantSpanProcessor(), new BatchSpanProcessor(exporter)],
 * });
 */
export class TenantSpanProcessor {
  /** Called by the SDK as a span starts, in the async context that starts it. */
  onStart(span: WritableSpan): void {
    // Tenantry's own spans name their tenant themselves: a statement's span starts after the
    // pool's hand-over, in an async context that may be another tenant's request
    if (startingOwnSpan()) return;
    const tenantId = tryCurrentTenant();
    if (tenantId !== undefined) span.setAttribute('tenant.id', tenantId);
  }

  onEnd(): void {}

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
