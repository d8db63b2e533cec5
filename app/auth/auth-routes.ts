import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Queryable } from 'tenantry';
import { OneTimeCodes, sqlStateOf } from 'tenantry';
import { ApiError } from '../http/api-error.js';
import { parseInput, text } from '../http/validation.js';
import type { TokenService } from './token-service.js';

const email = text()
  .trim()
  .toLowerCase()
  .min(3)
  .max(254)
  .regex(/^[^@\s]+@[^@\s]+$/, 'email must be an email address');
// bcrypt reads at most 72 bytes; longer passwords are refused rather than silently truncated
const password = text().min(1, 'password must not be empty').max(72);

const signInBody = z
  .object({
    email,
    password,
    tenant: text().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'tenant must be a tenant slug'),
  })
  .strict();

const acceptBody = z
  .object({
    code: text().regex(/^[A-Za-z0-9_-]{22}$/, 'code must be an invitation code'),
    email,
    password: text().min(8, 'password must be at least 8 characters').max(72),
    displayName: text().trim().min(1).max(200).optional(),
  })
  .strict();

const invalidCredentials = () => new ApiError(401, 'INVALID_CREDENTIALS', 'Email, password or tenant is incorrect');

interface SessionRow {
  user_id: string;
  tenant_id: string;
  session_id: string;
  expires_at: Date;
}

/**
 * Public routes that start a member's session:
 * - `POST /auth/sign-in`: the password is checked inside PostgreSQL (app.sign_in, SECURITY
 *   DEFINER), which also starts the server-side session the token names. One answer for every
 *   kind of refusal.
 * - `POST /invitations/accept`: spends an invitation code (once), creates the identity if the
 *   email is new, makes the membership and signs in — one statement, so a refusal spends nothing.
 */
export function authRoutes(
  app: FastifyInstance,
  { appPool, tokens }: { appPool: Queryable; tokens: TokenService },
): void {
  const answer = async (row: SessionRow) => ({
    token: await tokens.issue({ userId: row.user_id, tenantId: row.tenant_id, sessionId: row.session_id }),
    tokenType: 'Bearer',
    expiresIn: tokens.ttlSeconds,
    tenantId: row.tenant_id,
    userId: row.user_id,
  });

  app.post('/auth/sign-in', async (request) => {
    const body = parseInput(signInBody, request.body, 'body');
    if (Buffer.byteLength(body.password, 'utf8') > 72) throw invalidCredentials();
    // no tenant in context yet: the function finds the user's membership itself
    const { rows } = await appPool.query<SessionRow>(
      'select user_id, tenant_id, session_id, expires_at from app.sign_in($1, $2, $3, $4)',
      [body.email, body.password, body.tenant, tokens.ttlSeconds],
    );
    if (!rows[0]) throw invalidCredentials();
    return answer(rows[0]);
  });

  app.post('/invitations/accept', async (request, reply) => {
    const body = parseInput(acceptBody, request.body, 'body');
    if (Buffer.byteLength(body.password, 'utf8') > 72)
      throw new ApiError(400, 'CODE_INVALID', 'The invitation is invalid, expired, used, or for another email');
    try {
      const { rows } = await appPool.query<SessionRow>(
        'select user_id, tenant_id, session_id, expires_at from app.accept_invitation($1, $2, $3, $4, $5)',
        [OneTimeCodes.hash(body.code), body.email, body.password, body.displayName ?? null, tokens.ttlSeconds],
      );
      return reply.code(201).send(await answer(rows[0]!));
    } catch (error) {
      if (sqlStateOf(error) === 'AP001')
        throw new ApiError(400, 'CODE_INVALID', 'The invitation is invalid, expired, used, or for another email');
      throw error;
    }
  });
}
