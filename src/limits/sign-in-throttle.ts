import { isIPv4, isIPv6 } from 'node:net';
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

/** Which count refused an attempt. */
export type ThrottleScope = 'account' | 'address' | 'account-address';

/** Options of {@link SignInThrottle}. */
export interface SignInThrottleOptions {
  /** Where the counters live (the same stores as TenantRateLimits). */
  store: RateLimitStore;
  /** Separates throttles that share a store (`sign-in`, `staff-sign-in`). Default `sign-in`. */
  name?: string;
  /**
   * Attempts per account from one address (the account and the address together). Default 10 per
   * 15 minutes; a success clears it. This is what a guesser at one address meets first, and it
   * locks that account out at that address only.
   */
  perAccountAddress?: ThrottleWindow;
  /**
   * Attempts per account from every address together (guessing spread over many addresses).
   * Default 50 per 15 minutes; a success clears it.
   */
  perAccount?: ThrottleWindow;
  /**
   * Attempts per client address over every account (spraying one password over many accounts):
   * a ceiling far above what one account may try, because every user behind one proxy or NAT
   * shares it. A successful sign-in gives its point back, so the users who sign in do not use it
   * up; only failures do. Default 500 per 15 minutes.
   */
  perAddress?: ThrottleWindow;
  /** A down store refuses sign-ins (`closed`, default: no brute force during an outage) or lets them through. */
  onStoreDown?: StoreDownPolicy;
  /** Longest wait for the store (pool queue included). Default 1000 ms. */
  storeTimeoutMs?: number;
  /** Called for each refused attempt (the `rate-limited requests` metric). */
  onLimited?: (event: { throttle: string; scope: ThrottleScope; storeDown: boolean }) => void;
  /** The store failed or timed out. */
  onStoreError?: (error: unknown) => void;
  /**
   * An attempt came with an `X-Forwarded-For` its `address` was not taken from (see
   * {@link SignInAttempt.forwardedFor}): the server sits behind a proxy it does not trust, and every
   * user probably shares the proxy's address. Called once per throttle (log it as a warning).
   */
  onUntrustedProxy?: (event: { throttle: string }) => void;
}

/** Who is signing in: the account name as typed and the client's address. */
export interface SignInAttempt {
  account: string;
  address: string;
  /**
   * The request's `X-Forwarded-For` header when `address` was NOT read from it (the framework's
   * `trustProxy` is off): in Fastify `request.ips === undefined ? request.headers['x-forwarded-for'] : undefined`.
   * Only its presence is used (never stored or logged): it triggers `onUntrustedProxy` once.
   */
  forwardedFor?: string | string[] | undefined;
}

const DEFAULT_ACCOUNT_ADDRESS: ThrottleWindow = { points: 10, durationSeconds: 900 };
const DEFAULT_ACCOUNT: ThrottleWindow = { points: 50, durationSeconds: 900 };
const DEFAULT_ADDRESS: ThrottleWindow = { points: 500, durationSeconds: 900 };

interface Count {
  scope: ThrottleScope;
  window: ThrottleWindow;
  counter: LimitCounter;
}

/**
 * Throttles sign-in on three counts: per account at one address, per account over every address,
 * and per address over every account (a much higher ceiling). Every attempt is counted BEFORE the
 * password is checked (one atomic add per key), so a burst of parallel guesses cannot slip
 * through between a check and a count; a successful sign-in clears its account's counts and
 * gives its point back to the address. Keys are SHA-256 hashes: no e-mail or address is written
 * to the store.
 *
 * Behind a proxy whose client address is not trusted (Fastify/Express `trustProxy` off), every
 * user has the proxy's address: an attacker's failures then lock only the accounts it guesses at
 * (per account and address), and everyone else only past the address ceiling. Configure
 * `trustProxy` for your proxy (see docs/rate-limits.md).
 *
 * @example
 * const throttle = new SignInThrottle({ store: { postgres: ownerPool } });
 * await throttle.attempt({ account: email, address: request.ip }); // throws RateLimitedError
 * const user = await checkPassword(email, password);
 * if (user) await throttle.succeeded({ account: email, address: request.ip });
 */
export class SignInThrottle {
  readonly #name: string;
  readonly #accountAddress: Count;
  readonly #account: Count;
  readonly #address: Count;
  readonly #options: SignInThrottleOptions;
  #warnedProxy = false;

