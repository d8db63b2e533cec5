import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { TenantResolver, type TenantPool, type TxtResolver } from 'tenantry';
import { isTenantRoute } from 'tenantry/fastify';
import { accessRoutes } from './access/access-routes.js';
import { memberLookup, type Member } from './auth/member-context.js';
import { memberRoutes } from './members/member-routes.js';
import { staffRoutes } from './staff/staff-routes.js';
import { consoleRoutes, type ConsoleOptions } from './console/console-routes.js';
import { authRoutes } from './auth/auth-routes.js';
import { tenantScope } from './auth/tenant-scope.js';
import { TokenService, type TokenServiceOptions } from './auth/token-service.js';
import { clientErrorHandler } from './http/client-error-handler.js';
import { frameworkErrors, installErrorHandler } from './http/error-handler.js';
import { installJsonBodyParser } from './http/json-body-parser.js';
import { installQueryCheck } from './http/validation.js';
import { installRequestAuthorityCheck } from './http/request-authority.js';
import { meRoutes } from './members/me-routes.js';
import { recordingRoutes } from './recordings/recording-routes.js';
import type { DataPool } from './recordings/recording-store.js';
import { eventRoutes, type EventRoutesOptions } from './live/event-routes.js';
import type { TenantJobs } from 'tenantry/jobs';
import { DEFAULT_REQUEST_DEADLINE_MS, installRequestDeadline } from './http/request-deadline.js';
import { signUpRoutes } from './signup/sign-up-routes.js';
import { fastifyTenantRateLimit, type SignInThrottle, type TenantRateLimits } from 'tenantry/limits';
import type { TenantSignUp } from './signup/tenant-sign-up.js';
import { metricsRoute, type MetricsRegistry } from './http/metrics-route.js';
import type { UsageEverywhereOptions, UsageRecorder } from 'tenantry/metering';
import { usageRoutes } from './usage/usage-routes.js';
import { settingsRoutes, type SettingsRoutesOptions } from './settings/settings-routes.js';
import { staffFlagRoutes } from './settings/flag-routes.js';
import { brandAdminRoutes, brandPageRoutes, type BrandingOptions } from './branding/brand-routes.js';
import { fastifyPluginRoutes, type PluginHost } from 'tenantry/plugins';

/** Options of {@link buildServer}. */
export interface ServerOptions {
  /**
   * A TenantPool connected as the APP role to the home database: identity, memberships, keys,
   * domains, the audit log (the control plane, which never moves).
   */
  appPool: TenantPool;
  /**
   * Where tenant data is read and written (recordings): a RoutedTenantPool as the app role, so
   * each tenant's statements go to its placement (shared, schema or database tier, any cluster).
   * Default: `appPool` (every tenant in the home database's shared tables).
   */
  dataPool?: DataPool;
  /** A TenantPool connected as the read-only SUPPORT role: staff's audited cross-tenant reads. Optional. */
  supportPool?: TenantPool;
  /** HS256 secret of the access tokens (≥ 32 characters). */
  jwtSecret: string;
  /** Tenants by host: `<slug>.<baseDomain>` and verified custom domains (off when omitted). */
  host?: { baseDomain?: string; customDomains?: boolean };
  /** DNS TXT lookups for domain verification (tests pass a fake; node's resolver by default). */
  resolveTxt?: TxtResolver;
  /**
   * A pino logger (see createLogger: secrets redacted, `tenant_id`/request id/actor on every line
   * of a tenant request, PII scrubbed by value); no logging when omitted.
   */
  logger?: Logger;
  /** Token lifetime, issuer, audience. */
  tokens?: TokenServiceOptions;
  /** Live channels: `GET /events` (SSE) over this event bus; the route is absent without it. */
  events?: EventRoutesOptions;
  /**
   * How long a request may take (default 10 s): past it, 504 DEADLINE_EXCEEDED, and its
   * statements are not sent or are cancelled. A client that disconnects aborts them too.
   */
  requestDeadlineMs?: number;
  /** `POST /sign-up` (public): onboards a tenant and invites its owner; the route is absent without it. */
  signUp?: TenantSignUp;
  /**
   * The database is a Citus coordinator (TENANTRY_CITUS=1, docs/citus.md): recordings' live events
   * are published by the routes after each write commits (the row trigger that writes them is
   * dropped there), and the membership lookup reads members and the tenant in two statements.
   */
  citus?: boolean;
  /** Background jobs: a new recording is processed by `recording.process` (app/jobs). Optional. */
  jobs?: Pick<TenantJobs, 'enqueue'>;
  /**
   * `GET /metrics` (Prometheus): the per-tenant metrics' registry, served only to the bearer
   * `token` (see app/observe/telemetry-from-env.ts). The route is absent without it.
   */
  metrics?: { registry: MetricsRegistry; token: string };
  /** Usage metering: each tenant request is recorded (`requests`). `GET /usage` works without it. */
  usage?: UsageRecorder;
  /**
   * `GET /usage` reads every database the tenant lives or has lived in (owner connections to the
   * catalog and the placements); without it, the home database only.
   */
  usageEverywhere?: UsageEverywhereOptions;
  /**
   * Rate limits (tenantry/limits): `api` counts every tenant-route request against the tenant's
   * plan (429 RATE_LIMITED with Retry-After), and its `export` and `move` limits the usage export
   * (`GET /usage/events`) and the console's moves; `signIn` / `staffSignIn` throttle the sign-ins,
   * `invitations` `POST /invitations/accept` (it checks passwords too) and `signUp` `POST /sign-up`
   * (the onboarding limit), per account and address. Each is off when omitted.
   */
  limits?: {
    api?: TenantRateLimits;
    signIn?: SignInThrottle;
    staffSignIn?: SignInThrottle;
    invitations?: SignInThrottle;
    signUp?: SignInThrottle;
  };
  /** Per-tenant settings and flags (`GET/PUT /settings…`); the routes are absent without it. */
  settings?: SettingsRoutesOptions;
  /**
   * Per-tenant branding: the branded `GET /sign-in` and `GET /brand/logo` by host, and the
   * `/brand` admin API (docs/branding.md); the routes are absent without it.
   */
  branding?: BrandingOptions;
  /**
   * Plugins per tenant (tenantry/plugins, app/plugins): their routes in the tenant scope (404 for
   * a tenant without the plugin), and the events recordings raise (`recording.created`).
   */
  plugins?: PluginHost;
  /** The operator console at `/console` (staff only, docs/console.md); absent without it. */
  console?: ConsoleOptions;
  /**
   * Fastify's `trustProxy`: which proxies' X-Forwarded-For names the client (see
   * app/http/trust-proxy.ts). Default false: the socket's address is the client's.
   */
  trustProxy?: boolean | number | string;
}

