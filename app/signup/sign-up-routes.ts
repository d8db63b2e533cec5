import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { TenantryError } from 'tenantry';
import { ApiError } from '../http/api-error.js';
import { parseInput, text } from '../http/validation.js';
import type { SignInThrottle } from 'tenantry/limits';
import { throttledAttempt } from '../http/client-address.js';
import { SIGN_UP_PLANS } from '../plans.js';
import type { TenantSignUp } from './tenant-sign-up.js';

// host names that name no tenant (the resolver's reserved subdomains, docs/identity-hosts.md) and
// names an operator would not want a customer to hold; punycode (xn--) could imitate another slug
const RESERVED_SLUGS = new Set(['www', 'api', 'app', 'admin', 'staff', 'localhost', 'tenantry', 'postgres', 'console']);

const signUpBody = z
  .object({
    // at most 48: the tenant's own schema or database is named after it (t_<slug>, tenant_<slug>,
    // at most 63 characters in PostgreSQL)
    slug: text()
      .regex(/^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$/, 'slug must be 1-48 lower-case letters, digits or inner hyphens')
      .refine((slug) => !RESERVED_SLUGS.has(slug) && !slug.startsWith('xn--'), 'slug is reserved: choose another'),
    name: text().trim().min(1).max(200),
    email: text()
      .trim()
      .toLowerCase()
      .min(3)
      .max(254)
      .regex(/^[^@\s]+@[^@\s]+\.[^@\s]+$/, 'email must be an email address'),
    // a public sign-up gets shared tables or its own schema; its own database is an operator's
    // decision (`tenantry tenants onboard --plan enterprise`)
    plan: z.enum(SIGN_UP_PLANS).default('free'),
  })
  .strict();

const slugTaken = () => new ApiError(409, 'TENANT_SLUG_TAKEN', 'This slug is taken: choose another');

/**
 * `POST /sign-up` (public): a new tenant and its first owner in one request — the library's
 * onboarding (create, place, provision, migrate, seed, invite). The owner's invitation goes to the
 * outbox; as `POST /invitations`, the reference server also answers the code, which opens nothing
 * by itself (accepting it as a new identity still needs the confirmation sent to the address).
 * A slug taken, or being signed up with other details, answers 409 and changes nothing.
 */
export function signUpRoutes(
  app: FastifyInstance,
  {
    signUp,
    throttle,
  }: {
    signUp: TenantSignUp;
    /** The onboarding limit: sign-ups per e-mail and per address (each creates a schema or database). */
    throttle?: SignInThrottle | undefined;
  },
): void {
  app.post('/sign-up', async (request, reply) => {
    const body = parseInput(signUpBody, request.body, 'body');
    // counted once the body is valid, before anything is created; a sign-up never gives its point back
    await throttle?.attempt(throttledAttempt(request, body.email));
    let result;
    try {
      result = await signUp.signUp({ slug: body.slug, name: body.name, email: body.email, plan: body.plan });
    } catch (error) {
      if (
        error instanceof TenantryError &&
        ['TENANT_SLUG_TAKEN', 'ONBOARDING_CONFLICT', 'ONBOARDING_BUSY', 'TENANT_DELETED'].includes(error.code)
      )
        throw slugTaken();
      throw error;
    }
    // the same details again after the tenant is complete: someone else's sign-up, not a retry
    if (result.outcome === 'already-onboarded') throw slugTaken();
    return reply.code(201).send({
      tenant: result.tenant,
      owner: { email: body.email, invitation: result.code ? 'sent' : 'sent earlier' },
      ...(result.code ? { code: result.code, expiresAt: result.expiresAt } : {}),
    });
  });
}
