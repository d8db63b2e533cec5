import type { TenantPool } from '../data/tenant-pool.js';
import { PrismaIntegrationError } from './prisma-integration-error.js';

/**
 * What Tenantry needs of a driver adapter factory such as `@prisma/adapter-pg`'s `PrismaPg`:
 * `connect()` answers the adapter Prisma queries through, whose `underlyingDriver()` is the
 * pool it runs on. Structural, so this module does not import Prisma.
 */
export interface PgAdapterFactoryLike {
  connect(): Promise<{ underlyingDriver(): unknown; dispose(): Promise<void> }>;
}

const NOT_KEPT =
  '@prisma/adapter-pg did not keep the TenantPool and would query through a plain pool of its own, without tenant context: two copies of pg are installed (npm ls pg). Deduplicate pg so @prisma/adapter-pg and tenantry use the same copy';

/**
 * Builds a Prisma driver adapter on a TenantPool, `new PrismaPg(pool, options)`, and makes sure
 * it really queries through that pool. `PrismaPg` keeps a pool only if `pool instanceof pg.Pool`
 * holds against its own copy of `pg`; with two copies installed it silently opens a plain pool
 * of its own (no tenant context, and connection settings from the environment). That case fails
 * here, at start-up, with `PRISMA_POOL_REPLACED`, and again on connect if a version of the adapter
 * hides the pool where this check cannot see it.
 *
 * Use it with {@link tenantPrisma}, which keeps Prisma's request batching per tenant.
 *
 * @example
 * import { PrismaPg } from '@prisma/adapter-pg';
 * const prisma = tenantPrisma(new PrismaClient({ adapter: prismaAdapter(PrismaPg, pool) }));
 */
export function prismaAdapter<F extends PgAdapterFactoryLike, O>(
  PrismaPg: new (pool: TenantPool, options?: O) => F,
  pool: TenantPool,
  options?: O,
): F {
  const factory = new PrismaPg(pool, options);
  // @prisma/adapter-pg 7 records the pool it kept as `externalPool` (null when it made its own)
  const kept = (factory as { externalPool?: unknown }).externalPool;
  if ('externalPool' in factory && kept !== pool) throw new PrismaIntegrationError('PRISMA_POOL_REPLACED', NOT_KEPT);
  // and whatever the field is called: the adapter Prisma gets must run on this pool
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const adapter = await connect();
    if (adapter.underlyingDriver() !== pool) {
      await adapter.dispose().catch(() => undefined);
      throw new PrismaIntegrationError('PRISMA_POOL_REPLACED', NOT_KEPT);
    }
    return adapter;
  };
  return factory;
}
