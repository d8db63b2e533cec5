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
/** The audience of the operator console's session tokens: no other route accepts them, nor they another token. */
export const CONSOLE_AUDIENCE = 'tenantry-reference-console';
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
  /** Verifies the console's session tokens only (audience {@link CONSOLE_AUDIENCE}, `kind: "console"`). */
  readonly consoleVerifier: TokenVerifier<'optional'>;
  readonly #consoleIssuer: TokenIssuer;

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
    // the console's cookie is a staff session too, but a token of its own audience: a console
    // cookie is no bearer token (staff or member routes refuse its audience) and a staff bearer
    // token is no console cookie (the console refuses theirs), so neither stands in for the other
    const consoleAudience = options.audience === undefined ? CONSOLE_AUDIENCE : `${options.audience}:console`;
    this.#consoleIssuer = new TokenIssuer({
      algorithm: 'HS256',
      secret,
      issuer: this.issuer,
      audience: consoleAudience,
      ttlSeconds: this.ttlSeconds,
    });
    this.consoleVerifier = new TokenVerifier({
      algorithms: ['HS256'],
      secret,
      issuer: this.issuer,
      audience: consoleAudience,
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

  /** The console's session token of a staff session: audience {@link CONSOLE_AUDIENCE}, `kind: "console"`. */
  issueConsole(input: { userId: string; sessionId: string }): Promise<string> {
    return this.#consoleIssuer.issue({
      subject: input.userId,
      sessionId: input.sessionId,
      claims: { kind: 'console' },
    });
  }
}
