import { createPublicKey, type KeyObject } from 'node:crypto';
import { SignJWT, type JWK, type JWTPayload } from 'jose';
import { toTenantId } from '../context/tenant-id.js';
import { ConfigurationError, InvalidArgumentError } from '../errors/tenantry-error.js';
import { isSymmetric, type TokenAlgorithm } from './token-algorithms.js';
import { privateKey, secretKey, type TokenKeyInput, type TokenSecret } from './token-keys.js';
import { checkAlgorithms } from './token-verifier-config.js';

/** Configuration of a {@link TokenIssuer}: one algorithm and its key (`secret` for HS*, `privateKey` otherwise). */
export type TokenIssuerConfig = {
  algorithm: TokenAlgorithm;
  issuer: string;
  /** The `aud` of issued tokens. */
  audience: string | readonly string[];
  /** Lifetime of issued tokens, in seconds; default 3600. */
  ttlSeconds?: number;
  /** The claim that carries the tenant id; default `tid`. */
  tenantClaim?: string;
  /** `kid` header of issued tokens: the key's id in the JWKS the verifiers read. */
  keyId?: string;
} & ({ secret: TokenSecret; privateKey?: never } | { privateKey: TokenKeyInput; secret?: never });

/** What one token says; `tenantId` may be omitted for tokens that belong to no tenant (staff). */
export interface IssueTokenInput {
  subject: string;
  tenantId?: string;
  /** `sid`: the session, so verifiers can check revocation. */
  sessionId?: string;
  /** Extra application claims (`kind`, `staff`, scopes…); cannot override the registered ones. */
  claims?: Record<string, unknown>;
  /** Overrides the issuer's `ttlSeconds` for this token. */
  ttlSeconds?: number;
  /** `nbf`, when the token must not be used before a time. */
  notBefore?: Date;
}

const RESERVED = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'sid']);
const WHO = 'TokenIssuer';

/**
 * Signs access tokens that a {@link TokenVerifier} configured with the same algorithm, issuer
 * and audience accepts: for the reference server and tests, or any service that mints its own.
 *
 * @example
 * const issuer = new TokenIssuer({ algorithm: 'ES256', privateKey: pem, keyId: '2026-01', issuer: 'https://api.example.com', audience: 'api' });
 * const token = await issuer.issue({ subject: userId, tenantId, sessionId });
 * const jwks = { keys: [issuer.publicJwk()] }; // serve at /.well-known/jwks.json
 */
export class TokenIssuer {
  readonly algorithm: TokenAlgorithm;
  readonly issuer: string;
  readonly audience: string | string[];
  readonly ttlSeconds: number;
  readonly tenantClaim: string;
  readonly keyId: string | undefined;
  readonly #key: Uint8Array | KeyObject;

  constructor(config: TokenIssuerConfig) {
    const [algorithm] = checkAlgorithms([config.algorithm], WHO) as [TokenAlgorithm];
    if (typeof config.issuer !== 'string' || config.issuer.length === 0)
      throw new ConfigurationError(`${WHO}: issuer is required`);
    const audience = typeof config.audience === 'string' ? config.audience : [...config.audience];
    if (audience.length === 0) throw new ConfigurationError(`${WHO}: audience is required`);
    const ttl = config.ttlSeconds ?? 3600;
    if (!Number.isInteger(ttl) || ttl <= 0)
      throw new ConfigurationError(`${WHO}: ttlSeconds must be a positive integer`);
    if (isSymmetric(algorithm)) {
      if (config.secret === undefined) throw new ConfigurationError(`${WHO}: ${algorithm} signs with a secret`);
      this.#key = secretKey(config.secret, [algorithm], WHO);
    } else {
      if (config.privateKey === undefined) throw new ConfigurationError(`${WHO}: ${algorithm} signs with a privateKey`);
      this.#key = privateKey(config.privateKey, algorithm, WHO);
    }
    this.algorithm = algorithm;
    this.issuer = config.issuer;
    this.audience = audience;
    this.ttlSeconds = ttl;
    this.tenantClaim = config.tenantClaim ?? 'tid';
    this.keyId = config.keyId;
  }

  /** A signed compact JWT with `iss`, `aud`, `sub`, `iat`, `exp`, the tenant claim and `sid` when given. */
  async issue(input: IssueTokenInput): Promise<string> {
    if (typeof input.subject !== 'string' || input.subject.length === 0)
      throw new InvalidArgumentError('subject is required', 'subject');
    const payload: JWTPayload = {};
    for (const [name, value] of Object.entries(input.claims ?? {})) {
      if (RESERVED.has(name) || name === this.tenantClaim)
        throw new InvalidArgumentError(`claims.${name} is set by the issuer`, `claims.${name}`);
      payload[name] = value;
    }
    if (input.tenantId !== undefined) payload[this.tenantClaim] = toTenantId(input.tenantId);
    if (input.sessionId !== undefined) payload.sid = input.sessionId;
    const now = Math.floor(Date.now() / 1000);
    const jwt = new SignJWT(payload)
      .setProtectedHeader({ alg: this.algorithm, typ: 'JWT', ...(this.keyId === undefined ? {} : { kid: this.keyId }) })
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setSubject(input.subject)
      .setIssuedAt(now)
      .setExpirationTime(now + (input.ttlSeconds ?? this.ttlSeconds));
    if (input.notBefore !== undefined) jwt.setNotBefore(input.notBefore);
    return jwt.sign(this.#key);
  }

  /**
   * The public half of an asymmetric signing key as a JWK (with `kid`, `alg` and `use: sig`),
   * ready for a JWKS endpoint. Throws for HS* issuers: a shared secret is never published.
   */
  publicJwk(): JWK {
    if (this.#key instanceof Uint8Array)
      throw new ConfigurationError(`${WHO}: an ${this.algorithm} secret has no public half to publish`);
    const jwk = createPublicKey(this.#key).export({ format: 'jwk' }) as JWK;
    return { ...jwk, ...(this.keyId === undefined ? {} : { kid: this.keyId }), alg: this.algorithm, use: 'sig' };
  }
}
