import type { KeyObject } from 'node:crypto';
import {
  errors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  type JWTVerifyResult,
} from 'jose';
import { isTenantId } from '../context/tenant-id.js';
import { JwksKeySet } from './jwks-key-set.js';
import type { TokenAlgorithm } from './token-algorithms.js';
import { invalidToken, TokenError } from './token-error.js';
import { publicKey, secretKey } from './token-keys.js';
import { resolveVerifierConfig, type TenantClaimMode, type TokenVerifierConfig } from './token-verifier-config.js';

/** What a valid token says. `Tenant` is `string | undefined` only for verifiers configured with `tenant: 'optional'`. */
export interface VerifiedToken<Tenant extends string | undefined = string> {
  /** `sub`: who the token speaks for (a non-empty string). */
  subject: string;
  /** The tenant claim (`tid` by default), as a canonical lower-case UUID. */
  tenantId: Tenant;
  /** `sid`, when present: the session the token belongs to (for revocation checks). */
  sessionId: string | undefined;
  /** The `kid` header, when present: which key verified the token. */
  keyId: string | undefined;
  /** The `alg` header: one of the verifier's pinned algorithms. */
  algorithm: TokenAlgorithm;
  /** `iat`, when present. */
  issuedAt: Date | undefined;
  /** `exp` (always present: tokens without one are refused). */
  expiresAt: Date;
  /** The whole verified payload, for application claims (`kind`, `staff`, scopes…). */
  claims: Readonly<JWTPayload>;
}

// Bounds the work a token without `kid` can cause against a JWKS holding several keys.
const MAX_CANDIDATE_KEYS = 5;

/**
 * Verifies access tokens (compact JWS JWTs) for the JWT resolver: algorithms pinned, signature
 * checked with a shared secret, one public key or a JWKS endpoint (`kid` rotation), `exp`,
 * `nbf`, `iat`, `iss` and `aud` checked, `sub` and a UUID tenant claim (`tid`) required.
 * Every refusal is a {@link TokenError} with a stable code; nothing the token or key holds ever
 * reaches a message. The configuration is validated in the constructor (ConfigurationError).
 *
 * @example
 * const verifier = new TokenVerifier({
 *   algorithms: ['RS256'],
 *   jwksUrl: 'https://login.example.com/.well-known/jwks.json',
 *   issuer: 'https://login.example.com/',
 *   audience: 'https://api.example.com',
 * });
 * const { subject, tenantId, sessionId, claims } = await verifier.verify(bearerToken);
 */
export class TokenVerifier<Mode extends TenantClaimMode = 'required'> {
  /** The pinned algorithms. */
  readonly algorithms: readonly TokenAlgorithm[];
  /** The claim read as the tenant id. */
  readonly tenantClaim: string;
  readonly #key: Uint8Array | KeyObject | JWTVerifyGetKey;
  readonly #options: JWTVerifyOptions;
  readonly #maxTokenLength: number;

