/**
 * What the resolver reads of an HTTP request (or a WebSocket/SSE handshake): framework-neutral,
 * so the Fastify and Express adapters, and a custom one, fill it the same way.
 */
export interface RequestFacts {
  /** The Host (or `:authority`) header, as sent. */
  host?: string | undefined;
  /** Request headers, lower-case names (Node's `IncomingMessage.headers` fits). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** A tenant id or slug the route's path names (e.g. `/t/:tenant/...`), when the adapter extracts one. */
  pathTenant?: string | undefined;
  /** Method and path, for the audit entries of staff requests. */
  method?: string | undefined;
  path?: string | undefined;
}

const MAX_CREDENTIAL_LENGTH = 8192;

/** The one value of a header (a repeated header is ambiguous: treated as malformed → undefined plus a flag). */
export function headerValue(facts: RequestFacts, name: string): { value: string | undefined; repeated: boolean } {
  const raw = facts.headers[name];
  if (Array.isArray(raw))
    return raw.length === 1 ? { value: raw[0], repeated: false } : { value: undefined, repeated: raw.length > 1 };
  return { value: raw === '' ? undefined : raw, repeated: false };
}

/** The bearer credential of `Authorization`, or `malformed` when the header is there but is not one. */
export function bearerCredential(facts: RequestFacts): string | undefined | 'malformed' {
  const { value, repeated } = headerValue(facts, 'authorization');
  if (repeated) return 'malformed';
  if (value === undefined) return undefined;
  if (value.length > MAX_CREDENTIAL_LENGTH) return 'malformed';
  const match = /^Bearer ([A-Za-z0-9_\-.~+/]+=*)$/.exec(value);
  return match ? match[1]! : 'malformed';
}

/** True when a credential looks like a Tenantry API key rather than a JWT. */
export function looksLikeApiKey(credential: string): boolean {
  return credential.startsWith('tnry_');
}
