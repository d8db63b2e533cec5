import { TokenIssuer, TokenVerifier } from 'tenantry';

/** Options of {@link TokenService}. */
export interface TokenServiceOptions {
  /** Lifetime of issued tokens; default one hour. */
  ttlSeconds?: number;
  issuer?: string;
  audience?: string;
}

export const TOKEN_ISSUER = 'tenantry-reference-server';
export const TOKEN_AUDIENCE = 'tenantry-reference-api';
const MAX_TOKEN_LENGTH = 4096;

/**
 * The server's access tokens, on the library's TokenIssuer / TokenVerifier: HS256 JWTs with `sub`
 * (user), `sid` (server-side session), `iss`, `aud`, `iat`, `exp`, and `tid` (tenant) for members
 * or `kind: "staff"` (and no tenant) for staff. Verification pins HS256 (so `alg: none` and
 * key-confusion tokens fail) and checks issuer, audience and age; the resolver then checks the
 * session, the tenant's status and the membership on every request.
 */
export class TokenService {
  readonly ttlSeconds: number;
  readonly issuer: string;
  readonly audience: string;
  readonly #issuer: TokenIssuer;
  /** Verifies member and staff tokens (the tenant claim is optional: staff tokens have none). */
  readonly verifier: TokenVerifier<'optional'>;

  constructor(secret: string, options: TokenServiceOptions = {}) {
    if (typeof secret !== 'string' || secret.length < 32)
      throw new Error('The JWT secret must be at least 32 characters');
    this.ttlSeconds = options.ttlSeconds ?? 3600;
    this.issuer = options.issuer ?? TOKEN_ISSUER;
    this.audience = options.audience ?? TOKEN_AUDIENCE;
    this.#issuer = new TokenIssuer({
      algorithm: 'HS256',
      secret,
      issuer: this.issuer,
      audience: this.audience,
      ttlSeconds: this.ttlSeconds,
    });
    this.verifier = new TokenVerifier({
      algorithms: ['HS256'],
      secret,
      issuer: this.issuer,
      audience: this.audience,
      tenant: 'optional',
      maxTokenAgeSeconds: this.ttlSeconds + 5,
      maxTokenLength: MAX_TOKEN_LENGTH,
    });
  }

  /** A member's token for one tenant and session. */
  issue(input: { userId: string; tenantId: string; sessionId: string }): Promise<string> {
    return this.#issuer.issue({ subject: input.userId, tenantId: input.tenantId, sessionId: input.sessionId });
  }

  /** A staff token: no tenant; staff choose one per request and need an open grant on it. */
  issueStaff(input: { userId: string; sessionId: string }): Promise<string> {
    return this.#issuer.issue({ subject: input.userId, sessionId: input.sessionId, claims: { kind: 'staff' } });
  }
}
