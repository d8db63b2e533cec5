import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  jwksCache,
  type ExportedJWKSCache,
  type FlattenedJWSInput,
  type JWSHeaderParameters,
  type RemoteJWKSet,
} from 'jose';
import { TokenError } from './token-error.js';

/** Caching of a JWKS endpoint, in milliseconds. */
export interface JwksOptions {
  /** How long a fetched key set is used before it is refetched; default 10 minutes. */
  cacheMaxAgeMs?: number;
  /**
   * Least time between two fetches caused by an unknown `kid` (after a success), and between a
   * failed fetch and the next attempt; default 30 s. Bounds what forged `kid`s can make us fetch.
   */
  cooldownMs?: number;
  /** Fetch timeout; default 5 s. */
  timeoutMs?: number;
  /**
   * When the endpoint fails, keep using the last key set fetched for this long past its
   * `cacheMaxAgeMs`; default 0 (strict: an expired key set is never used). Keys the issuer
   * removed still stop verifying at the first successful refresh.
   */
  staleIfErrorMs?: number;
  /** Extra request headers (e.g. an API key of the identity provider). */
  headers?: Record<string, string>;
}

type LocalSet = ReturnType<typeof createLocalJWKSet>;

// Errors that are about the token (its kid/alg), not about reaching the endpoint.
function isKeyMatchError(error: unknown): boolean {
  return (
    error instanceof errors.JWKSNoMatchingKey ||
    error instanceof errors.JWKSMultipleMatchingKeys ||
    error instanceof errors.JOSENotSupported
  );
}

/**
 * jose's remote JWKS (cache, cooldown, refetch on an unknown `kid`, in-flight de-duplication)
 * plus what it lacks for a server: a failed fetch becomes TOKEN_KEYS_UNAVAILABLE (503, the
 * caller is not at fault), the next attempt waits for the cooldown instead of every request
 * hammering a down endpoint, and the last good set may serve for `staleIfErrorMs`.
 */
export class JwksKeySet {
  readonly #remote: RemoteJWKSet;
  // jose writes every successful fetch here ({ jwks, uat }): our view of the last good set.
  readonly #cache: Partial<ExportedJWKSCache> = {};
  readonly #cacheMaxAgeMs: number;
  readonly #cooldownMs: number;
  readonly #staleIfErrorMs: number;
  #failedAt: number | undefined;
  #lastKnown: { uat: number; set: LocalSet } | undefined;

  constructor(url: URL, options: JwksOptions = {}) {
    this.#cacheMaxAgeMs = options.cacheMaxAgeMs ?? 600_000;
    this.#cooldownMs = options.cooldownMs ?? 30_000;
    this.#staleIfErrorMs = options.staleIfErrorMs ?? 0;
    this.#remote = createRemoteJWKSet(url, {
      cacheMaxAge: this.#cacheMaxAgeMs,
      cooldownDuration: this.#cooldownMs,
      timeoutDuration: options.timeoutMs ?? 5_000,
      headers: options.headers,
      [jwksCache]: this.#cache as ExportedJWKSCache,
    });
  }

  /** jose's key-resolver signature: pass `keySet.getKey` to `jwtVerify`. */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    if (this.#failedAt !== undefined && Date.now() - this.#failedAt < this.#cooldownMs)
      return this.#fromLastKnown(header, token, undefined);
    try {
      const key = await this.#remote(header, token);
      this.#failedAt = undefined;
      return key;
    } catch (error) {
      if (isKeyMatchError(error)) throw error;
      this.#failedAt = Date.now();
      return this.#fromLastKnown(header, token, error);
    }
  };

  async #fromLastKnown(header: JWSHeaderParameters, token: FlattenedJWSInput, cause: unknown) {
    const set = this.#lastKnownSet();
    if (set) {
      try {
        return await set(header, token);
      } catch (error) {
        // Several keys fit a token without kid: the verifier tries them.
        if (error instanceof errors.JWKSMultipleMatchingKeys) throw error;
        // No key fits (it may be new at the endpoint we cannot reach), or the set itself is
        // unusable (a private key published by mistake): either way, not the token's fault.
      }
    }
    throw new TokenError('TOKEN_KEYS_UNAVAILABLE', 'keys_unavailable', { cause: describeFailure(cause) });
  }

  #lastKnownSet(): LocalSet | undefined {
    const { uat, jwks } = this.#cache;
    if (uat === undefined || jwks === undefined) return undefined;
    if (Date.now() - uat >= this.#cacheMaxAgeMs + this.#staleIfErrorMs) return undefined;
    if (this.#lastKnown?.uat !== uat) this.#lastKnown = { uat, set: createLocalJWKSet(jwks) };
    return this.#lastKnown.set;
  }
}

// Keep the failure's kind and message (ECONNREFUSED, timeout, non-200…) for operators; these
// come from the endpoint, never from the token.
function describeFailure(cause: unknown): unknown {
  if (cause === undefined) return undefined;
  if (cause instanceof errors.JWKSTimeout) return new Error('JWKS fetch timed out');
  if (cause instanceof Error) return cause;
  return new Error('JWKS fetch failed');
}
