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
