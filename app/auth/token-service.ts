import { errors, jwtVerify, SignJWT } from 'jose';
import { isTenantId } from '../../src/index.js';
import { ApiError } from '../http/api-error.js';

/** Who a verified token speaks for. */
export interface TokenClaims {
  /** `sub`: the user's id. */
  userId: string;
  /** `tid`: the tenant the token was issued for. */
  tenantId: string;
}

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
const CLOCK_TOLERANCE_SECONDS = 5;

/**
 * Issues and verifies the server's access tokens: HS256 JWTs with `sub` (user), `tid`
 * (tenant), `iss`, `aud`, `iat` and `exp`. Verification pins the algorithm to HS256 (so
 * `alg: none` and key-confusion tokens fail) and checks issuer, audience and age.
 */
export class TokenService {
  readonly #key: Uint8Array;
  readonly ttlSeconds: number;
  readonly issuer: string;
  readonly audience: string;

  constructor(secret: string, options: TokenServiceOptions = {}) {
    if (typeof secret !== 'string' || secret.length < 32) throw new Error('The JWT secret must be at least 32 characters');
    this.#key = new TextEncoder().encode(secret);
    this.ttlSeconds = options.ttlSeconds ?? 3600;
    this.issuer = options.issuer ?? TOKEN_ISSUER;
    this.audience = options.audience ?? TOKEN_AUDIENCE;
  }

  /** A signed token for `claims`, valid for `ttlSeconds`. */
  issue(claims: TokenClaims): Promise<string> {
    return new SignJWT({ tid: claims.tenantId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.userId)
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setIssuedAt()
      .setExpirationTime(`${this.ttlSeconds}s`)
      .sign(this.#key);
  }

  /** The claims of a valid token; throws 401 INVALID_TOKEN (or TOKEN_EXPIRED) otherwise. */
  async verify(token: string): Promise<TokenClaims> {
    if (token.length > MAX_TOKEN_LENGTH) throw invalidToken();
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.#key, {
        algorithms: ['HS256'],
        issuer: this.issuer,
        audience: this.audience,
        requiredClaims: ['sub', 'tid', 'iat', 'exp'],
        maxTokenAge: this.ttlSeconds + CLOCK_TOLERANCE_SECONDS,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      }));
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw new ApiError(401, 'TOKEN_EXPIRED', 'The access token has expired: sign in again');
      throw invalidToken();
    }
    const { sub, tid } = payload;
    if (!isTenantId(sub) || !isTenantId(tid)) throw invalidToken();
    return { userId: sub.toLowerCase(), tenantId: tid.toLowerCase() };
  }
}

function invalidToken(): ApiError {
  return new ApiError(401, 'INVALID_TOKEN', 'The access token is invalid');
}