  constructor(config: TokenVerifierConfig<Mode>) {
    const c = resolveVerifierConfig(config);
    this.algorithms = Object.freeze([...c.algorithms]);
    this.tenantClaim = c.tenantClaim;
    this.#maxTokenLength = c.maxTokenLength;
    if ('secret' in c.source) this.#key = secretKey(c.source.secret, c.algorithms, 'TokenVerifier');
    else if ('publicKey' in c.source) this.#key = publicKey(c.source.publicKey, c.algorithms, 'TokenVerifier');
    else this.#key = new JwksKeySet(c.source.jwksUrl, c.source.jwks).getKey;
    this.#options = {
      algorithms: [...c.algorithms],
      issuer: c.issuer,
      audience: c.audience,
      clockTolerance: c.clockToleranceSeconds,
      maxTokenAge: c.maxTokenAgeSeconds,
      typ: c.type,
      requiredClaims: c.tenantRequired ? ['exp', 'sub', c.tenantClaim] : ['exp', 'sub'],
    };
  }

  /**
   * The verified token, or a {@link TokenError}: `TOKEN_INVALID` (401), `TOKEN_EXPIRED` (401) or
   * `TOKEN_KEYS_UNAVAILABLE` (503, the JWKS endpoint failed and no cached key fits).
   */
  async verify(token: string): Promise<VerifiedToken<Mode extends 'optional' ? string | undefined : string>> {
    // Size first: nothing of an oversized token is decoded, hashed or fetched for.
    if (typeof token !== 'string' || token.length === 0 || token.length > this.#maxTokenLength)
      throw invalidToken('malformed');
    let result: JWTVerifyResult;
    try {
      result = await this.#verifySignature(token, this.#options);
    } catch (error) {
      throw toTokenError(error);
    }
    // jose checked presence when the tenant is required; the type follows the configuration.
    return this.#readClaims(result) as VerifiedToken<Mode extends 'optional' ? string | undefined : string>;
  }

  async #verifySignature(token: string, options: JWTVerifyOptions): Promise<JWTVerifyResult> {
    try {
      // jose's overloads split on the key's type; the union is fine at run time.
      return await jwtVerify(token, this.#key as Uint8Array, options);
    } catch (error) {
      if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
      // No `kid` and several keys of the JWKS fit the `alg`: try them, a few at most.
      let tried = 0;
      for await (const candidate of error) {
        if (++tried > MAX_CANDIDATE_KEYS) break;
        try {
          return await jwtVerify(token, candidate, options);
        } catch (inner) {
          if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  }

  #readClaims({ payload, protectedHeader }: JWTVerifyResult): VerifiedToken<string | undefined> {
    const { sub, sid, exp, iat } = payload;
    if (typeof sub !== 'string' || sub.length === 0) throw invalidToken('claim_invalid', { claim: 'sub' });
    if (sid !== undefined && (typeof sid !== 'string' || sid.length === 0))
      throw invalidToken('claim_invalid', { claim: 'sid' });
    const tid = payload[this.tenantClaim];
    if (tid !== undefined && !isTenantId(tid)) throw invalidToken('claim_invalid', { claim: this.tenantClaim });
    return {
      subject: sub,
      tenantId: tid?.toLowerCase(),
      sessionId: sid,
      keyId: protectedHeader.kid,
      algorithm: protectedHeader.alg as TokenAlgorithm,
      issuedAt: iat === undefined ? undefined : new Date(iat * 1000),
      expiresAt: new Date(exp! * 1000),
      claims: Object.freeze({ ...payload }),
    };
  }
}

/** jose's refusals as TokenErrors. jose errors are not kept as `cause`: they carry the payload. */
function toTokenError(error: unknown): unknown {
  if (error instanceof TokenError || !(error instanceof errors.JOSEError)) return error;
  const joseCode = error.code;
  if (error instanceof errors.JWTExpired)
    return new TokenError('TOKEN_EXPIRED', error.claim === 'iat' ? 'too_old' : 'expired', { joseCode });
  if (error instanceof errors.JWTClaimValidationFailed) {
    const { claim, reason } = error;
    if (reason === 'missing') return invalidToken('claim_missing', { claim, joseCode });
    if (reason === 'check_failed') {
      const byClaim = {
        nbf: 'not_yet_valid',
        iat: 'issued_in_future',
        iss: 'issuer',
        aud: 'audience',
        typ: 'type',
      } as const;
      if (claim in byClaim) return invalidToken(byClaim[claim as keyof typeof byClaim], { joseCode });
    }
    return invalidToken('claim_invalid', { claim, joseCode });
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported)
    return invalidToken('algorithm', { joseCode });
  if (error instanceof errors.JWSSignatureVerificationFailed) return invalidToken('signature', { joseCode });
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys)
    return invalidToken('unknown_key', { joseCode });
  return invalidToken('malformed', { joseCode });
}
