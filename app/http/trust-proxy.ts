import { isIP } from 'node:net';

/**
 * `TENANTRY_TRUST_PROXY`: which proxies' `X-Forwarded-For` gives the client's address (Fastify's
 * `trustProxy`). Unset or `off`: none (the socket's address is the client's); `on`: every proxy
 * (only when the server is reachable through the proxy alone); a number: that many hops; else a
 * comma-separated list of addresses or CIDR ranges (`10.0.0.0/8,127.0.0.1`). A bad value stops
 * the start. Behind a proxy left untrusted, every user shares its address: the sign-in throttles
 * warn once when X-Forwarded-For arrives anyway (docs/rate-limits.md).
 */
export function trustProxyFromEnv(env: NodeJS.ProcessEnv = process.env): boolean | number | string {
  const value = env.TENANTRY_TRUST_PROXY?.trim();
  if (value === undefined || value === '' || value === 'off') return false;
  if (value === 'on') return true;
  if (/^\d{1,2}$/.test(value)) {
    if (Number(value) < 1) throw new Error('TENANTRY_TRUST_PROXY: a number of hops must be at least 1');
    return Number(value);
  }
  const entries = value.split(',').map((e) => e.trim());
  const bad = entries.find((e) => !addressOrRange(e));
  if (bad !== undefined)
    throw new Error(
      `TENANTRY_TRUST_PROXY must be off, on, a number of hops, or addresses / CIDR ranges separated by commas (got ${JSON.stringify(bad)})`,
    );
  return entries.join(',');
}

/** An IPv4 or IPv6 address (checked by node, so `999.1.1.1` is not one), optionally with a prefix length it can have. */
function addressOrRange(entry: string): boolean {
  const [address = '', prefix, ...rest] = entry.split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128);
}
