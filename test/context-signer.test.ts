import { createHmac, randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ContextSigner } from '../src/data/context-signer.js';
import { ConfigurationError, InvalidTenantIdError } from '../src/errors/tenantry-error.js';

const SECRET = 'a-context-secret-of-at-least-32-characters';
const TENANT = '3f2a9c10-1b2c-4d5e-8f90-123456789abc';
/** A moment well inside the epoch, at a whole second (ms). */
const T0 = 1_800_000_000_000;

function expiryOf(value: string): number {
  return Number(value.split('.')[1]);
}

function macOf(payload: string): string {
  return createHmac('sha256', SECRET).update(payload).digest('hex');
}

afterEach(() => {
  vi.useRealTimers();
});

describe('ContextSigner: values aligned to the tenant’s window', () => {
  it('gives every signer with the secret the same value for a tenant within its window, a new one in the next', () => {
    vi.useFakeTimers({ now: T0 });
    const first = new ContextSigner(SECRET);
    const value = first.encode(TENANT);
    const expiry = expiryOf(value);
    // the window is 60 s (a fifth of 300, at most 60): it started at most 59 s ago
    const windowStart = expiry - 300;
    expect(T0 / 1000 - windowStart).toBeGreaterThanOrEqual(0);
    expect(T0 / 1000 - windowStart).toBeLessThan(60);
    expect(value).toBe(`${TENANT}.${expiry}.${macOf(`${TENANT}.${expiry}`)}`);

    // another instance (a fresh signer, no cache) anywhere in the same window: the same value
    for (const second of [windowStart, windowStart + 1, windowStart + 30, windowStart + 59]) {
      vi.setSystemTime(second * 1000 + 999);
      expect(new ContextSigner(SECRET).encode(TENANT)).toBe(value);
      expect(first.encode(TENANT)).toBe(value);
    }
    // the next window: a new value, for both, expiring a window later
    vi.setSystemTime((windowStart + 60) * 1000);
    const next = new ContextSigner(SECRET).encode(TENANT);
    expect(expiryOf(next)).toBe(expiry + 60);
    expect(first.encode(TENANT)).toBe(next);
  });

  it('keeps a value in use valid for four fifths of its lifetime or more, for any tenant, time and lifetime', () => {
    for (const ttl of [5, 7, 10, 59, 300, 301, 3600]) {
      const window = Math.min(60, Math.floor(ttl / 5));
      for (let i = 0; i < 200; i++) {
        const now = T0 + Math.floor(Math.random() * 86_400_000);
        vi.useFakeTimers({ now });
        const tenant = randomUUID();
        const remaining = expiryOf(new ContextSigner(SECRET, { ttlSeconds: ttl }).encode(tenant)) - now / 1000;
        expect(remaining).toBeGreaterThan(ttl - window);
        expect(remaining).toBeLessThanOrEqual(ttl);
        vi.useRealTimers();
      }
    }
  });

  it('spreads the tenants’ windows over the minute, so their values do not all change at one second', () => {
    vi.useFakeTimers({ now: T0 });
    const signer = new ContextSigner(SECRET);
    const starts = new Set<number>();
    for (let i = 0; i < 2_000; i++) starts.add((expiryOf(signer.encode(randomUUID())) - 300) % 60);
    // 2,000 tenants over 60 possible offsets: every offset is taken (the chance one is missed is ≈ 1e-28)
    expect(starts.size).toBe(60);
  });

  it('aligns a routed and a bound value too, each signed over what it covers', () => {
    vi.useFakeTimers({ now: T0 });
    const routed = new ContextSigner(SECRET).encode(TENANT, 4);
    const expiry = expiryOf(routed);
    expect(routed).toBe(`${TENANT}.${expiry}.4.${macOf(`${TENANT}.${expiry}.4`)}`);
    expect(new ContextSigner(SECRET).encode(TENANT, 4)).toBe(routed);
    const bound = new ContextSigner(SECRET).encode(TENANT, 0, '10000000123');
    expect(bound).toBe(`${TENANT}.${expiry}.${macOf(`${TENANT}.${expiry}.10000000123`)}`);
    // the cache keeps routes and bindings apart
    const signer = new ContextSigner(SECRET);
    expect(signer.encode(TENANT)).not.toBe(signer.encode(TENANT, 4));
    expect(signer.encode(TENANT, 0, '1')).not.toBe(signer.encode(TENANT, 0, '2'));
  });

  it('refuses a lifetime that is not a whole number of seconds from 5 to a day, a short secret and a non-canonical id', () => {
    for (const ttl of [4, 7.5, 0, -10, 86_401, 9_007_199_254_740_991, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new ContextSigner(SECRET, { ttlSeconds: ttl })).toThrow(ConfigurationError);
    }
    // what it got, said (a lifetime is no secret); a string from process.env is named as one
    expect(() => new ContextSigner(SECRET, { ttlSeconds: 7.5 })).toThrow(/from 5 to 86400, got 7\.5$/);
    expect(() => new ContextSigner(SECRET, { ttlSeconds: '60' as unknown as number })).toThrow(/got a string$/);
    expect(new ContextSigner(SECRET, { ttlSeconds: 86_400 }).encode(TENANT)).toMatch(
      /^[0-9a-f-]{36}\.\d+\.[0-9a-f]{64}$/,
    );
    expect(() => new ContextSigner('short')).toThrow(ConfigurationError);
    const signer = new ContextSigner(SECRET);
    expect(() => signer.encode(TENANT.toUpperCase())).toThrow(InvalidTenantIdError);
    expect(() => signer.encode(TENANT, -1)).toThrow(ConfigurationError);
  });
});
