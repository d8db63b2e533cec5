import { createHash, createHmac } from 'node:crypto';
import { isCanonicalTenantId } from '../context/tenant-id.js';
import { ConfigurationError, InvalidTenantIdError } from '../errors/tenantry-error.js';

const BLOCK = 64;

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
 * where the tenant lives in that database). Values are cached per tenant and route for a fifth of
 * their lifetime (at most 60 s), so signing costs one map lookup on the hot path even with many
 * tenants (an HMAC per statement for 10,000 tenants at a few thousand statements per second when
 * it was one second): a value in use is still valid for four fifths of its lifetime or more.
 */
export class ContextSigner implements ContextEncoder {
  readonly #secret: Buffer;
  readonly #ttlSeconds: number;
  /** How long a signed value is reused (ms): a fifth of its lifetime, at most 60 s. */
  readonly #reuseMs: number;
  readonly #cache = new Map<string, CachedValue>();

  constructor(secret: string, options: { ttlSeconds?: number } = {}) {
    if (typeof secret !== 'string' || secret.length < 32) {
      throw new ConfigurationError('The tenant context secret must be at least 32 characters');
    }
    this.#secret = Buffer.from(secret, 'utf8');
    this.#ttlSeconds = options.ttlSeconds ?? 300;
    if (!(this.#ttlSeconds >= 5)) throw new ConfigurationError('ttlSeconds must be at least 5');
    this.#reuseMs = Math.min(60_000, Math.floor((this.#ttlSeconds * 1000) / 5));
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
    const expiry = Math.floor(now / 1000) + this.#ttlSeconds;
    const payload = routeEpoch === 0 ? `${tenantId}.${expiry}` : `${tenantId}.${expiry}.${routeEpoch}`;
    // bound: the MAC covers `<payload>.<binding>`, the value carries the payload alone
    const signed = binding === undefined ? payload : `${payload}.${binding}`;
    const value = `${payload}.${createHmac('sha256', this.#secret).update(signed).digest('hex')}`;
    if (this.#cache.size > 100_000) this.#cache.clear();
    this.#cache.set(key, { value, refreshAt: now + this.#reuseMs, tenantId });
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
