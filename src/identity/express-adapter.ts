import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { runAs } from '../context/tenant-context.js';
import { disconnectSignal } from '../context/disconnect-signal.js';
import { actorOf, runWithLogContext } from '../observe/log-context.js';
import { TenantryError } from '../errors/tenantry-error.js';
import { activeTelemetry } from '../telemetry/telemetry-hooks.js';
import { AccessError } from './access-error.js';
import { AuditLog } from './audit-log.js';
import { auditStaffRequest } from './staff-request-audit.js';
import type { Resolution, TenantResolver } from './tenant-resolver.js';

/** Options of {@link tenantMiddleware}. */
export interface ExpressTenantOptions<M> {
  resolver: TenantResolver<M>;
  /** Admit requests that name a tenant (by host) but carry no credentials. Default false: 401. */
  allowAnonymous?: boolean;
  /** A route parameter naming the tenant (mount the middleware on a path with it, e.g. `/t/:tenant`). */
  pathParam?: string;
  /** Write a `staff.request` audit entry for every request staff make as a tenant. Default true. */
  auditStaffRequests?: boolean;
}

/** Where the middleware leaves the resolution on Express's request. */
export const RESOLUTION = Symbol.for('tenantry.resolution');

/**
 * Express middleware: resolves the tenant and runs the rest of the chain inside `runAs(tenant)`,
 * with a signal that aborts if the client disconnects (see `disconnectSignal`).
 * Mount it AFTER body parsers: a parser that reads the body from stream events resumes in the
 * socket's async context and would drop the tenant for what follows it.
 *
 * @example
 * app.use(express.json());
 * app.use('/api', tenantMiddleware({ resolver }));
 * app.get('/api/recordings', async (req, res) => res.json((await pool.query('select * from recordings')).rows));
 * app.use(tenantryErrorHandler());
 */
export function tenantMiddleware<M>(options: ExpressTenantOptions<M>): RequestHandler {
  const { resolver, pathParam } = options;
  const audit = options.auditStaffRequests === false ? undefined : new AuditLog(resolver.pool);
  return (request, response, next) => {
    let tenantId: string | undefined;
    if (activeTelemetry() !== undefined) {
      // the per-tenant request metrics: once the response is written, refused requests too
      const started = performance.now();
      response.once('finish', () =>
        activeTelemetry()?.requestEnded(tenantId, response.statusCode, (performance.now() - started) / 1000),
      );
    }
    resolver
      .resolve({
        host: request.headers.host,
        headers: request.headers,
        // Node keeps one of two Authorization headers and joins two X-Tenant: the raw list shows both
        rawHeaders: request.rawHeaders,
        // as received (req.url is rewritten under a mount path): an absolute-form target's host is checked against Host
        target: request.originalUrl,
        pathTenant: pathParam ? (request.params as Record<string, string | undefined>)[pathParam] : undefined,
        method: request.method,
        path: request.baseUrl,
      })
      .then(async (resolution) => {
        if (resolution.principal.kind === 'anonymous' && !options.allowAnonymous)
          throw new AccessError('UNAUTHENTICATED');
        (request as Request & { [RESOLUTION]?: Resolution<unknown> })[RESOLUTION] = resolution as Resolution<unknown>;
        tenantId = resolution.tenantId;
        activeTelemetry()?.requestTenant(resolution.tenantId);
        // lines written by the rest of the chain (any logger) name the request and its actor
        const logContext = {
          requestId: typeof (request as { id?: unknown }).id === 'string' ? (request as { id?: string }).id : undefined,
          actor: actorOf(resolution.principal),
        };
        // a client that goes away: its statements not yet sent are not sent, running ones cancelled
        const chain = () =>
          runAs(
            resolution.tenantId,
            () =>
              runWithLogContext(logContext, async () => {
                if (audit)
                  await auditStaffRequest(audit, resolution as Resolution<unknown>, {
                    method: request.method,
                    route: request.baseUrl + request.path,
                  });
                next();
              }),
            { signal: disconnectSignal(response) },
          );
        const telemetry = activeTelemetry();
        if (telemetry === undefined) return chain();
        // the rest of the chain in a tenantry.request span (the parent of its statements, under the
        // HTTP server span when there is one), ended when the response is written or abandoned:
        // Express's next() returns before an async handler is done
        let chained = false;
        await telemetry
          .span(
            'tenantry.request',
            { 'tenant.id': resolution.tenantId, 'http.request.method': request.method },
            async (annotate) => {
              const ended = new Promise<number>((resolve) => {
                const done = () => resolve(response.statusCode);
                response.once('finish', done);
                response.once('close', done);
              });
              await chain();
              chained = true;
              const status = await ended;
              // the route Express matched, known only now (a path template, never the path itself)
              const route = (request as Request & { route?: { path?: unknown } }).route?.path;
              annotate({
                'http.response.status_code': status,
                ...(typeof route === 'string' ? { 'http.route': request.baseUrl + route } : {}),
              });
              if (status >= 500) throw new ExpressServerError(status);
            },
          )
          .catch((error: unknown) => {
            // a failure before the chain ran is the request's (to the error handler); after it, the
            // answer is already written and the span has recorded it
            if (!chained) throw error;
          });
      })
      .catch(next);
  };
}

