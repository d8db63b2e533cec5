import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { Agent, fetch as undiciFetch } from 'undici';

/**
 * Whether an address is on the public internet: ipaddr.js's `unicast` range only. Loopback,
 * private, link-local (cloud metadata at 169.254.169.254), carrier-grade NAT, unique-local,
 * multicast, reserved and the IPv6 forms that embed an IPv4 address (mapped, 6to4, Teredo) are not.
 */
export function isPublicAddress(address: string): boolean {
  try {
    const parsed = ipaddr.process(address);
    // IPv4-compatible IPv6 (::/96, deprecated) carries an IPv4 address ipaddr.js calls unicast
    if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).parts.slice(0, 6).every((p) => p === 0)) return false;
    return parsed.range() === 'unicast';
  } catch {
    return false;
  }
}

/**
 * What can be told of a URL without a lookup: false for an address literal that is not public and
 * for `localhost` names; true otherwise (a name is checked where the connection is made).
 */
export function mayBePublic(url: URL): boolean {
  const host = url.hostname
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '')
    .toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return false;
  return isIP(host) === 0 || isPublicAddress(host);
}

/** A request a tenant aimed at an address of the server's own network, refused before connecting. */
export class EgressRefusedError extends Error {
  readonly code = 'EGRESS_REFUSED';
  constructor() {
    super('The URL leads to a private, loopback or reserved address: only public addresses are reached');
    this.name = 'EgressRefusedError';
  }
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

// Checked where the socket connects, on the addresses it will use (not on an earlier, separate
// resolution a rebinding DNS server could answer differently).
function publicOnlyLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const all = addresses as LookupAddress[];
    if (all.length === 0 || !all.every((a) => isPublicAddress(a.address)))
      return callback(new EgressRefusedError(), []);
    if (options.all) return callback(null, all);
    callback(null, all[0]!.address, all[0]!.family);
  });
}

/**
 * A `fetch` for URLs that tenants choose (webhook endpoints): it reaches public addresses only, so a
 * tenant cannot make the server call its own network (SSRF) by a name or by an address literal.
 * With `allowPrivate` (local development and tests, `WEBHOOKS_ALLOW_PRIVATE=1` in the reference
 * server) it is the plain fetch. Redirects are the caller's to refuse (`redirect: 'manual'`).
 *
 * Written with undici's own Agent because Node's global fetch takes no lookup of its own; the
 * address ranges come from ipaddr.js.
 */
export function publicOnlyFetch(options: { allowPrivate?: boolean } = {}): typeof fetch {
  if (options.allowPrivate) return fetch;
  const dispatcher = new Agent({ connect: { lookup: publicOnlyLookup } });
  const guarded = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    // an address literal is connected to without a lookup: check it here
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0 && !isPublicAddress(host)) throw new EgressRefusedError();
    return (await undiciFetch(url, { ...(init as object), dispatcher } as never)) as unknown as Response;
  };
  return guarded as typeof fetch;
}
