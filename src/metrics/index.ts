/**
 * `tenantry/metrics`: per-tenant Prometheus metrics with bounded cardinality (prom-client, an
 * optional peer dependency: only this subpath needs it).
 */
export { TenantMetrics, OTHER_TENANTS, type TenantMetricsOptions } from './tenant-metrics.js';
export { TopTenants, type TopTenantsOptions } from './top-tenants.js';
export { SpaceSaving, type SpaceSavingEntry } from './space-saving.js';
