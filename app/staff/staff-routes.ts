import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  bearerCredential,
  isTenantId,
  Sessions,
  sqlStateOf,
  StaffAccess,
  TenantNotFoundError,
  type Queryable,
} from 'tenantry';
import type { SignInThrottle } from 'tenantry/limits';
import type { TokenService } from '../auth/token-service.js';
import { ApiError } from '../http/api-error.js';
import { throttledAttempt } from '../http/client-address.js';
import { int, parseInput, text, uuid } from '../http/validation.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified staff caller of a staff route. */
    staff: { userId: string; sessionId: string } | null;
  }
}

const tenantName = text().regex(
  /^(?:[0-9a-fA-F-]{36}|[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)$/,
  'tenant must be a tenant id or slug',
);
export const signInBody = z
  .object({ email: text().trim().toLowerCase().min(3).max(254), password: text().min(1).max(72) })
  .strict();
const accessBody = z
  .object({
    tenant: tenantName,
    access: z.enum(['act_as', 'read']).default('act_as'),
    // the library's rule (StaffAccess.checkReason): visible characters, one code, REASON_INVALID;
    // storable text is this layer's (a NUL would reach PostgreSQL)
    reason: text(),
    minutes: int(1, 480).default(30),
  })
  .strict();
const grantParams = z.object({ grantId: uuid() });
const summaryBody = z.object({ reason: text() }).strict();
const tenantParams = z.object({ tenant: tenantName });

/**
 * Staff routes. Staff are members of no tenant: they sign in to no tenant, then open an access
 * grant on one tenant with a reason for a bounded time (written to that tenant's audit log),
 * and act as it with `X-Tenant: <slug>` on the tenant routes. Support reads go through the
 * support role (SELECT only, admitted by the database only while a read grant is open).
 * - `POST /staff/sign-in` (public), `POST /staff/sign-out`
 * - `POST /staff/access` { tenant, access, reason, minutes } → grant; `DELETE /staff/access/:grantId`
 * - `POST /staff/tenants/:tenant/summary` { reason }: an audited cross-tenant read (counts only);
 *   501 NOT_ON_CITUS on a Citus coordinator (docs/citus.md)
 */
export function staffRoutes(
  app: FastifyInstance,
  options: {
    appPool: Queryable;
    supportPool?: Queryable;
    tokens: TokenService;
    throttle?: SignInThrottle;
    /**
     * The database is a Citus coordinator: support reads are refused (501 NOT_ON_CITUS). The
     * support role's grant check reads tables of the coordinator alone (staff grants, sessions,
     * staff), which the workers evaluating the policy do not have.
     */
    citus?: boolean;
  },
): void {
  const { appPool, tokens } = options;
  const staff = new StaffAccess({ appPool, supportPool: options.supportPool });
  const sessions = new Sessions(appPool);

  app.post('/staff/sign-in', async (request) => {
    const { email, password } = parseInput(signInBody, request.body, 'body');
    const signedIn = await staffSignIn(appPool, tokens, email, password, {
      throttle: options.throttle,
      request,
    });
    return { token: signedIn.token, tokenType: 'Bearer', expiresIn: tokens.ttlSeconds, userId: signedIn.userId };
  });

  app.register(async (scope) => {
    if (!scope.hasRequestDecorator('staff')) scope.decorateRequest('staff', null);
    scope.addHook('onRequest', async (request) => {
      request.staff = await verifyStaff(request, appPool, tokens);
    });

    scope.post('/staff/sign-out', async (request, reply) => {
      await sessions.end(request.staff!.sessionId);
      return reply.code(204).send();
    });

    scope.post('/staff/access', async (request, reply) => {
      const body = parseInput(accessBody, request.body, 'body');
      StaffAccess.checkReason(body.reason);
      const tenantId = await tenantIdOf(appPool, body.tenant);
      const grant = await staff.begin({
        sessionId: request.staff!.sessionId,
        tenantId,
        access: body.access,
        reason: body.reason,
        minutes: body.minutes,
      });
      return reply.code(201).send({ ...grant, tenantId, access: body.access });
    });

    scope.delete('/staff/access/:grantId', async (request, reply) => {
      const { grantId } = parseInput(grantParams, request.params, 'params');
      if (!(await staff.end({ sessionId: request.staff!.sessionId, grantId })))
        throw new ApiError(404, 'NOT_FOUND', 'No open grant with this id');
      return reply.code(204).send();
    });

    scope.post('/staff/tenants/:tenant/summary', async (request) => {
      const { tenant } = parseInput(tenantParams, request.params, 'params');
      const { reason } = parseInput(summaryBody, request.body, 'body');
      StaffAccess.checkReason(reason); // refused before the tenant is looked up, like /staff/access
      if (!options.supportPool) throw new ApiError(501, 'NOT_CONFIGURED', 'Support reads need the support role');
      if (options.citus)
        throw new ApiError(
          501,
          'NOT_ON_CITUS',
          "Support reads are off on Citus: the support role's grant check reads staff grants kept on the coordinator only, which the workers cannot see",
        );
      const tenantId = await tenantIdOf(appPool, tenant);
      return staff.read({ sessionId: request.staff!.sessionId, tenantId, reason, minutes: 5 }, async (db) => {
        // memberships are pinned to the home database: readable whatever the tenant's tier
        const members = await db.query<{ members: number }>(
          `select count(*)::int as members from public.members where tenant_id = tenantry.home_tenant_id() and removed_at is null`,
        );
        // recordings follow the tenant: the home database refuses them (TR003) once it lives in
        // its own schema, database or cluster, where no staff grant reaches (support reads stay home)
        const data = await db
          .query<{ recordings: number; seconds: number }>(
            `select count(*)::int as recordings, coalesce(sum(duration_seconds), 0)::int as seconds from public.recordings where tenant_id = tenantry.current_tenant_id()`,
          )
          .then(
            (r) => r.rows[0]!,
            (error: unknown) => {
              if (sqlStateOf(error) === 'TR003') return null;
              throw error;
            },
          );
        return {
          tenantId,
          members: members.rows[0]!.members,
          recordings: data?.recordings ?? null,
          totalDurationSeconds: data?.seconds ?? null,
          dataReadable: data !== null,
        };
      });
    });
  });
}

export async function verifyStaff(
  request: FastifyRequest,
  appPool: Queryable,
  tokens: TokenService,
): Promise<{ userId: string; sessionId: string }> {
  // the library's reading of Authorization: scheme in any case, refused when sent twice
  const token = bearerCredential({ headers: request.headers, rawHeaders: request.raw.rawHeaders });
  if (token === undefined || token === 'malformed')
    throw new ApiError(401, 'UNAUTHENTICATED', 'Send one staff token: Authorization: Bearer <token>');
  return verifyStaffToken(token, appPool, tokens);
}

/**
 * A staff token's caller, or an ApiError: the token verifies, is a staff token, and its session
 * is still open in the database (signed-out sessions are refused at once). The console's session
 * cookie holds a token of the same session but of another audience and kind (`use: 'console'`).
 */
export async function verifyStaffToken(
  token: string,
  appPool: Queryable,
  tokens: TokenService,
  use: 'bearer' | 'console' = 'bearer',
): Promise<{ userId: string; sessionId: string }> {
  // a bearer staff token and a console cookie are tokens of different audiences and kinds: each
  // is refused in the other's place (the verifier refuses the audience, this the kind)
  const { claims } = await (use === 'console' ? tokens.consoleVerifier : tokens.verifier).verify(token);
  if (claims.kind !== (use === 'console' ? 'console' : 'staff') || !isTenantId(claims.sub) || !isTenantId(claims.sid))
    throw new ApiError(403, 'STAFF_ONLY', 'This route is for staff');
  const { rows } = await appPool.query<{ session_user_id: string | null; session_kind: string | null }>(
    'select session_user_id, session_kind from tenantry.authorize_request(null, $1)',
    [claims.sid],
  );
  if (rows[0]?.session_kind !== 'staff' || rows[0].session_user_id !== claims.sub)
    throw new ApiError(401, 'SESSION_REVOKED', 'The session has ended: sign in again');
  return { userId: claims.sub, sessionId: claims.sid };
}

/**
 * Signs a staff member in (`app.staff_sign_in`): their id and a new session, or 401
 * INVALID_CREDENTIALS; with a throttle, 429 RATE_LIMITED past its attempts per account or address
 * (counted before the password is checked, see SignInThrottle).
 */
export async function staffSignIn(
  appPool: Queryable,
  tokens: TokenService,
  email: string,
  password: string,
  guard?: { throttle?: SignInThrottle | undefined; request: FastifyRequest; use?: 'bearer' | 'console' },
): Promise<{ userId: string; sessionId: string; token: string }> {
  const attempt = guard ? throttledAttempt(guard.request, email) : undefined;
  if (attempt) await guard?.throttle?.attempt(attempt);
  const { rows } = await appPool.query<{ user_id: string; session_id: string }>(
    'select user_id, session_id from app.staff_sign_in($1, $2, $3)',
    [email, password, tokens.ttlSeconds],
  );
  const row = rows[0];
  if (!row)
    throw new ApiError(401, 'INVALID_CREDENTIALS', 'Email or password is incorrect, or this is not a staff account');
  if (attempt) await guard?.throttle?.succeeded(attempt);
  const session = { userId: row.user_id, sessionId: row.session_id };
  const token = await (guard?.use === 'console' ? tokens.issueConsole(session) : tokens.issueStaff(session));
  return { ...session, token };
}

export async function tenantIdOf(appPool: Queryable, name: string): Promise<string> {
  if (isTenantId(name)) return name.toLowerCase();
  const { rows } = await appPool.query<{ tenant_id: string }>('select tenant_id from tenantry.resolve_slug($1)', [
    name,
  ]);
  if (!rows[0]) throw new TenantNotFoundError();
  return rows[0].tenant_id;
}
