import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Queryable } from '../../src/index.js';
import { ApiError } from '../http/api-error.js';
import { parseInput } from '../http/validation.js';
import type { TokenService } from './token-service.js';

const signInBody = z
  .object({
    email: z.string().trim().toLowerCase().min(3).max(254).regex(/^[^@\s]+@[^@\s]+$/, 'email must be an email address'),
    // bcrypt reads at most 72 bytes; longer passwords are refused rather than silently truncated
    password: z.string().min(1, 'password must not be empty').max(72),
    tenant: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'tenant must be a tenant slug'),
  })
  .strict();

const invalidCredentials = () => new ApiError(401, 'INVALID_CREDENTIALS', 'Email, password or tenant is incorrect');

/**
 * `POST /auth/sign-in`: checks the password inside PostgreSQL (app.sign_in, SECURITY DEFINER)
 * and answers an access token for that tenant. One answer for every kind of refusal.
 */
export function authRoutes(app: FastifyInstance, { appPool, tokens }: { appPool: Queryable; tokens: TokenService }): void {
  app.post('/auth/sign-in', async (request) => {
    const { email, password, tenant } = parseInput(signInBody, request.body, 'body');
    if (Buffer.byteLength(password, 'utf8') > 72) throw invalidCredentials();
    // no tenant in context yet: the function finds the user's membership itself
    const { rows } = await appPool.query<{ user_id: string; tenant_id: string }>(
      'select user_id, tenant_id from app.sign_in($1, $2, $3)',
      [email, password, tenant],
    );
    const row = rows[0];
    if (!row) throw invalidCredentials();
    const token = await tokens.issue({ userId: row.user_id, tenantId: row.tenant_id });
    return { token, tokenType: 'Bearer', expiresIn: tokens.ttlSeconds, tenantId: row.tenant_id, userId: row.user_id };
  });
}