  constructor(options: SignInThrottleOptions) {
    this.#options = options;
    this.#name = options.name ?? 'sign-in';
    if (!/^[a-z][a-z0-9_-]{0,39}$/.test(this.#name))
      throw new ConfigurationError('Sign-in throttle: name must be 1-40 of [a-z0-9_-], starting with a letter');
    const timeoutMs = options.storeTimeoutMs ?? 1000;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      throw new ConfigurationError('Sign-in throttle: storeTimeoutMs must be a positive number');
    const make = (scope: ThrottleScope, option: string, window: ThrottleWindow): Count => {
      if (!Number.isInteger(window.points) || window.points < 1)
        throw new ConfigurationError(`Sign-in throttle: ${option}.points must be a whole number ≥ 1`);
      if (!Number.isInteger(window.durationSeconds) || window.durationSeconds < 1)
        throw new ConfigurationError(`Sign-in throttle: ${option}.durationSeconds must be a whole number ≥ 1`);
      return {
        scope,
        window,
        counter: new LimitCounter(options.store, {
          // the key prefixes of the two original counts are kept: a rolling upgrade shares them
          keyPrefix: `tenantry:s:${this.#name}:${option}`,
          durationSeconds: window.durationSeconds,
          timeoutMs,
        }),
      };
    };
    this.#accountAddress = make(
      'account-address',
      'perAccountAddress',
      options.perAccountAddress ?? DEFAULT_ACCOUNT_ADDRESS,
    );
    this.#account = make('account', 'perAccount', options.perAccount ?? DEFAULT_ACCOUNT);
    this.#address = make('address', 'perAddress', options.perAddress ?? DEFAULT_ADDRESS);
  }

  /** Counts an attempt on its three counts; throws RateLimitedError when any is over. */
  async attempt(attempt: SignInAttempt): Promise<void> {
    if (!this.#warnedProxy && attempt.forwardedFor !== undefined && String(attempt.forwardedFor).trim() !== '') {
      this.#warnedProxy = true;
      try {
        this.#options.onUntrustedProxy?.({ throttle: this.#name });
      } catch {
        // a log's failure must not change the answer
      }
    }
    const keys = keysOf(attempt);
    let pair, account, address;
    try {
      [pair, account, address] = await Promise.all([
        this.#accountAddress.counter.add(keys.pair, 1),
        this.#account.counter.add(keys.account, 1),
        this.#address.counter.add(keys.address, 1),
      ]);
    } catch (error) {
      this.#options.onStoreError?.(error);
      if ((this.#options.onStoreDown ?? 'closed') === 'open') return;
      this.#limited('account', true);
      throw new RateLimitedError({ limit: this.#name, scope: 'account', retryAfterSeconds: 1, storeDown: true });
    }
    // the address first: it says less about the account (no hint that this e-mail is targeted)
    for (const [count, state] of [
      [this.#address, address],
      [this.#accountAddress, pair],
      [this.#account, account],
    ] as const) {
      if (state.consumed > count.window.points) {
        this.#limited(count.scope, false);
        throw new RateLimitedError({
          limit: this.#name,
          // the error's scope stays one of the two a client may see: the pair is the account's
          scope: count.scope === 'address' ? 'address' : 'account',
          retryAfterSeconds: Math.max(1, Math.ceil(state.msBeforeReset / 1000)),
        });
      }
    }
  }

  /**
   * A successful sign-in: clears its account's counts and gives the address its point back (the
   * users behind one address who sign in do not use up its ceiling). Never throws.
   */
  async succeeded(attempt: SignInAttempt): Promise<void> {
    const keys = keysOf(attempt);
    await Promise.all([
      this.#accountAddress.counter.reset(keys.pair),
      this.#account.counter.reset(keys.account),
      this.#address.counter.reward(keys.address, 1),
    ]).catch((error: unknown) => {
      this.#options.onStoreError?.(error);
    });
  }

  #limited(scope: ThrottleScope, storeDown: boolean): void {
    try {
      this.#options.onLimited?.({ throttle: this.#name, scope, storeDown });
    } catch {
      // a metric's failure must not change the answer
    }
  }
}

// accounts as typed differ by case and spaces only: one count for all of them
function keysOf(attempt: SignInAttempt): { account: string; address: string; pair: string } {
  const account = attempt.account.trim().toLowerCase();
  const address = addressKey(attempt.address.trim().toLowerCase());
  return {
    account: sha256(account),
    address: sha256(address),
    // length-prefixed: no account and address pair can spell another pair
    pair: sha256(`${account.length}:${account}\n${address}`),
  };
}

/**
 * The address an attempt is counted under: an IPv6 address by its /64 (one subscriber's or one
 * host's whole prefix: a client given a /64 would otherwise get a fresh budget per address), an
 * IPv4-mapped IPv6 address as its IPv4 address, anything else as given.
 */
export function addressKey(address: string): string {
  if (!isIPv6(address)) return address;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(address);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  // expand "::" so the first four groups are the /64
  const [head, tail = ''] = address.split('%')[0]!.split('::') as [string, string?];
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::')
    ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
