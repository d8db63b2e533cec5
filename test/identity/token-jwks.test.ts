import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, type JWK } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { TokenError, TokenIssuer, TokenVerifier, type JwksOptions, type TokenErrorReason } from '../../src/index.js';

// A JWKS endpoint on 127.0.0.1 that counts its fetches. Time is moved with a fake Date only
// (jose's cache and cooldown read Date.now()); sockets and fetch keep their real timers, so
// nothing here sleeps.

const ISSUER = 'https://auth.example.test/';
const AUDIENCE = 'tenantry-api';
const TENANT = randomUUID();
const USER = randomUUID();
const CACHE_MS = 60_000;
const COOLDOWN_MS = 1_000;

interface JwksEndpoint {
  url: string;
  keys: JWK[];
  failing: boolean;
  fetches: number;
  close(): Promise<void>;
}

const open: JwksEndpoint[] = [];

async function jwksEndpoint(keys: JWK[]): Promise<JwksEndpoint> {
  const state = { keys, failing: false, fetches: 0 };
  const server: Server = createServer((_request, response) => {
    state.fetches += 1;
    if (state.failing) {
      response.writeHead(500).end('down');
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const endpoint: JwksEndpoint = Object.assign(state, {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
  open.push(endpoint);
  return endpoint;
}

function signer(keyId: string): TokenIssuer {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return new TokenIssuer({ algorithm: 'RS256', privateKey, keyId, issuer: ISSUER, audience: AUDIENCE });
}

function verifier(url: string, jwks: JwksOptions = {}): TokenVerifier {
  return new TokenVerifier({
    algorithms: ['RS256'],
    jwksUrl: url,
    jwks: { cacheMaxAgeMs: CACHE_MS, cooldownMs: COOLDOWN_MS, ...jwks },
    issuer: ISSUER,
    audience: AUDIENCE,
  });
}

async function refused(
  attempt: Promise<unknown>,
  code: TokenError['code'],
  reason: TokenErrorReason,
  token: string,
): Promise<void> {
  const error = await attempt.then(
    () => expect.fail('the token was accepted'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TokenError);
  const e = error as TokenError;
  expect({ code: e.code, reason: e.reason, status: e.status }).toEqual({
    code,
    reason,
    status: code === 'TOKEN_KEYS_UNAVAILABLE' ? 503 : 401,
  });
  expect(`${e.message} ${JSON.stringify(e.details)} ${String(e.cause ?? '')}`).not.toContain(token.split('.')[1]);
  expect(e.message).not.toContain(token);
}

let k1: TokenIssuer;
let k2: TokenIssuer;
beforeAll(() => {
  k1 = signer('k1');
  k2 = signer('k2');
});

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(open.splice(0).map((endpoint) => endpoint.close()));
});

function startClock(): (ms: number) => void {
  vi.useFakeTimers({ toFake: ['Date'] });
  let now = Date.now();
  return (ms) => {
    now += ms;
    vi.setSystemTime(now);
  };
}

describe('TokenVerifier with a JWKS endpoint', () => {
  it('fetches once and serves later tokens from the cache', async () => {
    const endpoint = await jwksEndpoint([k1.publicJwk()]);
    const v = verifier(endpoint.url);
    for (let i = 0; i < 5; i++) {
      await expect(v.verify(await k1.issue({ subject: USER, tenantId: TENANT }))).resolves.toMatchObject({
        subject: USER,
        tenantId: TENANT,
        keyId: 'k1',
      });
    }
    expect(endpoint.fetches).toBe(1);
  });

  it('rotates: a new kid verifies after a refetch (cooldown permitting); a removed kid is refused once the cache expires', async () => {
    const advance = startClock();
    const endpoint = await jwksEndpoint([k1.publicJwk()]);
    const v = verifier(endpoint.url);
    const byK1 = await k1.issue({ subject: USER, tenantId: TENANT });
    await v.verify(byK1);
    expect(endpoint.fetches).toBe(1);

    // The issuer publishes k2. Within the cooldown an unknown kid does not trigger a fetch.
    endpoint.keys = [k1.publicJwk(), k2.publicJwk()];
    const byK2 = await k2.issue({ subject: USER, tenantId: TENANT });
    await refused(v.verify(byK2), 'TOKEN_INVALID', 'unknown_key', byK2);
    expect(endpoint.fetches).toBe(1);
    advance(COOLDOWN_MS + 1);
    await expect(v.verify(byK2)).resolves.toMatchObject({ keyId: 'k2' });
    expect(endpoint.fetches).toBe(2);

    // The issuer retires k1: cached until the set expires, refused after the refresh.
    endpoint.keys = [k2.publicJwk()];
    await expect(v.verify(byK1)).resolves.toMatchObject({ keyId: 'k1' });
    expect(endpoint.fetches).toBe(2);
    advance(CACHE_MS);
    await refused(v.verify(byK1), 'TOKEN_INVALID', 'unknown_key', byK1);
    expect(endpoint.fetches).toBe(3);
    await expect(v.verify(byK2)).resolves.toMatchObject({ keyId: 'k2' });
    expect(endpoint.fetches).toBe(3);
  });

  it('refuses a token whose kid is published but whose signature is another key', async () => {
    const endpoint = await jwksEndpoint([k1.publicJwk()]);
    const impostor = signer('k1');
    const forged = await impostor.issue({ subject: USER, tenantId: TENANT });
    await refused(verifier(endpoint.url).verify(forged), 'TOKEN_INVALID', 'signature', forged);
  });

  it('refuses HS256 signed with a published public key, before fetching anything', async () => {
    const endpoint = await jwksEndpoint([k1.publicJwk()]);
    const forged = await new SignJWT({
      sub: USER,
      tid: TENANT,
      iss: ISSUER,
      aud: AUDIENCE,
      exp: Math.floor(Date.now() / 1000) + 600,
    })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .sign(new TextEncoder().encode(JSON.stringify(k1.publicJwk())));
    await refused(verifier(endpoint.url).verify(forged), 'TOKEN_INVALID', 'algorithm', forged);
    expect(endpoint.fetches).toBe(0);
  });

  it('tries the published keys for a token without kid', async () => {
    const endpoint = await jwksEndpoint([k1.publicJwk(), k2.publicJwk()]);
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const noKid = new TokenIssuer({ algorithm: 'RS256', privateKey, issuer: ISSUER, audience: AUDIENCE });
    const unpublished = await noKid.issue({ subject: USER, tenantId: TENANT });
    const v = verifier(endpoint.url);
    await refused(v.verify(unpublished), 'TOKEN_INVALID', 'signature', unpublished);
    endpoint.keys = [k1.publicJwk(), { ...noKid.publicJwk(), kid: undefined }];
    await expect(verifier(endpoint.url).verify(unpublished)).resolves.toMatchObject({
      subject: USER,
      keyId: undefined,
    });
  });

  it('answers TOKEN_KEYS_UNAVAILABLE (503) when the endpoint is unreachable', async () => {
    const endpoint = await jwksEndpoint([]);
    const url = endpoint.url;
    await endpoint.close();
    const token = await k1.issue({ subject: USER, tenantId: TENANT });
    await refused(verifier(url).verify(token), 'TOKEN_KEYS_UNAVAILABLE', 'keys_unavailable', token);
  });

  it('answers TOKEN_KEYS_UNAVAILABLE when the endpoint serves a private key (an identity provider mistake)', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const leaked = { ...(privateKey.export({ format: 'jwk' }) as JWK), kid: 'k1' };
    const endpoint = await jwksEndpoint([leaked]);
    const token = await k1.issue({ subject: USER, tenantId: TENANT });
    await refused(verifier(endpoint.url).verify(token), 'TOKEN_KEYS_UNAVAILABLE', 'keys_unavailable', token);
  });

  it('after a failed fetch, waits for the cooldown before asking the endpoint again', async () => {
    const advance = startClock();
    const endpoint = await jwksEndpoint([k1.publicJwk()]);
    endpoint.failing = true;
    const v = verifier(endpoint.url);
    const token = await k1.issue({ subject: USER, tenantId: TENANT });
    await refused(v.verify(token), 'TOKEN_KEYS_UNAVAILABLE', 'keys_unavailable', token);
    await refused(v.verify(token), 'TOKEN_KEYS_UNAVAILABLE', 'keys_unavailable', token);
    expect(endpoint.fetches).toBe(1);
    endpoint.failing = false;
    advance(COOLDOWN_MS + 1);
    await expect(v.verify(token)).resolves.toMatchObject({ keyId: 'k1' });
    expect(endpoint.fetches).toBe(2);
  });

  it('with the endpoint down, serves an expired key set only within staleIfErrorMs, and never for an unknown kid', async () => {
    const advance = startClock();
    const endpoint = await jwksEndpoint([k1.publicJwk()]);
    const strict = verifier(endpoint.url);
    const lenient = verifier(endpoint.url, { staleIfErrorMs: 300_000 });
    const byK1 = await k1.issue({ subject: USER, tenantId: TENANT, ttlSeconds: 3600 });
    await strict.verify(byK1);
    await lenient.verify(byK1);

    endpoint.failing = true;
    advance(CACHE_MS + 1);
    await refused(strict.verify(byK1), 'TOKEN_KEYS_UNAVAILABLE', 'keys_unavailable', byK1);
    await expect(lenient.verify(byK1)).resolves.toMatchObject({ keyId: 'k1' });
    const byK2 = await k2.issue({ subject: USER, tenantId: TENANT });
    await refused(lenient.verify(byK2), 'TOKEN_KEYS_UNAVAILABLE', 'keys_unavailable', byK2);

    advance(300_000);
    await refused(lenient.verify(byK1), 'TOKEN_KEYS_UNAVAILABLE', 'keys_unavailable', byK1);
  });
});
