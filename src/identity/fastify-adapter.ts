import type { FastifyInstance, FastifyRequest, RouteHandlerMethod } from 'fastify';
import { runAs } from '../context/tenant-context.js';
import { disconnectSignal } from '../context/disconnect-signal.js';
import { actorOf, runWithLogContext, tagRequestLogger, type LogContext } from '../observe/log-context.js';
import { activeTelemetry } from '../telemetry/telemetry-hooks.js';
import { AccessError } from './access-error.js';
import { AuditLog } from './audit-log.js';
import { auditStaffRequest } from './staff-request-audit.js';
import type { Resolution, TenantResolver } from './tenant-resolver.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The resolved tenant and principal of a tenant route (set by `tenantRoutes`). */
    tenantry: Resolution<unknown> | null;
  }
}

/** Options of {@link tenantRoutes}. */
export interface FastifyTenantOptions<M> {
  resolver: TenantResolver<M>;
  /** Admit requests that name a tenant (by host) but carry no credentials. Default false: 401. */
  allowAnonymous?: boolean;
  /** A route parameter naming the tenant (id or slug), for the `path` resolver, e.g. `tenant` for `/t/:tenant/...`. */
  pathParam?: string;
  /** Write a `staff.request` audit entry for every request staff make as a tenant. Default true. */
  auditStaffRequests?: boolean;
  /**
   * Write the request's "incoming request" line (info, `{ req }`, as Fastify does) once the tenant
   * is resolved, so it carries `tenant_id` and `actor` like the request's other lines (or once
   * resolution refused the request, without them). Fastify writes its own before any hook runs,
   * when no tenant is known: skip that one for tenant routes with a `LogController` whose
   * `incomingRequest` returns early when {@link isTenantRoute} (see docs/logging.md). Default false.
   */
  logIncomingRequest?: boolean;
}

const TENANT_ROUTE = Symbol.for('tenantry.tenantRoute');

/** Whether the request's route is one {@link tenantRoutes} made a tenant route. */
export function isTenantRoute(request: FastifyRequest): boolean {
  return (request.routeOptions.config as { [TENANT_ROUTE]?: boolean } | undefined)?.[TENANT_ROUTE] === true;
}

/**
 * Makes every route registered in `scope` (an encapsulated plugin context) a tenant route: the
 * tenant is resolved in `onRequest` (before the body is read) and each handler runs inside
 * `runAs(tenant)`, with a signal that aborts if the client disconnects (see `disconnectSignal`).
 * The handler is wrapped rather than the context entered in a hook: Fastify resumes after hooks
 * and body parsing from callbacks whose async context is not the hook's.
 * Register it before the scope's routes (`onRoute` sees only routes added after it).
 *
 * @example
 * app.register(async (scope) => {
 *   tenantRoutes(scope, { resolver });
 *   scope.get('/recordings', () => pool.query('select * from recordings').then((r) => r.rows));
 * });
 */
export function tenantRoutes<M>(scope: FastifyInstance, options: FastifyTenantOptions<M>): void {
  const { resolver, pathParam } = options;
  const audit = options.auditStaffRequests === false ? undefined : new AuditLog(resolver.pool);
  if (!scope.hasRequestDecorator('tenantry')) scope.decorateRequest('tenantry', null);
  scope.addHook('onRequest', async (request) => {
    const params = request.params as Record<string, string | undefined> | undefined;
    const incoming = () => {
      if (options.logIncomingRequest) request.log.info({ req: request }, 'incoming request');
    };
    const resolution = await resolver
      .resolve({
        host: request.headers.host,
        headers: request.headers,
        // Node keeps one of two Authorization headers and joins two X-Tenant: the raw list shows both
        rawHeaders: request.raw.rawHeaders,
        // as received: an absolute-form target's host is checked against Host
        target: request.raw.url,
        pathTenant: pathParam ? params?.[pathParam] : undefined,
        method: request.method,
        path: request.routeOptions.url,
      })
      .catch((error: unknown) => {
        incoming();
        throw error;
      });
    if (resolution.principal.kind === 'anonymous' && !options.allowAnonymous) {
      incoming();
      throw new AccessError('UNAUTHENTICATED');
    }
    request.tenantry = resolution as Resolution<unknown>;
    // the HTTP server span (an OpenTelemetry instrumentation's), and the per-tenant metrics
    activeTelemetry()?.requestTenant(resolution.tenantId);
    // the request's own lines (the framework's "request completed", errors) name the tenant too
    tagRequestLogger(request.log, logContextOf(request.id, resolution));
    incoming();
  });
  scope.addHook('onResponse', (request, reply, done) => {
    // refused requests too (no tenant): the metrics count them apart from any tenant's
    activeTelemetry()?.requestEnded(request.tenantry?.tenantId, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  scope.addHook('onRoute', (route) => {
    route.config = { ...(route.config as object | undefined), [TENANT_ROUTE]: true } as typeof route.config;
    const handler = route.handler as RouteHandlerMethod;
    route.handler = function tenantHandler(this: FastifyInstance, request, reply) {
      const resolution = request.tenantry;
      if (!resolution) throw new AccessError('UNAUTHENTICATED');
      // a client that goes away: its statements not yet sent are not sent, running ones cancelled
      const run = () =>
        runAs(
          resolution.tenantId,
          () =>
            runWithLogContext(logContextOf(request.id, resolution), async () => {
              if (audit)
                await auditStaffRequest(audit, resolution, { method: request.method, route: request.routeOptions.url });
              return handler.call(this, request, reply);
            }),
          { signal: disconnectSignal(reply.raw) },
        );
      const telemetry = activeTelemetry();
      if (telemetry === undefined) return run();
      // the handler's span: its statements' parent, under the HTTP server span when there is one
      return telemetry.span(
        'tenantry.request',
        {
          'tenant.id': resolution.tenantId,
          'http.request.method': request.method,
          'http.route': request.routeOptions.url,
        },
        run,
      );
    };
  });
}

function logContextOf(requestId: string, resolution: Resolution<unknown>): LogContext {
  return { requestId, actor: actorOf(resolution.principal), tenantId: resolution.tenantId };
}

/** The resolution of a tenant route; throws if called elsewhere (a wiring bug). */
export function resolutionOf<M = unknown>(request: FastifyRequest): Resolution<M> {
  if (!request.tenantry) throw new Error('resolutionOf() called outside a tenant route');
  return request.tenantry as Resolution<M>;
}
