/** `tenantry/express`: tenant middleware for Express (see docs/identity.md). */
export {
  tenantMiddleware,
  resolutionOfRequest,
  tenantryErrorHandler,
  type ExpressTenantOptions,
} from './express-adapter.js';
