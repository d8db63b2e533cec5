import { createHash } from 'node:crypto';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { LimitCounter, type RateLimitStore } from './limit-counter.js';
import type { StoreDownPolicy } from './rate-limit-config.js';
import { RateLimitedError } from './rate-limited-error.js';

/** One throttle: at most `points` attempts per `durationSeconds`. */
export interface ThrottleWindow {
  points: number;
  durationSeconds: number;
}

/** Options of {@link SignInThrottle}. */
export interface SignInThrottleOptions {
  /** Where the counters live (the same stores as TenantRateLimits). */
  store: RateLimitStore;
  /** Separates throttles that share a store (`sign-in`, `staff-sign-in`). Default `sign-in`. */
  name?: string;
  /** Attempts per account (e-mail). Default 10 per 15 minutes; a success clears the account's count. */
  perAccount?: ThrottleWindow;
  /** Attempts per client address (shared NATs: higher). Default 100 per 15 minutes. */
  perAddress?: ThrottleWindow;
  /** A down store refuses sign-ins (`closed`, default: no brute force during an outage) or lets them through. */
  onStoreDown?: StoreDownPolicy;
  /** Longest wait for the store (pool queue included). Default 1000 ms. */
  storeTimeoutMs?: number;
  /** Called for each refused attempt (the `rate-limited requests` metric). */
  onLimited?: (event: { throttle: string; scope: 'account' | 'address'; storeDown: boolean }) => void;
  /** The store failed or timed out. */
  onStoreError?: (error: unknown) => void;
}

/** Who is signing in: the account name as typed and the client's address. */
export interface SignInAttempt {
  account: string;
  address: string;
}

const DEFAULT_ACCOUNT: ThrottleWindow = { points: 10, durationSeconds: 900 };
const DEFAULT_ADDRESS: ThrottleWindow = { points: 100, durationSeconds: 900 };

/**
 * Throttles sign-in per account and per address. Every attempt is counted BEFORE the password
 * is checked (one atomic add per key), so a burst of parallel guesses cannot slip through
 * between a check and a count; a successful sign-in clears its account's count. Keys are
 * SHA-256 hashes: no e-mail or address is written to the store.
 *
 * @example
 * const throttle = new SignInThrottle({ store: { postgres: ownerPool } });
 * await throttle.attempt({ account: email, address: request.ip }); // throws RateLimitedError
 * const user = await checkPassword(email, password);
 * if (user) await throttle.succeeded({ account: email, address: request.ip });
 */
export class SignInThrottle {
  readonly #name: string;
  readonly #account: { window: ThrottleWindow; counter: LimitCounter };
  readonly #address: { window: ThrottleWindow; counter: LimitCounter };
  readonly #options: SignInThrottleOptions;

  constructor(options: SignInThrottleOptions) {
    this.#options = options;
    this.#name = options.name ?? 'sign-in';
    if (!/^[a-z][a-z0-9_-]{0,39}$/.test(this.#name))
      throw new ConfigurationError('Sign-in throttle: name must be 1-40 of [a-z0-9_-], starting with a letter');
    const timeoutMs = options.storeTimeoutMs ?? 1000;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      throw new ConfigurationError('Sign-in throttle: storeTimeoutMs must be a positive number');
    const make = (scope: string, window: ThrottleWindow) => {
      if (!Number.isInteger(window.points) || window.points < 1)
        throw new ConfigurationError(`Sign-in throttle: ${scope}.points must be a whole number ≥ 1`);
      if (!Number.isInteger(window.durationSeconds) || window.durationSeconds < 1)
        throw new ConfigurationError(`Sign-in throttle: ${scope}.durationSeconds must be a whole number ≥ 1`);
      return {
        window,
        counter: new LimitCounter(options.store, {
          keyPrefix: `tenantry:s:${this.#name}:${scope}`,
          durationSeconds: window.durationSeconds,
          timeoutMs,
        }),
      };
    };
    this.#account = make('perAccount', options.perAccount ?? DEFAULT_ACCOUNT);
    this.#address = make('perAddress', options.perAddress ?? DEFAULT_ADDRESS);
  }

  /** Counts an attempt for its account and its address; throws RateLimitedError when either is over. */
  async attempt(attempt: SignInAttempt): Promise<void> {
    let account, address;
    try {
      [account, address] = await Promise.all([
        this.#account.counter.add(accountKey(attempt.account), 1),
        this.#address.counter.add(addressKey(attempt.address), 1),
      ]);
    } catch (error) {
      this.#options.onStoreError?.(error);
      if ((this.#options.onStoreDown ?? 'closed') === 'open') return;
      this.#limited('account', true);
      throw new RateLimitedError({ limit: this.#name, scope: 'account', retryAfterSeconds: 1, storeDown: true });
    }
    // the address first: it says less about the account (no hint that this e-mail is targeted)
    for (const [scope, state, window] of [
      ['address', address, this.#address.window],
      ['account', account, this.#account.window],
    ] as const) {
      if (state.consumed > window.points) {
        this.#limited(scope, false);
        throw new RateLimitedError({
          limit: this.#name,
          scope,
          retryAfterSeconds: Math.max(1, Math.ceil(state.msBeforeReset / 1000)),
        });
      }
    }
  }

  /** A successful sign-in: clears its account's count (the address keeps counting). Never throws. */
  async succeeded(attempt: SignInAttempt): Promise<void> {
    await this.#account.counter.reset(accountKey(attempt.account)).catch((error: unknown) => {
      this.#options.onStoreError?.(error);
    });
  }

  #limited(scope: 'account' | 'address', storeDown: boolean): void {
    try {
      this.#options.onLimited?.({ throttle: this.#name, scope, storeDown });
    } catch {
      // a metric's failure must not change the answer
    }
  }
}

// accounts as typed differ by case and spaces only: one count for all of them
function accountKey(account: string): string {
  return createHash('sha256').update(account.trim().toLowerCase()).digest('hex');
}

function addressKey(address: string): string {
  return createHash('sha256').update(address.trim().toLowerCase()).digest('hex');
}
