// tenantry/testing: the test kit. Needs vitest (an optional peer dependency of tenantry).
export {
  describeTenantIsolation,
  assertRefused,
  TenantIsolationLeakError,
  type TenantIsolationSuite,
  type SuiteRunner,
} from './describe-tenant-isolation.js';
export type { IsolationContext, IsolationTenant, HttpTarget, SqlQueryable, SqlResult } from './isolation-context.js';
export { resolveTable, type TenantTableSpec, type SeedContext, type ResolvedTable, type RowKey } from './table-spec.js';
export { TABLE_ATTEMPTS, type TableAttempt, type TableAttemptKind } from './table-attempts.js';
export { prepareTableProbe, type TableProbe } from './table-probe.js';
export { resolveRoute, type RouteSpec, type ResolvedRoute, type StatusExpectation } from './route-spec.js';
export { runRouteAttempt } from './route-probe.js';
export {
  fastifyDriver,
  fetchDriver,
  type HttpDriver,
  type HttpRequest,
  type HttpResponse,
  type InjectTarget,
} from './http-driver.js';
export { formatResult, type Actor, type AttemptActor, type AttemptResult } from './attempt-result.js';
export { snapshotRows, diffSnapshots, type RowSnapshot } from './row-snapshot.js';
export { neighbourValues } from './guessable-ids.js';
export {
  createTenant,
  createTenantFactory,
  type TenantFactory,
  type TenantFactoryOptions,
  type TenantFixture,
} from './tenant-factory.js';
export { tenantryMatchers, installTenantryMatchers, type TenantryMatchers } from './matchers.js';