/** A span's error for a request answered 5xx (its `error.type` is the code, never a message). */
class ExpressServerError extends Error {
  readonly code: string;
  constructor(status: number) {
    super(`answered ${status}`);
    this.name = 'ExpressServerError';
    this.code = `HTTP_${status}`;
  }
}

/** The resolution the middleware found for this request; throws outside it (a wiring bug). */
export function resolutionOfRequest<M = unknown>(request: Request): Resolution<M> {
  const resolution = (request as Request & { [RESOLUTION]?: Resolution<unknown> })[RESOLUTION];
  if (!resolution) throw new Error('resolutionOfRequest() called outside tenantMiddleware');
  return resolution as Resolution<M>;
}

/**
 * Answers Tenantry's errors with their status and `{ error: { code, message } }` (a generic 500
 * `{ error: { code: 'INTERNAL' } }` for anything else or any 5xx). Never echoes credentials.
 */
export function tenantryErrorHandler(): ErrorRequestHandler {
  return (error, _request, response, next) => {
    if (response.headersSent) return next(error);
    if (error instanceof TenantryError && error.status < 500) {
      if (error.status === 401) response.setHeader('www-authenticate', 'Bearer');
      // 429 (tenantry/limits' RATE_LIMITED): when to try again
      if (error.status === 429 && typeof error.details.retryAfterSeconds === 'number')
        response.setHeader('retry-after', String(error.details.retryAfterSeconds));
      return response.status(error.status).json({ error: { code: error.code, message: error.message } });
    }
    // another library's client error (express.json on bad JSON, a body too large…) keeps its status
    const clientStatus =
      (error as { status?: unknown; statusCode?: unknown } | null)?.status ??
      (error as { statusCode?: unknown } | null)?.statusCode;
    if (
      !(error instanceof TenantryError) &&
      typeof clientStatus === 'number' &&
      clientStatus >= 400 &&
      clientStatus < 500
    ) {
      // a fixed sentence by status: body-parser's messages may quote the body
      const [code, message] = CLIENT_ERRORS[clientStatus] ?? CLIENT_ERRORS[400]!;
      return response.status(clientStatus).json({ error: { code, message } });
    }
    // a PostgreSQL data exception (NUL in text, a number out of range) is the input's fault
    if (isDataException(error))
      return response.status(400).json({ error: { code: 'BAD_REQUEST', message: CLIENT_ERRORS[400]![1] } });
    const status = error instanceof TenantryError ? error.status : 500;
    return response.status(status).json({ error: { code: error instanceof TenantryError ? error.code : 'INTERNAL' } });
  };
}

const CLIENT_ERRORS: Record<number, [string, string]> = {
  400: ['BAD_REQUEST', 'The request is malformed'],
  413: ['PAYLOAD_TOO_LARGE', 'The request body is too large'],
  415: ['UNSUPPORTED_MEDIA_TYPE', 'The request body has a media type or charset this route does not read'],
};

// SQLSTATE class 22 (data exception), on a pg error (which carries `severity`)
function isDataException(error: unknown): boolean {
  const { code, severity } = (error ?? {}) as { code?: unknown; severity?: unknown };
  return typeof code === 'string' && /^22[0-9A-Z]{3}$/.test(code) && typeof severity === 'string';
}
