/**
 * `tenantry/otel`: OpenTelemetry spans that carry `tenant.id` (requests, jobs, moves, pool
 * statements). `@opentelemetry/api` is an optional peer dependency: only this subpath needs it.
 */
export { installTenantTracing, type TenantTracing, type TenantTracingOptions } from './tenant-tracing.js';
export { TenantSpanProcessor } from './tenant-span-processor.js';
export { statementOperation } from './statement-operation.js';
export { hasTracerProvider } from './tracer-provider-check.js';
