import { AccessError } from './access-error.js';

/**
 * What the resolver reads of an HTTP request (or a WebSocket/SSE handshake): framework-neutral,
 * so the Fastify and Express adapters, and a custom one, fill it the same way.
 */
export interface RequestFacts {
  /** The Host (or `:authority`) header, as sent. */
  host?: string | undefined;
  /** Request headers, lower-case names (Node's `IncomingMessage.headers` fits). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /**
   * The headers as received, names and values alternating (Node's `IncomingMessage.rawHeaders`).
   * Node keeps only the first of a repeated `Authorization` or `Host` and joins a repeated
   * `X-Tenant` with a comma, so `headers` alone cannot show a repetition: with `rawHeaders`, a
   * header the resolver reads that was sent twice is refused. The adapters fill it.
   */
  rawHeaders?: readonly string[] | undefined;
  /**
   * The request-target as received (Node's `IncomingMessage.url`; Express's `originalUrl`). In
   * absolute form (`GET http://a.example/x HTTP/1.1`, as sent to proxies) it names a host of its
   * own, which must be the Host header's: a proxy that routes by the target while the resolver
   * reads Host would otherwise see two different tenants. The adapters fill it.
   */
  target?: string | undefined;
  /** A tenant id or slug the route's path names (e.g. `/t/:tenant/...`), when the adapter extracts one. */
  pathTenant?: string | undefined;
  /** Method and path, for the audit entries of staff requests. */
  method?: string | undefined;
  path?: string | undefined;
}

const MAX_CREDENTIAL_LENGTH = 8192;
// RFC 9110 §11.1: the scheme is case-insensitive; one or more spaces before a token68 credential
const BEARER = /^bearer +([A-Za-z0-9_\-.~+/]+=*)$/i;

/** How many times `name` (lower-case) was sent, from `rawHeaders`; undefined without them. */
function rawCount(facts: RequestFacts, name: string): number | undefined {
  const raw = facts.rawHeaders;
  if (!Array.isArray(raw)) return undefined;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) count++;
  return count;
}

/** The one value of a header (a repeated header is ambiguous: treated as malformed → undefined plus a flag). */
export function headerValue(facts: RequestFacts, name: string): { value: string | undefined; repeated: boolean } {
  if ((rawCount(facts, name) ?? 0) > 1) return { value: undefined, repeated: true };
  const raw = facts.headers[name];
  if (Array.isArray(raw))
    return raw.length === 1 ? { value: raw[0], repeated: false } : { value: undefined, repeated: raw.length > 1 };
  return { value: raw === '' ? undefined : raw, repeated: false };
}

/**
 * The bearer credential of `Authorization` (scheme in any case), or `malformed` when the header
 * is there but is not one, or was sent more than once.
 */
export function bearerCredential(facts: RequestFacts): string | undefined | 'malformed' {
  const { value, repeated } = headerValue(facts, 'authorization');
  if (repeated) return 'malformed';
  if (value === undefined) return undefined;
  if (value.length > MAX_CREDENTIAL_LENGTH) return 'malformed';
  const match = BEARER.exec(value);
  return match ? match[1]! : 'malformed';
}

/** True when a credential looks like a Tenantry API key rather than a JWT. */
export function looksLikeApiKey(credential: string): boolean {
  return credential.startsWith('tnry_');
}

// RFC 9110 §7.2 / RFC 3986 §3.2.2, narrowed to what names a server: an IPv6 literal, or dot-separated
// LDH labels (an IPv4 address and a single label such as localhost included), then an optional port
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;
const IPV6_LITERAL = /^\[[0-9a-f:.]{2,45}\]$/i;
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\//i;

/** Whether a Host header value is a host (name or IP literal) with an optional port. */
export function isValidHostHeader(value: string): boolean {
  if (value.length === 0 || value.length > 260) return false;
  const port = /:(\d{1,5})$/.exec(value);
  if (port && Number(port[1]) > 65535) return false;
  const host = port ? value.slice(0, port.index) : value;
  if (IPV6_LITERAL.test(host)) return true;
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  return name.length > 0 && name.length <= 253 && name.split('.').every((label) => LABEL.test(label));
}

// host[:port] as a URL would write it: lower case, IDN as punycode, the scheme's default port dropped
function authorityOf(value: string, scheme = 'http:'): string | undefined {
  try {
    return new URL(`${scheme}//${value}/`).host;
  } catch {
    return undefined;
  }
}

/**
 * Refuses a request whose authority is ambiguous: a Host header that is not a host with an
 * optional port (400 HOST_INVALID, RFC 9112 §3.2 asks for a 400), or an absolute-form target
 * naming another host than Host (400 HOST_MISMATCH). `TenantResolver.resolve` calls it first;
 * call it for routes outside the resolver too, so that every route answers the same.
 *
 * @example
 * app.addHook('onRequest', async (req) => checkRequestAuthority({ host: req.headers.host, headers: req.headers, target: req.raw.url }));
 */
export function checkRequestAuthority(facts: RequestFacts): void {
  const host = facts.host;
  if (host !== undefined && !isValidHostHeader(host)) throw new AccessError('HOST_INVALID');
  const target = facts.target;
  if (target === undefined || !ABSOLUTE_FORM.test(target)) return;
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new AccessError('HOST_MISMATCH', { message: 'The request target is not a valid absolute URL' });
  }
  if (host === undefined || url.host === '' || authorityOf(host, url.protocol) !== url.host)
    throw new AccessError('HOST_MISMATCH');
}
