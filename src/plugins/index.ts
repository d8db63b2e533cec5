/**
 * `tenantry/plugins`: plugins per tenant. A plugin declares routes, event and job handlers,
 * migrations (its tables are tenant tables, RLS forced wherever tenants live), settings and
 * flags; it is enabled per tenant by plan or by an admin (audited), and for a tenant without it
 * its routes answer 404 and its handlers never run. See docs/plugins.md.
 */
export {
  definePlugin,
  PLUGIN_MIGRATION_MIN,
  type PluginContext,
  type PluginDefinition,
  type PluginDefinitionInput,
  type PluginEventHandler,
  type PluginJob,
  type PluginMigration,
  type PluginRouteHandler,
  type PluginRouteMethod,
  type PluginRoutes,
} from './plugin-definition.js';
export {
  definePlugins,
  type PluginRegistry,
  type PluginRegistryInput,
  type PluginRouteDeclaration,
} from './plugin-registry.js';
export { PluginHost, type PluginHostOptions, type EmitResult } from './plugin-host.js';
export {
  PluginAdmin,
  type PluginAdminOptions,
  type PluginChange,
  type PluginEnablementSource,
  type TenantPlugin,
} from './plugin-admin.js';
export { fastifyPluginRoutes, type PluginRouteScope, type NotFoundReply } from './fastify-plugin-routes.js';
export {
  PluginInvalidError,
  PluginDuplicateError,
  PluginMigrationInvalidError,
  PluginUnknownError,
  PluginDisabledError,
} from './plugin-errors.js';
