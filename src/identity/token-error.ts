import { TenantryError } from '../errors/tenantry-error.js';

/** Codes of {@link TokenError}, with their HTTP status and a message that names no token, key or claim value. */
const TOKEN_ERRORS = {
  TOKEN_INVALID: [401, 'The access token is invalid'],
  TOKEN_EXPIRED: [401, 'The access token has expired: sign in again'],
  TOKEN_KEYS_UNAVAILABLE: [503, 'The keys to verify the access token are unavailable: try again later'],
} as const;

/** A code of {@link TokenError}. */
export type TokenErrorCode = keyof typeof TOKEN_ERRORS;

/**
 * Why a token was refused, finer than the code: for logs and metrics, not for branching at the
 * HTTP edge (clients see the code). Stable strings.
 */
export type TokenErrorReason =
  /** Not a compact JWS, over the size bound, or a header/payload that is not JSON. */
  | 'malformed'
  /** `alg` is not one of the verifier's pinned algorithms (`none`, HS with an RS key, …). */
  | 'algorithm'
  /** The signature does not verify with the configured key. */
  | 'signature'
  /** No key of the JWKS matches the token's `kid`/`alg` (after a refetch, cooldown permitting). */
  | 'unknown_key'
  /** `exp` is in the past (TOKEN_EXPIRED). */
  | 'expired'
  /** `iat` is older than `maxTokenAge` (TOKEN_EXPIRED). */
  | 'too_old'
  /** `nbf` is in the future. */
  | 'not_yet_valid'
  /** `iat` is in the future. */
  | 'issued_in_future'
  | 'issuer'
  | 'audience'
  /** The `typ` header is not the configured one. */
  | 'type'
  /** A required claim is absent (`details.claim` names it). */
  | 'claim_missing'
  /** A claim has the wrong type or form, e.g. a `tid` that is not a UUID (`details.claim` names it). */
  | 'claim_invalid'
  /** The JWKS endpoint failed (down, timeout, non-200, not a JWKS) and no cached key fits (TOKEN_KEYS_UNAVAILABLE). */
  | 'keys_unavailable';

/**
 * A token the verifier refused, or could not check: a stable `code` (`TOKEN_INVALID` 401,
 * `TOKEN_EXPIRED` 401, `TOKEN_KEYS_UNAVAILABLE` 503) and `details.reason`
 * ({@link TokenErrorReason}), plus `details.claim` (a claim *name*) where it helps.
 *
 * The message, details and `cause` never contain the token, a key or a claim value: jose's
 * errors carry the decoded payload, so they are not attached as `cause` (their `code` is kept
 * in `details.joseCode`). Only a JWKS fetch failure (a network error) is kept as `cause`.
 *
 * @example
 * try { await verifier.verify(token) } catch (error) {
 *   if (error instanceof TokenError) reply.code(error.status).send({ code: error.code });
 * }
 */
export class TokenError extends TenantryError {
  declare readonly code: TokenErrorCode;
  /** Why the token was refused; also in `details.reason`. */
  readonly reason: TokenErrorReason;

  constructor(
    code: TokenErrorCode,
    reason: TokenErrorReason,
    options: { claim?: string; joseCode?: string; cause?: unknown; message?: string } = {},
  ) {
    const [status, fixed] = TOKEN_ERRORS[code];
    const message = options.message ?? claimMessage(reason, options.claim) ?? fixed;
    const details: Record<string, unknown> = { reason };
    if (options.claim !== undefined) details.claim = options.claim;
    if (options.joseCode !== undefined) details.joseCode = options.joseCode;
    super(code, message, { status, details, cause: options.cause });
    this.reason = reason;
  }
}

/**
 * Shorthand for a `TOKEN_INVALID` refusal. `message` says why in the API's words (e.g. "the sub
 * claim must be a UUID"); it may name a claim, never a claim's value.
 */
export function invalidToken(
  reason: TokenErrorReason,
  options: { claim?: string; joseCode?: string; message?: string } = {},
): TokenError {
  return new TokenError('TOKEN_INVALID', reason, options);
}

// a claim's NAME (one the verifier checks, never read from the token) says why; its value never
function claimMessage(reason: TokenErrorReason, claim: string | undefined): string | undefined {
  if (claim === undefined) return undefined;
  if (reason === 'claim_missing') return `The access token is invalid: it has no ${claim} claim`;
  if (reason === 'claim_invalid') return `The access token is invalid: its ${claim} claim has the wrong form`;
  return undefined;
}
