/** `tenantry/fastify`: tenant routes for Fastify (see docs/identity.md). */
export { tenantRoutes, resolutionOf, isTenantRoute, type FastifyTenantOptions } from './fastify-adapter.js';
