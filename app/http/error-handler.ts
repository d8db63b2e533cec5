import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DatabaseUnavailableError, TenantryError } from 'tenantry';
import { ApiError } from './api-error.js';

/** The body of every error answer. */
export interface ErrorBody {
  error: { code: string; message?: string; field?: string };
}

// Fastify's own client errors (bad JSON, wrong content type, body too large…), by status
const CLIENT_ERRORS: Record<number, { code: string; message: string; field?: string }> = {
  400: { code: 'VALIDATION_FAILED', message: 'The request body is not valid JSON', field: 'body' },
  413: { code: 'PAYLOAD_TOO_LARGE', message: 'The request body is too large' },
  415: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Send the body as application/json' },
};

/** Seconds a client waits before retrying while the database is down (restarts take a few seconds). */
const DATABASE_RETRY_AFTER_SECONDS = 5;

/**
 * Installs the error answers: known errors map to their status and code; anything else is a
 * generic 500 `{ error: { code: 'INTERNAL' } }` with no detail (the detail goes to the log).
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = toErrorAnswer(error);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    if (status === 401) reply.header('www-authenticate', 'Bearer');
    if (body.error.code === 'DATABASE_UNAVAILABLE') reply.header('retry-after', String(DATABASE_RETRY_AFTER_SECONDS));
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).send({ error: { code: 'ROUTE_NOT_FOUND', message: 'No such route' } } satisfies ErrorBody),
  );
}

/** The status and body an error is answered with. */
export function toErrorAnswer(error: unknown): { status: number; body: ErrorBody } {
  if (error instanceof ApiError) {
    return {
      status: error.status,
      body: { error: withField({ code: error.code, message: error.message }, error.field) },
    };
  }
  // the database is down, restarting or unreachable: a 503 the client retries, not a 500
  const unavailable = DatabaseUnavailableError.from(error);
  if (unavailable) {
    return { status: 503, body: { error: { code: unavailable.code, message: unavailable.message } } };
  }
  if (error instanceof TenantryError) {
    if (error.status >= 500) return { status: error.status, body: { error: { code: error.code } } };
    const field = typeof error.details.field === 'string' ? error.details.field : undefined;
    return { status: error.status, body: { error: withField({ code: error.code, message: error.message }, field) } };
  }
  const statusCode = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    const known = CLIENT_ERRORS[statusCode] ?? { code: 'BAD_REQUEST', message: 'The request is malformed' };
    return {
      status: statusCode,
      body: { error: withField({ code: known.code, message: known.message }, known.field) },
    };
  }
  return { status: 500, body: { error: { code: 'INTERNAL' } } };
}

function withField(error: { code: string; message: string }, field: string | undefined): ErrorBody['error'] {
  return field === undefined ? error : { ...error, field };
}
