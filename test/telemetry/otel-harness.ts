import { context, trace, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { installTenantTracing, TenantSpanProcessor, type TenantTracingOptions } from '../../src/otel/index.js';

/** An SDK with an in-memory exporter, async context propagation and tenantry's span processor. */
export interface OtelHarness {
  tracer: Tracer;
  exporter: InMemorySpanExporter;
  spans(): ReadableSpan[];
  named(name: string): ReadableSpan[];
  /** The span's parent's id, or undefined for a root. */
  parentOf(span: ReadableSpan): string | undefined;
  uninstall(): void;
  close(): Promise<void>;
}

export function otelHarness(options: TenantTracingOptions = {}): OtelHarness {
  const manager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(manager);
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [new TenantSpanProcessor(), new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('tenantry-test');
  const tracing = installTenantTracing({ tracer, ...options });
  return {
    tracer,
    exporter,
    spans: () => exporter.getFinishedSpans(),
    named: (name) => exporter.getFinishedSpans().filter((s) => s.name === name),
    parentOf: (span) => span.parentSpanContext?.spanId,
    uninstall: () => tracing.uninstall(),
    async close() {
      tracing.uninstall();
      await provider.shutdown();
      context.disable();
      trace.disable();
    },
  };
}

/** Every attribute value and status message of the spans, as one string (to grep for leaks). */
export function everything(spans: readonly ReadableSpan[]): string {
  return JSON.stringify(
    spans.map((s) => ({ name: s.name, attributes: s.attributes, status: s.status, events: s.events })),
  );
}
