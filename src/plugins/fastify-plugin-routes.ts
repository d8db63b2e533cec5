import { currentTenant } from '../context/tenant-context.js';
import type { PluginRouteHandler, PluginRouteMethod } from './plugin-definition.js';
import type { PluginHost } from './plugin-host.js';

/** The part of a Fastify instance the plugin routes need (structural: the core does not import Fastify). */
export interface PluginRouteScope<Req, Rep> {
  route(options: { method: PluginRouteMethod; url: string; handler: (request: Req, reply: Rep) => unknown }): unknown;
}

/** The part of a Fastify reply used to answer as if the route did not exist. */
export interface NotFoundReply {
  callNotFound(): unknown;
}

/**
 * Registers every plugin's routes on `scope`, a Fastify scope whose routes run inside the
 * tenant's `runAs` (the tenant routes of `tenantry/fastify`). For a tenant without the plugin a
 * route answers exactly what an unknown route answers (Fastify's not-found handler, 404): no
 * handler call, and nothing to tell that the route exists.
 *
 * @example
 * app.register(async (scope) => {
 *   tenantRoutes(scope, { resolver });
 *   fastifyPluginRoutes(scope, host);
 * });
 */
export function fastifyPluginRoutes<Req, Rep extends NotFoundReply>(
  scope: PluginRouteScope<Req, Rep>,
  host: PluginHost,
): void {
  for (const name of host.registry.names) {
    const plugin = host.registry.get(name);
    if (!plugin.routes) continue;
    const ctx = host.context(name);
    const add =
      (method: PluginRouteMethod) =>
      (url: string, handler: PluginRouteHandler<Req, Rep>): void => {
        scope.route({
          method,
          url,
          handler: async (request: Req, reply: Rep) => {
            if (!(await host.isEnabled(currentTenant(), name))) {
              reply.callNotFound();
              return reply;
            }
            return handler(request, reply);
          },
        });
      };
    plugin.routes(
      { get: add('GET'), post: add('POST'), put: add('PUT'), patch: add('PATCH'), delete: add('DELETE') },
      ctx,
    );
  }
}
