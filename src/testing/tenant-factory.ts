import { randomBytes } from 'node:crypto';
import { TenantCatalog, type Queryable } from '../catalog/tenant-catalog.js';
import type { Tenant } from '../catalog/tenant.js';
import { runAs } from '../context/tenant-context.js';

/** Options of {@link createTenantFactory}. */
export interface TenantFactoryOptions<User> {
  /** The tenant catalog, or a connection as the owner role to make one with. */
  catalog: TenantCatalog | Queryable;
  /** Makes the tenant's first user (your identity code: a user row, a membership). Runs inside `runAs(tenant)`. */
  createUser?: (tenant: Tenant, index: number) => User | Promise<User>;
  /** Undoes `createUser` at cleanup (e.g. deletes the user row). */
  removeUser?: (user: User, tenant: Tenant) => void | Promise<void>;
  /** Slug prefix; a random part and a counter make each slug unique. Default `test`. */
  slugPrefix?: string;
}

/** A tenant made by the factory, its user, and `runAs` bound to the tenant. */
export interface TenantFixture<User> {
  tenant: Tenant;
  user: User;
  /** `runAs(tenant.id, fn)`. */
  runAs<T>(fn: () => T): T;
}

/** Makes tenants with a user, and removes them again. */
export interface TenantFactory<User> {
  /** A new active tenant with a unique slug (and `name`, `settings` when given), and its user. */
  create(input?: { name?: string; settings?: Record<string, unknown> }): Promise<TenantFixture<User>>;
  /** Two tenants: the usual A and B of an isolation test. */
  pair(): Promise<[TenantFixture<User>, TenantFixture<User>]>;
  /** Every tenant made so far, oldest first. */
  readonly created: ReadonlyArray<TenantFixture<User>>;
  /**
   * Runs `removeUser` for each fixture (newest first), then soft-deletes its tenant through the
   * catalog, so a leftover tenant answers "not found". Rows in tenant tables stay: tests run
   * against a throw-away database.
   */
  cleanup(): Promise<void>;
}

/**
 * A factory of test tenants through the tenant catalog (as the owner role), each with a user
 * made by your hook.
 *
 * @example
 * const tenants = createTenantFactory({
 *   catalog: ownerPool,
 *   createUser: async (tenant) => createUser(ownerPool, { tenantId: tenant.id, email: `owner@${tenant.slug}.test` }),
 * });
 * const [a, b] = await tenants.pair();
 * afterAll(() => tenants.cleanup());
 */
export function createTenantFactory<User = undefined>(options: TenantFactoryOptions<User>): TenantFactory<User> {
  const catalog = options.catalog instanceof TenantCatalog ? options.catalog : new TenantCatalog(options.catalog);
  const prefix = options.slugPrefix ?? 'test';
  // per factory: factories of parallel test files sharing a database never collide
  const run = randomBytes(4).toString('hex');
  const created: Array<TenantFixture<User>> = [];
  let count = 0;

  const create = async (
    input: { name?: string; settings?: Record<string, unknown> } = {},
  ): Promise<TenantFixture<User>> => {
    const index = count++;
    const slug = `${prefix}-${run}-${index}`;
    const tenant = await catalog.create({
      slug,
      name: input.name ?? slug,
      ...(input.settings ? { settings: input.settings } : {}),
    });
    const user = options.createUser
      ? await runAs(tenant.id, () => options.createUser!(tenant, index))
      : (undefined as User);
    const fixture: TenantFixture<User> = { tenant, user, runAs: (fn) => runAs(tenant.id, fn) };
    created.push(fixture);
    return fixture;
  };

  return {
    create,
    async pair() {
      return [await create(), await create()];
    },
    get created() {
      return [...created];
    },
    async cleanup() {
      for (const fixture of created.splice(0).reverse()) {
        if (options.removeUser) await options.removeUser(fixture.user, fixture.tenant);
        await catalog.softDelete(fixture.tenant.id);
      }
    },
  };
}

/**
 * One tenant and its user, without keeping a factory: the caller cleans up
 * (`new TenantCatalog(owner).softDelete(fixture.tenant.id)`). Prefer a factory in a suite.
 *
 * @example
 * const { tenant, user, runAs } = await createTenant({ catalog: ownerPool, createUser: (t) => makeOwner(t) });
 */
export function createTenant<User = undefined>(
  options: TenantFactoryOptions<User> & { name?: string; settings?: Record<string, unknown> },
): Promise<TenantFixture<User>> {
  const { name, settings, ...factory } = options;
  return createTenantFactory(factory).create({ ...(name ? { name } : {}), ...(settings ? { settings } : {}) });
}
