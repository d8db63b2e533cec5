import * as vitest from 'vitest';
import { actorLabel, formatResult, type AttemptResult } from './attempt-result.js';
import type { IsolationContext } from './isolation-context.js';
import { runRouteAttempt } from './route-probe.js';
import { describeStatus, resolveRoute, type RouteSpec } from './route-spec.js';
import { TABLE_ATTEMPTS } from './table-attempts.js';
import { prepareTableProbe, type TableProbe } from './table-probe.js';
import { resolveTable, type TenantTableSpec } from './table-spec.js';

/** What `describeTenantIsolation` generates tests for. */
export interface TenantIsolationSuite<User = unknown> {
  /** Name of the outer `describe`. Default `tenant isolation`. */
  name?: string;
  /** Called once, before the tests (in `beforeAll`): the pools, the two tenants, the HTTP target. */
  context: () => IsolationContext<User> | Promise<IsolationContext<User>>;
  tables: ReadonlyArray<TenantTableSpec<User>>;
  routes?: readonly RouteSpec[];
}

/** The test functions the suite is declared with: vitest's by default (anything with the same shape works). */
export interface SuiteRunner {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: () => Promise<void>): void;
  beforeAll(fn: () => Promise<void>): void;
  afterAll(fn: () => Promise<void>): void;
}

// sequential even under `sequence.concurrent`: a control request that changes tenant A's row
// must not land between another test's before and after snapshots
const vitestRunner: SuiteRunner = {
  describe: (name, fn) => vitest.describe.sequential(name, fn),
  it: (name, fn) => vitest.it(name, fn),
  beforeAll: (fn) => vitest.beforeAll(fn),
  afterAll: (fn) => vitest.afterAll(fn),
};

/** Fails with every leak of `result`, in words. */
export function assertRefused(result: AttemptResult): void {
  if (result.leaks.length > 0) throw new TenantIsolationLeakError(result);
}

/** Thrown by a generated test that got through: the message lists each leak. */
export class TenantIsolationLeakError extends Error {
  constructor(readonly result: AttemptResult) {
    super(formatResult(result));
    this.name = 'TenantIsolationLeakError';
  }
}

/**
 * Declares, for each table and route, the attacks of tenant B on tenant A's rows and of code
 * with no tenant in context (read, list, update, delete, insert with A's tenant id, moving a row
 * into A, guessed ids; each route with A's ids and guessed ids), each as one test asserting that
 * it was refused AND that no other tenant's data changed (read through `privileged`). Before
 * them, a control per table and route checks that tenant A itself gets through, so a
 * misconfigured suite fails instead of passing for the wrong reason.
 *
 * @example
 * describeTenantIsolation({
 *   context: async () => ({ pool: appPool, privileged: ownerPool, tenantA: a, tenantB: b }),
 *   tables: [{ table: 'notes', columns: () => ({ body: 'hello' }), update: { column: 'body', value: 'changed' } }],
 * });
 */
export function describeTenantIsolation<User>(
  suite: TenantIsolationSuite<User>,
  runner: SuiteRunner = vitestRunner,
): void {
  const tables = suite.tables.map((t) => resolveTable(t));
  const routes = (suite.routes ?? []).map((r) => resolveRoute(r, tables));
  let context: IsolationContext<User> | undefined;
  const probes = new Map<string, TableProbe>();
  const ready = (): IsolationContext<User> => {
    if (!context) throw new Error('the isolation context is not ready: its set-up failed (see the first error)');
    return context;
  };

  runner.describe(suite.name ?? 'tenant isolation', () => {
    runner.beforeAll(async () => {
      const ctx = await suite.context();
      if (ctx.tenantA.tenant.id === ctx.tenantB.tenant.id) throw new Error('tenantA and tenantB are the same tenant');
      for (const table of tables) probes.set(table.name, await prepareTableProbe(table, ctx));
      context = ctx;
    });
    runner.afterAll(async () => {
      for (const probe of [...probes.values()].reverse()) await probe.cleanup();
      probes.clear();
    });

    for (const table of tables) {
      runner.describe(`table ${table.name}`, () => {
        for (const attempt of TABLE_ATTEMPTS) {
          runner.it(`${actorLabel(attempt.actor)}: ${attempt.title}`, async () => {
            ready();
            assertRefused(await probes.get(table.name)!.run(attempt.kind, attempt.actor));
          });
        }
      });
    }

    for (const route of routes) {
      runner.describe(`route ${route.name}`, () => {
        if (route.control !== false) {
          runner.it(`tenant A: ${describeStatus(route.control)} for its own row (control)`, async () => {
            assertRefused(await runRouteAttempt(route, 'tenant-a', ready(), probes));
          });
        }
        const target = route.hasId ? "A's ids and guessed ids" : 'the route';
        runner.it(
          `tenant B: ${describeStatus(route.crossTenant)} for ${target}, nothing of A in the answer, nothing changed`,
          async () => {
            assertRefused(await runRouteAttempt(route, 'tenant-b', ready(), probes));
          },
        );
        runner.it(`no credentials: ${describeStatus(route.noTenant)} for ${target}, nothing changed`, async () => {
          assertRefused(await runRouteAttempt(route, 'no-tenant', ready(), probes));
        });
      });
    }
  });
}
