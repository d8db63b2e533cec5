import { TenantryError } from '../errors/tenantry-error.js';

/** Codes of {@link PrismaIntegrationError}. */
export type PrismaIntegrationErrorCode = 'PRISMA_POOL_REPLACED' | 'PRISMA_CLIENT_UNSUPPORTED';

/**
 * Prisma is wired in a way that would not isolate tenants:
 * - `PRISMA_POOL_REPLACED`: `@prisma/adapter-pg` did not keep the TenantPool it was given and
 *   would query through a plain pool of its own (it recognises a pool by `instanceof pg.Pool`
 *   against its own copy of `pg`: two copies of `pg` are installed). Dedupe `pg`
 *   (`npm ls pg`, `npm dedupe`) so one copy serves both.
 * - `PRISMA_CLIENT_UNSUPPORTED`: the Prisma Client does not batch requests the way
 *   `tenantPrisma` knows (another major version?), so batching per tenant cannot be ensured.
 */
export class PrismaIntegrationError extends TenantryError {
  declare readonly code: PrismaIntegrationErrorCode;

  constructor(code: PrismaIntegrationErrorCode, message: string) {
    super(code, message, { status: 500 });
  }
}
