import { createPrivateKey, createPublicKey, KeyObject, type JsonWebKey } from 'node:crypto';
import type { JWK } from 'jose';
import { ConfigurationError } from '../errors/tenantry-error.js';
import {
  isSymmetric,
  keyFitsAlgorithm,
  MIN_RSA_BITS,
  minSecretBytes,
  type TokenAlgorithm,
} from './token-algorithms.js';

/** A shared HMAC secret: a string (UTF-8) or raw bytes. */
export type TokenSecret = string | Uint8Array;

/** An asymmetric key: a PEM (SPKI `PUBLIC KEY` or PKCS#8 `PRIVATE KEY`), a JWK or a Node.js KeyObject. */
export type TokenKeyInput = string | JWK | KeyObject;

// Key material pasted where a secret belongs: the configuration mistake behind HS/RS confusion.
const KEY_MATERIAL = /-----BEGIN [A-Z0-9 ]*-----|"kty"\s*:/;

/**
 * The HMAC key for `algorithms`, refusing secrets shorter than the hash (32 bytes for HS256) and
 * secrets that are really a PEM or JWK. Messages name the rule, never the secret.
 */
export function secretKey(secret: TokenSecret, algorithms: readonly TokenAlgorithm[], who: string): Uint8Array {
  const bytes = typeof secret === 'string' ? new TextEncoder().encode(secret) : new Uint8Array(secret);
  if (KEY_MATERIAL.test(Buffer.from(bytes).toString('latin1'))) {
    throw new ConfigurationError(
      `${who}: the secret looks like a PEM or JWK key. HS* algorithms take random bytes; a public key goes in publicKey (or jwksUrl) with asymmetric algorithms`,
    );
  }
  for (const alg of algorithms) {
    if (!isSymmetric(alg)) continue;
    const min = minSecretBytes(alg);
    if (bytes.length < min)
      throw new ConfigurationError(
        `${who}: the secret must be at least ${min} bytes for ${alg} (use 32+ random bytes, e.g. openssl rand -base64 48)`,
      );
  }
  return bytes;
}

/** A verification key: public only, asymmetric, able to verify every one of `algorithms`. */
export function publicKey(input: TokenKeyInput, algorithms: readonly TokenAlgorithm[], who: string): KeyObject {
  let key: KeyObject;
  if (input instanceof KeyObject) {
    if (input.type !== 'public')
      throw new ConfigurationError(
        `${who}: publicKey must be a public key (got a ${input.type} KeyObject); never give a verifier a private key or secret`,
      );
    key = input;
  } else if (typeof input === 'string') {
    if (/PRIVATE KEY-----/.test(input))
      throw new ConfigurationError(
        `${who}: publicKey is a private key PEM: configure the public key only (SPKI, -----BEGIN PUBLIC KEY-----)`,
      );
    if (!/-----BEGIN (RSA )?PUBLIC KEY-----/.test(input))
      throw new ConfigurationError(
        `${who}: publicKey must be a PEM public key (SPKI, -----BEGIN PUBLIC KEY-----) or a JWK`,
      );
    key = importKey(() => createPublicKey(input), `${who}: publicKey is not a valid PEM public key`);
  } else {
    if (typeof input !== 'object' || input === null)
      throw new ConfigurationError(`${who}: publicKey must be a PEM string, a JWK or a KeyObject`);
    if ('d' in input)
      throw new ConfigurationError(`${who}: publicKey is a private JWK (it has "d"): configure the public key only`);
    checkJwk(input, algorithms, who, 'publicKey');
    key = importKey(
      () => createPublicKey({ key: input as JsonWebKey, format: 'jwk' }),
      `${who}: publicKey is not a valid public JWK`,
    );
  }
  checkAsymmetric(key, algorithms, who);
  return key;
}

/** A signing key: private, asymmetric, able to sign with `algorithm`. */
export function privateKey(input: TokenKeyInput, algorithm: TokenAlgorithm, who: string): KeyObject {
  let key: KeyObject;
  if (input instanceof KeyObject) {
    if (input.type !== 'private')
      throw new ConfigurationError(`${who}: privateKey must be a private key (got a ${input.type} KeyObject)`);
    key = input;
  } else if (typeof input === 'string') {
    if (!/PRIVATE KEY-----/.test(input))
      throw new ConfigurationError(
        `${who}: privateKey must be a PEM private key (PKCS#8, -----BEGIN PRIVATE KEY-----) or a private JWK`,
      );
    key = importKey(() => createPrivateKey(input), `${who}: privateKey is not a valid PEM private key`);
  } else {
    if (typeof input !== 'object' || input === null || !('d' in input))
      throw new ConfigurationError(`${who}: privateKey must be a PEM string, a private JWK (with "d") or a KeyObject`);
    checkJwk(input, [algorithm], who, 'privateKey');
    key = importKey(
      () => createPrivateKey({ key: input as JsonWebKey, format: 'jwk' }),
      `${who}: privateKey is not a valid private JWK`,
    );
  }
  checkAsymmetric(key, [algorithm], who);
  return key;
}

function importKey(load: () => KeyObject, message: string): KeyObject {
  try {
    return load();
  } catch {
    // OpenSSL's reason adds nothing a reader can act on and we keep key bytes out of errors.
    throw new ConfigurationError(message);
  }
}

function checkJwk(jwk: JWK, algorithms: readonly TokenAlgorithm[], who: string, field: string): void {
  if (jwk.kty === 'oct')
    throw new ConfigurationError(`${who}: ${field} is a symmetric (oct) JWK: use secret with HS* algorithms instead`);
  if (jwk.alg !== undefined && !algorithms.includes(jwk.alg as TokenAlgorithm)) {
    throw new ConfigurationError(
      `${who}: the JWK is restricted to alg ${jwk.alg}, which is not among the configured algorithms`,
    );
  }
}

function checkAsymmetric(key: KeyObject, algorithms: readonly TokenAlgorithm[], who: string): void {
  for (const alg of algorithms) {
    if (!keyFitsAlgorithm(key, alg))
      throw new ConfigurationError(`${who}: this ${describe(key)} key cannot be used with ${alg}`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (bits !== undefined && bits < MIN_RSA_BITS)
    throw new ConfigurationError(`${who}: RSA keys must have at least ${MIN_RSA_BITS} bits (this one has ${bits})`);
}

function describe(key: KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return curve ? `${key.asymmetricKeyType} ${curve}` : String(key.asymmetricKeyType).toUpperCase();
}
