import { KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { z } from 'zod';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { isSymmetric, TOKEN_ALGORITHMS, type TokenAlgorithm } from './token-algorithms.js';
import type { JwksOptions } from './jwks-key-set.js';
import type { TokenKeyInput, TokenSecret } from './token-keys.js';

/** Whether a token must carry the tenant claim. */
export type TenantClaimMode = 'required' | 'optional';

interface TokenVerifierCommon<Mode extends TenantClaimMode> {
  /**
   * The JWS algorithms accepted, pinned: a token whose `alg` is not listed is refused before its
   * key is even looked up. Non-empty; never `none`; HS* and asymmetric algorithms never mix.
   */
  algorithms: readonly TokenAlgorithm[];
  /** Accepted `iss` value(s). */
  issuer: string | readonly string[];
  /** Accepted `aud` value(s): the token must name at least one. */
  audience: string | readonly string[];
  /** Leeway for `exp`, `nbf` and `iat`, in seconds; default 5, at most 300. */
  clockToleranceSeconds?: number;
  /** Refuse tokens whose `iat` is older than this (and tokens without `iat`), in seconds. */
  maxTokenAgeSeconds?: number;
  /** The claim that carries the tenant id (a UUID); default `tid`. */
  tenantClaim?: string;
  /**
   * `'required'` (default): a token without the tenant claim is refused. `'optional'`: it is
   * accepted with `tenantId: undefined`, for staff or service tokens that belong to no tenant
   * (the caller then decides from `claims`). A tenant claim that is present is always validated.
   */
  tenant?: Mode;
  /** Required `typ` header (e.g. `at+jwt` per RFC 9068); not checked by default. */
  type?: string;
  /** Tokens longer than this many characters are refused before any parsing; default 8192. */
  maxTokenLength?: number;
}

/** Verify HS* tokens with a shared secret (at least as many bytes as the hash: 32 for HS256). */
export interface SecretKeySource {
  secret: TokenSecret;
  publicKey?: never;
  jwksUrl?: never;
}

/** Verify asymmetric tokens with one public key: SPKI PEM, public JWK or KeyObject. */
export interface PublicKeySource {
  publicKey: TokenKeyInput;
  secret?: never;
  jwksUrl?: never;
}

/**
 * Verify asymmetric tokens with the keys an identity provider publishes (chosen by `kid`),
 * cached and refetched on rotation. `https:` only, except for loopback hosts.
 */
export interface JwksKeySource {
  jwksUrl: string | URL;
  jwks?: JwksOptions;
  secret?: never;
  publicKey?: never;
}

/** Configuration of a {@link TokenVerifier}: the common checks and exactly one key source. */
export type TokenVerifierConfig<Mode extends TenantClaimMode = TenantClaimMode> = TokenVerifierCommon<Mode> &
  (SecretKeySource | PublicKeySource | JwksKeySource);

const nonEmpty = z.string().min(1);
const oneOrMore = z.union([nonEmpty, z.array(nonEmpty).min(1)]);
const milliseconds = z.number().int().min(0).max(86_400_000).optional();

const schema = z.object({
  algorithms: z.array(z.string()).min(1, 'must list at least one algorithm'),
  issuer: oneOrMore,
  audience: oneOrMore,
  clockToleranceSeconds: z.number().min(0).max(300).optional(),
  maxTokenAgeSeconds: z.number().positive().optional(),
  tenantClaim: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/, 'must be a claim name')
    .optional(),
  tenant: z.enum(['required', 'optional']).optional(),
  type: nonEmpty.optional(),
  maxTokenLength: z.number().int().min(256).max(65_536).optional(),
  secret: z.union([z.string(), z.instanceof(Uint8Array)]).optional(),
  publicKey: z
    .union([z.string(), z.custom<KeyObject>((value) => value instanceof KeyObject), z.looseObject({ kty: z.string() })])
    .optional(),
  jwksUrl: z.union([z.string(), z.instanceof(URL)]).optional(),
  jwks: z
    .strictObject({
      cacheMaxAgeMs: milliseconds,
      cooldownMs: milliseconds,
      timeoutMs: milliseconds,
      staleIfErrorMs: milliseconds,
      headers: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
});

/** A validated configuration, with defaults applied and the algorithms checked. */
export interface ResolvedVerifierConfig {
  algorithms: readonly TokenAlgorithm[];
  issuer: string | string[];
  audience: string | string[];
  clockToleranceSeconds: number;
  maxTokenAgeSeconds: number | undefined;
  tenantClaim: string;
  tenantRequired: boolean;
  type: string | undefined;
  maxTokenLength: number;
  source: { secret: TokenSecret } | { publicKey: TokenKeyInput } | { jwksUrl: URL; jwks: JwksOptions };
}

const WHO = 'TokenVerifier';

/** Validates a {@link TokenVerifierConfig}; throws a ConfigurationError naming the field and rule, never a secret. */
export function resolveVerifierConfig(config: TokenVerifierConfig): ResolvedVerifierConfig {
  const parsed = schema.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigurationError(`${WHO}: ${issue?.path.join('.') || 'config'}: ${issue?.message ?? 'invalid'}`);
  }
  const c = parsed.data;
  const algorithms = checkAlgorithms(c.algorithms);
  const sources = [c.secret, c.publicKey, c.jwksUrl].filter((s) => s !== undefined).length;
  if (sources !== 1)
    throw new ConfigurationError(`${WHO}: configure exactly one key source: secret, publicKey or jwksUrl`);
  const symmetric = isSymmetric(algorithms[0]!);
  if (c.secret !== undefined && !symmetric)
    throw new ConfigurationError(
      `${WHO}: a secret verifies HS* algorithms only; asymmetric algorithms need publicKey or jwksUrl`,
    );
  if (c.secret === undefined && symmetric)
    throw new ConfigurationError(
      `${WHO}: HS* algorithms need a secret; publicKey and jwksUrl are for asymmetric algorithms`,
    );

  let source: ResolvedVerifierConfig['source'];
  if (c.secret !== undefined) source = { secret: c.secret };
  else if (c.publicKey !== undefined) source = { publicKey: c.publicKey as TokenKeyInput | JWK };
  else source = { jwksUrl: jwksUrl(c.jwksUrl!), jwks: c.jwks ?? {} };
  return {
    algorithms,
    issuer: c.issuer,
    audience: c.audience,
    clockToleranceSeconds: c.clockToleranceSeconds ?? 5,
    maxTokenAgeSeconds: c.maxTokenAgeSeconds,
    tenantClaim: c.tenantClaim ?? 'tid',
    tenantRequired: (c.tenant ?? 'required') === 'required',
    type: c.type,
    maxTokenLength: c.maxTokenLength ?? 8192,
    source,
  };
}

/** Non-empty, known, no `none`, no duplicates, and all HS* or all asymmetric. */
export function checkAlgorithms(input: readonly string[], who = WHO): TokenAlgorithm[] {
  if (input.length === 0) throw new ConfigurationError(`${who}: algorithms must list at least one algorithm`);
  for (const alg of input) {
    if (alg.toLowerCase() === 'none')
      throw new ConfigurationError(`${who}: algorithm "none" (unsigned tokens) is never accepted`);
    if (!TOKEN_ALGORITHMS.includes(alg as TokenAlgorithm))
      throw new ConfigurationError(`${who}: unsupported algorithm "${alg}"; supported: ${TOKEN_ALGORITHMS.join(', ')}`);
  }
  const algorithms = [...new Set(input)] as TokenAlgorithm[];
  const symmetric = algorithms.filter(isSymmetric);
  if (symmetric.length > 0 && symmetric.length < algorithms.length) {
    throw new ConfigurationError(
      `${who}: algorithms mix HS* with asymmetric ones; one verifier takes one kind, so a public key can never be used as an HMAC secret (use two verifiers)`,
    );
  }
  return algorithms;
}

function jwksUrl(input: string | URL): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new ConfigurationError(`${WHO}: jwksUrl is not a valid URL`);
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new ConfigurationError(
      `${WHO}: jwksUrl must use https: (plain http is allowed for loopback hosts only): keys fetched in clear could be replaced in transit`,
    );
  }
  if (url.username || url.password)
    throw new ConfigurationError(`${WHO}: jwksUrl must not carry credentials; use jwks.headers`);
  return url;
}