/**
 * Fastify's request lines, but the "incoming request" line of a tenant route is written by the
 * adapter once the tenant is resolved (`logIncomingRequest`), so that it names the tenant like the
 * request's other lines: Fastify writes its own before any hook, when no tenant is known yet.
 */
class TenantLogController extends LogController {
  override incomingRequest(request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (isTenantRoute(request)) return;
    super.incomingRequest(request, reply, metadata);
  }
}

/**
 * The reference server: a JSON API over a TenantPool (the home database: identity and the
 * control plane) and a data pool (tenant data, routed to each tenant's placement).
 *
 * - Public: `POST /auth/sign-in`, `POST /invitations/accept`, `POST /staff/sign-in`, `POST /sign-up`.
 * - Staff routes (staff token): access grants with a reason, audited support reads.
 * - Every other route lives in the tenant scope: the library's TenantResolver finds the tenant
 *   (token, API key, host, staff's X-Tenant; conflicts refused), checks the session, the tenant's
 *   status and the membership (or the staff grant) on every request, and the handler runs inside
 *   `runAs(tenant)`.
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
    // what Fastify and Node answer on their own (bad URL, headers too large…) keeps the error shape
    frameworkErrors,
    clientErrorHandler,
    // Node answers an HTTP/1.1 request without Host itself, 400 with an empty body: let it through
    // to the authority check, which answers it in the API's shape (HOST_INVALID)
    http: { requireHostHeader: false },
    logController: new TenantLogController(),
    // a number of hops is accepted by Fastify (proxy-addr), though its types list only string | boolean
    trustProxy: (options.trustProxy ?? false) as boolean | string,
  }) as unknown as FastifyInstance;
  app.decorateRequest('member', null);
  installErrorHandler(app);
  installRequestAuthorityCheck(app);
  installJsonBodyParser(app);
  installQueryCheck(app);
  installRequestDeadline(app, { deadlineMs: options.requestDeadlineMs ?? DEFAULT_REQUEST_DEADLINE_MS });
  const resolver = new TenantResolver<Member>({
    pool: appPool,
    tokens: tokens.verifier,
    membership: memberLookup(appPool, { separate: options.citus === true }),
    ...(options.host ? { host: options.host } : {}),
  });

  if (options.metrics) metricsRoute(app, options.metrics);
  authRoutes(app, {
    appPool,
    tokens,
    throttle: options.limits?.signIn,
    invitationThrottle: options.limits?.invitations,
  });
  if (options.signUp) signUpRoutes(app, { signUp: options.signUp, throttle: options.limits?.signUp });
  if (options.branding) brandPageRoutes(app, { ...options.branding, resolver: resolver as TenantResolver<unknown> });
  staffRoutes(app, {
    appPool,
    supportPool: options.supportPool,
    tokens,
    throttle: options.limits?.staffSignIn,
    ...(options.citus ? { citus: true } : {}),
  });
  if (options.settings?.flagsAdmin) staffFlagRoutes(app, { flagsAdmin: options.settings.flagsAdmin, appPool, tokens });
  if (options.console)
    consoleRoutes(app, {
      ...options.console,
      appPool,
      tokens,
      secret: options.jwtSecret,
      throttle: options.limits?.staffSignIn,
      ...(options.limits?.api ? { limits: options.limits.api } : {}),
    });
  app.register(async (scope) => {
    tenantScope(scope, { appPool, resolver });
    // after the resolver's onRequest: the tenant is known, the body not yet read
    if (options.limits?.api) fastifyTenantRateLimit(scope, { limits: options.limits.api });
    meRoutes(scope);
    memberRoutes(scope, { appPool });
    accessRoutes(scope, {
      appPool,
      resolveTxt: options.resolveTxt,
      ...(options.host?.baseDomain ? { baseDomain: options.host.baseDomain } : {}),
    });
    usageRoutes(scope, {
      appPool,
      usage: options.usage,
      limits: options.limits?.api,
      everywhere: options.usageEverywhere,
    });
    recordingRoutes(scope, {
      dataPool: options.dataPool ?? appPool,
      events: options.events?.bus,
      ...(options.citus ? { publishWrites: true } : {}),
      jobs: options.jobs,
      plugins: options.plugins,
    });
    if (options.plugins) fastifyPluginRoutes(scope, options.plugins);
    if (options.settings) settingsRoutes(scope, options.settings);
    if (options.branding) brandAdminRoutes(scope, options.branding);
    if (options.events) eventRoutes(scope, { resolver: resolver as TenantResolver<unknown>, ...options.events });
  });
  return app;
}
