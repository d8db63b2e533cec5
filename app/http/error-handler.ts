import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DatabaseUnavailableError, TenantryError } from 'tenantry';
import { ApiError } from './api-error.js';

/** The body of every error answer. */
export interface ErrorBody {
  error: { code: string; message?: string; field?: string };
}

/** A fixed answer: its status, stable code and message never carry anything the client sent. */
export interface ErrorAnswer {
  status: number;
  code: string;
  message: string;
  field?: string;
}

/** Fastify's own errors, by their code (their messages echo the URL or the body: never sent). */
export const FRAMEWORK_ERRORS: Record<string, ErrorAnswer> = {
  FST_ERR_CTP_INVALID_JSON_BODY: {
    status: 400,
    code: 'VALIDATION_FAILED',
    message: 'The request body is not valid JSON',
    field: 'body',
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    status: 400,
    code: 'VALIDATION_FAILED',
    message: 'The request body is empty: send a JSON object',
    field: 'body',
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    message: 'Send the body as application/json',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    code: 'BAD_REQUEST',
    message: 'Content-Length does not match the body',
  },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'PAYLOAD_TOO_LARGE', message: 'The request body is too large' },
  FST_ERR_BAD_URL: { status: 400, code: 'BAD_URL', message: 'The URL is not valid (malformed percent-encoding)' },
  FST_ERR_MAX_PARAM_LENGTH: { status: 414, code: 'URI_TOO_LONG', message: 'A path segment of the URL is too long' },
};

/** Any other client error, by status (another library's, or one Fastify adds later). */
export const CLIENT_STATUS_ERRORS: Record<number, ErrorAnswer> = {
  400: { status: 400, code: 'BAD_REQUEST', message: 'The request is malformed' },
  404: { status: 404, code: 'ROUTE_NOT_FOUND', message: 'No such route' },
  405: { status: 405, code: 'METHOD_NOT_ALLOWED', message: 'The route does not accept this method' },
  408: { status: 408, code: 'REQUEST_TIMEOUT', message: 'The request took too long to arrive' },
  413: { status: 413, code: 'PAYLOAD_TOO_LARGE', message: 'The request body is too large' },
  414: { status: 414, code: 'URI_TOO_LONG', message: 'The URL is too long' },
  415: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Send the body as application/json' },
  431: { status: 431, code: 'HEADERS_TOO_LARGE', message: 'The request headers are too large' },
};

/**
 * PostgreSQL errors by SQLSTATE (exact code first, then its two-character class). A last line of
 * defence: the validation layer refuses such input first. Class 22 (data exception: NUL in text,
 * a number or date out of range, invalid text representation) means the request carried a value
 * the database cannot take: a 400, not a 500. Extend here (e.g. class 08/57 → 503).
 */
export const SQLSTATE_ERRORS: Record<string, ErrorAnswer> = {
  '22': {
    status: 400,
    code: 'VALIDATION_FAILED',
    message: 'A value of the request is out of range or is not storable text',
  },
};

/** Seconds a client waits before retrying while the database is down (restarts take a few seconds). */
const DATABASE_RETRY_AFTER_SECONDS = 5;

/**
 * Installs the error answers: known errors map to their status and code; anything else is a
 * generic 500 `{ error: { code: 'INTERNAL' } }` with no detail (the detail goes to the log).
 * Pair it with {@link frameworkErrors} (Fastify's `frameworkErrors` option) and the client error
 * handler, so nothing Fastify or Node answers on its own leaves the `{ error: { code, message } }`
 * shape.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = toErrorAnswer(error);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    else if (sqlStateOfChain(error) !== undefined) request.log.warn({ err: error }, 'database refused a value');
    if (status === 401) reply.header('www-authenticate', 'Bearer');
    // 503: try again later (the database down or restarting, no connection free in time)
    if (status === 503) reply.header('retry-after', String(DATABASE_RETRY_AFTER_SECONDS));
    // 429 (tenantry/limits' RATE_LIMITED): when to try again
    const retryAfter = error instanceof TenantryError ? error.details.retryAfterSeconds : undefined;
    if (status === 429 && typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send(answerBody(CLIENT_STATUS_ERRORS[404]!)));
}

/** Fastify's `frameworkErrors` option: errors raised before routing (bad URL, a too-long parameter). */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const { status, body } = toErrorAnswer(error);
  void reply.code(status).send(body);
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
  const known = knownAnswer(error);
  if (known) return { status: known.status, body: answerBody(known) };
  return { status: 500, body: { error: { code: 'INTERNAL' } } };
}

function knownAnswer(error: unknown): ErrorAnswer | undefined {
  const fastifyCode = (error as { code?: unknown } | null)?.code;
  if (typeof fastifyCode === 'string' && Object.hasOwn(FRAMEWORK_ERRORS, fastifyCode))
    return FRAMEWORK_ERRORS[fastifyCode];
  const sqlState = sqlStateOfChain(error);
  if (sqlState !== undefined) return SQLSTATE_ERRORS[sqlState] ?? SQLSTATE_ERRORS[sqlState.slice(0, 2)];
  const statusCode = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500)
    return CLIENT_STATUS_ERRORS[statusCode] ?? { ...CLIENT_STATUS_ERRORS[400]!, status: statusCode };
  return undefined;
}

// a pg error carries its SQLSTATE in `code` (and a `severity`); wrappers keep it as `cause`
function sqlStateOfChain(error: unknown): string | undefined {
  for (
    let e = error, depth = 0;
    e && typeof e === 'object' && depth < 5;
    e = (e as { cause?: unknown }).cause, depth++
  ) {
    const { code, severity } = e as { code?: unknown; severity?: unknown };
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && typeof severity === 'string') return code;
  }
  return undefined;
}

function answerBody(answer: ErrorAnswer): ErrorBody {
  return { error: withField({ code: answer.code, message: answer.message }, answer.field) };
}

function withField(error: { code: string; message: string }, field: string | undefined): ErrorBody['error'] {
  return field === undefined ? error : { ...error, field };
}
