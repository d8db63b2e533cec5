import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Queryable } from 'tenantry';
import type { TokenService } from '../auth/token-service.js';
import { ApiError } from '../http/api-error.js';
import { verifyStaffToken } from '../staff/staff-routes.js';

/** The console's session cookie: a console token of a staff session (not a bearer token), readable by no script, sent only to /console. */
export const CONSOLE_COOKIE = 'tenantry_console';

/** The staff member behind a console request. */
export interface ConsoleStaff {
  userId: string;
  sessionId: string;
}

/**
 * The CSRF token of a console session: an HMAC of the session id under the server's secret.
 * Written by hand because it is three lines: a double-submit cookie (@fastify/csrf-protection)
 * would add a second cookie and secret to rotate, where this token dies with the session it
 * belongs to (a signed-out session's token is worthless) and needs no storage.
 */
export function csrfToken(secret: string, sessionId: string): string {
  return createHmac('sha256', secret).update(`tenantry-console-csrf:${sessionId}`).digest('base64url');
}

function sameToken(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Sets the session cookie: HttpOnly, SameSite=Strict, Path=/console, Secure when the request came over TLS. */
export function setSessionCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  token: string,
  ttlSeconds: number,
): void {
  reply.setCookie(CONSOLE_COOKIE, token, {
    path: '/console',
    httpOnly: true,
    sameSite: 'strict',
    secure: request.protocol === 'https',
    maxAge: ttlSeconds,
  });
}

export function clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
  reply.clearCookie(CONSOLE_COOKIE, {
    path: '/console',
    httpOnly: true,
    sameSite: 'strict',
    secure: request.protocol === 'https',
  });
}

/**
 * The staff member of a console API request, or an ApiError: a valid staff session cookie and,
 * for every state change, the session's CSRF token in `X-CSRF-Token` (and, where the browser
 * sends one, an Origin naming this server).
 */
export async function consoleStaff(
  request: FastifyRequest,
  options: { appPool: Queryable; tokens: TokenService; secret: string },
): Promise<ConsoleStaff> {
  const token = request.cookies[CONSOLE_COOKIE];
  if (!token) throw new ApiError(401, 'UNAUTHENTICATED', 'Sign in to the console');
  const staff = await verifyStaffToken(token, options.appPool, options.tokens, 'console');
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    const origin = request.headers.origin;
    if (origin !== undefined && origin !== `${request.protocol}://${request.host}`)
      throw new ApiError(403, 'CSRF_REFUSED', 'This request came from another site');
    requireCsrf(request, options.secret, staff.sessionId);
  }
  return staff;
}

/** Refuses a request without the session's CSRF token in `X-CSRF-Token` (403 CSRF_REFUSED). */
export function requireCsrf(request: FastifyRequest, secret: string, sessionId: string): void {
  const sent = request.headers['x-csrf-token'];
  if (typeof sent !== 'string' || !sameToken(sent, csrfToken(secret, sessionId)))
    throw new ApiError(403, 'CSRF_REFUSED', 'Send the session CSRF token in X-CSRF-Token');
}
