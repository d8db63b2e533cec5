import type { KeyObject } from 'node:crypto';

/** Symmetric JWS algorithms: HMAC with a shared secret. */
export const SYMMETRIC_TOKEN_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;

/** Asymmetric JWS algorithms: verified with a public key, signed with its private key. */
export const ASYMMETRIC_TOKEN_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

/** A JWS algorithm a verifier or issuer may be pinned to. `none` is not one, by construction. */
export type TokenAlgorithm = (typeof SYMMETRIC_TOKEN_ALGORITHMS)[number] | (typeof ASYMMETRIC_TOKEN_ALGORITHMS)[number];

/** Every supported algorithm (the ones {@link TokenAlgorithm} names). */
export const TOKEN_ALGORITHMS: readonly TokenAlgorithm[] = [
  ...SYMMETRIC_TOKEN_ALGORITHMS,
  ...ASYMMETRIC_TOKEN_ALGORITHMS,
];

export function isSymmetric(alg: TokenAlgorithm): alg is (typeof SYMMETRIC_TOKEN_ALGORITHMS)[number] {
  return alg.startsWith('HS');
}

/**
 * The shortest HMAC secret for `alg`, in bytes: the hash's output size (RFC 7518 §3.2), so a
 * secret is never weaker than the algorithm it signs with.
 */
export function minSecretBytes(alg: (typeof SYMMETRIC_TOKEN_ALGORITHMS)[number]): number {
  return Number(alg.slice(2)) / 8;
}

/** RSA moduli shorter than this are refused (RFC 7518 §3.3; jose refuses them too, but later). */
export const MIN_RSA_BITS = 2048;

const EC_CURVES: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };

/** True when the asymmetric `key` (public or private) can sign or verify with `alg`. */
export function keyFitsAlgorithm(key: KeyObject, alg: TokenAlgorithm): boolean {
  const type = key.asymmetricKeyType;
  if (alg.startsWith('RS')) return type === 'rsa';
  if (alg.startsWith('PS')) return type === 'rsa' || type === 'rsa-pss';
  if (alg.startsWith('ES')) return type === 'ec' && key.asymmetricKeyDetails?.namedCurve === EC_CURVES[alg];
  // jose verifies EdDSA with Ed25519 only (Web Crypto has no Ed448 everywhere).
  if (alg === 'EdDSA' || alg === 'Ed25519') return type === 'ed25519';
  return false;
}
