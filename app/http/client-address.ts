import type { FastifyRequest } from 'fastify';
import type { SignInAttempt } from 'tenantry/limits';

/**
 * A throttled attempt of this request: the account as typed, the client's address, and the
 * `X-Forwarded-For` header when Fastify did not read the address from it (`trustProxy` off:
 * `request.ips` is undefined), so that the throttle can warn that every user behind that proxy
 * shares one address (docs/rate-limits.md).
 */
export function throttledAttempt(request: FastifyRequest, account: string): SignInAttempt {
  return {
    account,
    address: request.ip,
    forwardedFor: request.ips === undefined ? request.headers['x-forwarded-for'] : undefined,
  };
}
