/**
 * `tenantry/prisma`: Prisma 7 on a TenantPool through `@prisma/adapter-pg` (see docs/prisma.md).
 * Imports nothing from Prisma: pass `PrismaPg` and your generated `PrismaClient`'s instance in.
 */
export { prismaAdapter, type PgAdapterFactoryLike } from './prisma-adapter.js';
export { tenantPrisma } from './tenant-prisma.js';
export { PrismaIntegrationError, type PrismaIntegrationErrorCode } from './prisma-integration-error.js';
