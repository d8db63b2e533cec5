import { createHash, createHmac } from 'node:crypto';
import { isCanonicalTenantId } from '../context/tenant-id.js';
import { ConfigurationError, InvalidTenantIdError } from '../errors/tenantry-error.js';

const BLOCK = 64;
/** The longest lifetime of a signed value (s): a day. */
const MAX_TTL_SECONDS = 86_400;

/**
 * Turns a tenant id (and the epoch of the route it was sent on, 0 for the default route) into
 * the value placed in the `tenantry.context` setting.
 */
export interface ContextEncoder {
  /**
   * `binding`: what the value is bound to besides the tenant (Citus mode: the backend's global
   * pid, see docs/citus.md). It is not in the value; the signature covers it, and the database
   * verifies it against its own.
   */
  encode(tenantId: string, routeEpoch?: number, binding?: string): string;
}

/** Unsigned mode: the bare tenant id (`<id>.<route epoch>` off the default route). Fast; injected SQL can forge it. */
export const unsignedContext: ContextEncoder = Object.freeze({
  encode: (tenantId: string, routeEpoch = 0) => (routeEpoch === 0 ? tenantId : `${tenantId}.${routeEpoch}`),
});

interface CachedValue {
  value: string;
  refreshAt: number;
  /** What it was signed for: with the key, which then gives the route and the binding, see encode(). */
  tenantId: string;
}

/**
 * Signed mode: `<tenant>.<expiry epoch seconds>[.<route epoch>].<hex HMAC-SHA256>`, which
 * PostgreSQL verifies with a key the app role cannot read (and checks the route epoch against
 * where the tenant lives in that database). A value is reused for a fifth of its lifetime (at most
 * 60 s: its window), so signing costs one map lookup on the hot path even with many tenants (an
 * HMAC per statement for 10,000 tenants at a few thousand statements per second when it was one
 * second): a value in use is still valid for four fifths of its lifetime or more.
 *
 * The windows are the clock's, not the signer's: a tenant's window starts at whole multiples of
 * its length from an offset of the tenant's own (from its id), and the value expires its lifetime
 * after the window's start. So every app instance with the same secret (and a clock within a
 * second) sends the same value for a tenant in a window, and the database registers and remembers
 * one proof per tenant and window instead of one per instance (core 009: each registration costs
 * ≈ 70 µs of server CPU, and each value's first statements are checked in full). The offsets
 * spread the tenants' changes over the window: not every value changes at the same second.
 */
export class ContextSigner implements ContextEncoder {
  readonly #secret: Buffer;
  readonly #ttlSeconds: number;
  /** How long a signed value is reused (whole seconds): a fifth of its lifetime, at most 60, at least 1. */
  readonly #windowSeconds: number;
  readonly #cache = new Map<string, CachedValue>();

  constructor(secret: string, options: { ttlSeconds?: number } = {}) {
    if (typeof secret !== 'string' || secret.length < 32) {
      throw new ConfigurationError('The tenant context secret must be at least 32 characters');
    }
    this.#secret = Buffer.from(secret, 'utf8');
    const ttl: unknown = options.ttlSeconds ?? 300;
    // whole seconds: the expiry is the value's second part, digits only (a fraction would read as
    // a route epoch); at most a day: the lifetime bounds the use of a leaked value
    if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < 5 || ttl > MAX_TTL_SECONDS)
      throw new ConfigurationError(
        `A signed value's lifetime (contextTtlSeconds) must be a whole number of seconds from 5 to ${MAX_TTL_SECONDS}, got ${
          typeof ttl === 'number' ? String(ttl) : `a ${typeof ttl}`
        }`,
      );
    this.#ttlSeconds = ttl;
    this.#windowSeconds = Math.min(60, Math.floor(this.#ttlSeconds / 5));
  }

  encode(tenantId: string, routeEpoch = 0, binding?: string): string {
    const now = Date.now();
    // the tenant id itself on the default route, unbound: no key string built per statement
    const key =
      routeEpoch === 0 && binding === undefined
        ? tenantId
        : `${routeEpoch === 0 ? tenantId : `${tenantId}.${routeEpoch}`}${binding === undefined ? '' : `/${binding}`}`;
    const hit = this.#cache.get(key);
    // the key is not unique for ids that are not ids ('<id>.3' as a tenant, route 0, is the key of
    // <id> on route 3): a hit counts only for the tenant it was signed for. For one tenant the key
    // gives the route and the binding back (what follows the id, '.' or '/', says which)
    if (hit && hit.refreshAt > now && hit.tenantId === tenantId) return hit.value;
    if (!Number.isSafeInteger(routeEpoch) || routeEpoch < 0)
      throw new ConfigurationError('routeEpoch must be a non-negative integer');
    // never sign anything but a canonical id: the value is a proof, and the check reads its parts
    if (!isCanonicalTenantId(tenantId)) throw new InvalidTenantIdError();
    // the tenant's window that holds now: it starts `offset` seconds past a whole multiple of its
    // length (the id's first 32 bits spread the tenants over it; canonical: lower-case hex)
    const nowSeconds = Math.floor(now / 1000);
    const offset = Number.parseInt(tenantId.slice(0, 8), 16) % this.#windowSeconds;
    const windowStart = nowSeconds - ((nowSeconds - offset) % this.#windowSeconds);
    const expiry = windowStart + this.#ttlSeconds;
    const payload = routeEpoch === 0 ? `${tenantId}.${expiry}` : `${tenantId}.${expiry}.${routeEpoch}`;
    // bound: the MAC covers `<payload>.<binding>`, the value carries the payload alone
    const signed = binding === undefined ? payload : `${payload}.${binding}`;
    const value = `${payload}.${createHmac('sha256', this.#secret).update(signed).digest('hex')}`;
    if (this.#cache.size > 100_000) this.#cache.clear();
    this.#cache.set(key, { value, refreshAt: (windowStart + this.#windowSeconds) * 1000, tenantId });
    return value;
  }
}

/** The HMAC inner and outer pads of RFC 2104 for `secret`, as stored in `tenantry_private.context_key`. */
export function hmacPads(secret: string): { ipad: Buffer; opad: Buffer } {
  let key = Buffer.from(secret, 'utf8');
  if (key.length > BLOCK) key = createHash('sha256').update(key).digest();
  const padded = Buffer.alloc(BLOCK);
  key.copy(padded);
  const ipad = Buffer.alloc(BLOCK);
  const opad = Buffer.alloc(BLOCK);
  for (let i = 0; i < BLOCK; i++) {
    ipad[i] = padded[i]! ^ 0x36;
    opad[i] = padded[i]! ^ 0x5c;
  }
  return { ipad, opad };
}
