import { TenantryError, type TenantryErrorCode } from '../errors/tenantry-error.js';

/** Codes of the identity and access layer, with their HTTP status and a message that names no secret. */
const ACCESS_ERRORS = {
  UNAUTHENTICATED: [401, 'Send credentials: Authorization: Bearer <token> or an API key'],
  TENANT_REQUIRED: [400, 'This request names no tenant'],
  TENANT_CONFLICT: [400, 'The request names more than one tenant (credentials, host or header disagree)'],
  TENANT_SELECTION_FORBIDDEN: [403, 'Only staff and service credentials may choose a tenant by header or path'],
  NOT_A_MEMBER: [403, 'You are not a member of this tenant'],
  SESSION_REVOKED: [401, 'The session has ended: sign in again'],
  API_KEY_INVALID: [401, 'The API key is invalid, revoked or expired'],
  STAFF_ACCESS_REQUIRED: [403, 'Staff need an open access grant (with a reason) on this tenant'],
  CODE_INVALID: [400, 'The code is invalid, expired or already used'],
  REASON_INVALID: [400, 'A reason of 10 to 500 characters, at least 10 of them visible, is required'],
  HOST_INVALID: [400, 'The Host header is not a host name or an IP address with an optional port'],
  HOST_MISMATCH: [400, 'The request target names another host than the Host header'],
  DOMAIN_TAKEN: [409, 'This domain belongs to another tenant'],
  DOMAIN_RESERVED: [
    400,
    "This domain is under the service's own base domain, whose subdomains name tenants by slug: use a domain of your own",
  ],
  DOMAIN_UNVERIFIED: [409, 'The domain has not been verified: publish the TXT record first'],
} as const satisfies Partial<Record<TenantryErrorCode, readonly [number, string]>>;

/** A code of {@link AccessError}. */
export type AccessErrorCode = keyof typeof ACCESS_ERRORS;

/**
 * A refusal of the identity and access layer: a stable `code`, the HTTP status to answer with,
 * a message that never contains a token, key, code or another tenant's data.
 *
 * @example
 * if (error instanceof AccessError && error.code === 'NOT_A_MEMBER') reply.code(error.status);
 */
export class AccessError extends TenantryError {
  declare readonly code: AccessErrorCode;

  constructor(
    code: AccessErrorCode,
    options: { message?: string; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    const [status, message] = ACCESS_ERRORS[code];
    super(code, options.message ?? message, { status, details: options.details, cause: options.cause });
  }
}
