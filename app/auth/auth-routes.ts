import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Queryable } from 'tenantry';
import type { SignInThrottle } from 'tenantry/limits';
import { OneTimeCodes, sqlStateOf } from 'tenantry';
import { ApiError } from '../http/api-error.js';
import { throttledAttempt } from '../http/client-address.js';
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

const oneTimeCode = /^[A-Za-z0-9_-]{22}$/;
const acceptBody = z
  .object({
    code: text().regex(oneTimeCode, 'code must be an invitation code'),
    email,
    password: text().min(8, 'password must be at least 8 characters').max(72),
    displayName: text().trim().min(1).max(200).optional(),
    // the code sent to the invited address: needed only to create a new identity
    confirmation: text().regex(oneTimeCode, 'confirmation must be the code sent to the address').optional(),
  })
  .strict();

const invitationInvalid = () =>
  new ApiError(400, 'CODE_INVALID', 'The invitation is invalid, expired, used, or for another email');

/**
 * The one answer to an accept that proved no identity yet, whether or not the address has an
 * account: same status, same body, same headers (nothing here depends on the account).
 */
const CONFIRMATION_SENT = {
  status: 'confirmation_sent',
  message:
    'A message was sent to the invited address: accept again with the confirmation it carries, or with the password of the existing account it names',
} as const;

const invalidCredentials = () => new ApiError(401, 'INVALID_CREDENTIALS', 'Email, password or tenant is incorrect');

interface AcceptRow extends Partial<SessionRow> {
  outcome: 'joined' | 'confirmation_sent';
}

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
 * - `POST /invitations/accept`: joins the inviting tenant once the caller proved the identity is
 *   theirs: an existing identity by its password (never changed here), a new one by the
 *   confirmation code sent to the invited address (app.accept_invitation, migration 007). Until
 *   then every valid invitation gets the same 202, account or not; a refusal spends nothing.
 */
export function authRoutes(
  app: FastifyInstance,
  {
    appPool,
    tokens,
    throttle,
    invitationThrottle,
  }: {
    appPool: Queryable;
    tokens: TokenService;
    throttle?: SignInThrottle;
    /** `POST /invitations/accept` checks an existing identity's password: throttled like a sign-in (per e-mail and address). */
    invitationThrottle?: SignInThrottle | undefined;
  },
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
    // counted before the password is checked: parallel guesses cannot slip between check and count
    const attempt = throttledAttempt(request, body.email);
    await throttle?.attempt(attempt);
    // no tenant in context yet: the function finds the user's membership itself
    const { rows } = await appPool.query<SessionRow>(
      'select user_id, tenant_id, session_id, expires_at from app.sign_in($1, $2, $3, $4)',
      [body.email, body.password, body.tenant, tokens.ttlSeconds],
    );
    if (!rows[0]) throw invalidCredentials();
    await throttle?.succeeded(attempt);
    return answer(rows[0]);
  });

  app.post('/invitations/accept', async (request, reply) => {
    const body = parseInput(acceptBody, request.body, 'body');
    if (Buffer.byteLength(body.password, 'utf8') > 72) throw invitationInvalid();
    // counted before the code and the password are checked, like a sign-in
    const attempt = throttledAttempt(request, body.email);
    await invitationThrottle?.attempt(attempt);
    let row: AcceptRow;
    try {
      const { rows } = await appPool.query<AcceptRow>(
        'select outcome, user_id, tenant_id, session_id, expires_at from app.accept_invitation($1, $2, $3, $4, $5, $6)',
        [
          OneTimeCodes.hash(body.code),
          body.email,
          body.password,
          body.displayName ?? null,
          body.confirmation === undefined ? null : OneTimeCodes.hash(body.confirmation),
          tokens.ttlSeconds,
        ],
      );
      row = rows[0]!;
    } catch (error) {
      const state = sqlStateOf(error);
      if (state === 'AP001') throw invitationInvalid();
      if (state === 'AP002')
        throw new ApiError(
          400,
          'CONFIRMATION_INVALID',
          'The confirmation is invalid or expired, or the password does not match the existing account',
        );
      throw error;
    }
    if (row.outcome === 'confirmation_sent') return reply.code(202).send(CONFIRMATION_SENT);
    await invitationThrottle?.succeeded(attempt);
    return reply.code(201).send(await answer(row as SessionRow));
  });
}
