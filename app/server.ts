import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { TenantPool } from '../src/index.js';
import { authRoutes } from './auth/auth-routes.js';
import { tenantScope } from './auth/tenant-scope.js';
import { TokenService, type TokenServiceOptions } from './auth/token-service.js';
import { installErrorHandler } from './http/error-handler.js';
import { meRoutes } from './members/me-routes.js';
import { recordingRoutes } from './recordings/recording-routes.js';
import { eventRoutes, type EventRoutesOptions } from './live/event-routes.js';

/** Options of {@link buildServer}. */
export interface ServerOptions {
  /** A TenantPool connected as the APP role: the only database access of the request path. */
  appPool: TenantPool;
  /** HS256 secret of the access tokens (≥ 32 characters). */
  jwtSecret: string;
  /** A pino logger (see createLogger, which redacts secrets); no logging when omitted. */
  logger?: Logger;
  /** Token lifetime, issuer, audience. */
  tokens?: TokenServiceOptions;
  /** Live channels: `GET /events` (SSE) over this event bus; the route is absent without it. */
  events?: EventRoutesOptions;
}

/**
 * The reference server: a JSON API over one TenantPool.
 *
 * - `POST /auth/sign-in` is public.
 * - Every other route lives in the tenant scope: bearer token verified, then the handler runs
 *   inside `runAs(token.tid)` after the tenant (404 / 403) and membership (403) checks.
 *
 * @example
 * const app = buildServer({ appPool, jwtSecret });
 * await app.listen({ port: 3000, host: '127.0.0.1' });
 */
export function buildServer(options: ServerOptions): FastifyInstance {
  const tokens = new TokenService(options.jwtSecret, options.tokens);
  const { appPool } = options;
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: 64 * 1024,
    // ids come from the path: refuse absurd ones before routing
    routerOptions: { maxParamLength: 100 },
  }) as unknown as FastifyInstance;
  app.decorateRequest('auth', null);
  app.decorateRequest('member', null);
  installErrorHandler(app);

  authRoutes(app, { appPool, tokens });
  app.register(async (scope) => {
    tenantScope(scope, { appPool, tokens });
    meRoutes(scope);
    recordingRoutes(scope, { appPool, events: options.events?.bus });
    if (options.events) eventRoutes(scope, options.events);
  });
  return app;
}
