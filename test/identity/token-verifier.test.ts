import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
  type JsonWebKey,
} from 'node:crypto';
import { base64url, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigurationError,
  TokenError,
  TokenIssuer,
  TokenVerifier,
  type TokenErrorCode,
  type TokenErrorReason,
  type TokenVerifierConfig,
} from '../../src/index.js';

// Forged tokens against the verifier: each refusal must carry its stable code and reason, and
// nothing of the token (nor its claim values) may appear in the message, details or cause.

const ISSUER = 'https://auth.example.test/';
const AUDIENCE = 'tenantry-api';
const SECRET = randomBytes(48).toString('base64url');
const TENANT_A = randomUUID();
const TENANT_B = randomUUID();
const USER = randomUUID();

function pemPair(type: 'rsa' | 'ec' | 'ed25519', options: object = {}): { publicKey: string; privateKey: string } {
  return generateKeyPairSync(type as 'rsa', {
    modulusLength: 2048,
    ...options,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
}

let rsa: { publicKey: string; privateKey: string };
let otherRsa: { publicKey: string; privateKey: string };
beforeAll(() => {
  rsa = pemPair('rsa');
  otherRsa = pemPair('rsa');
});

const now = () => Math.floor(Date.now() / 1000);

/** A token signed with `key` under `alg`, with sane defaults for every claim unless overridden. */
function forge(
  key: Uint8Array | string,
  alg: string,
  claims: JWTPayload = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  const payload: JWTPayload = {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: USER,
    tid: TENANT_A,
    iat: now(),
    exp: now() + 600,
    ...claims,
  };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
  // A PEM private key signs as itself; any other string (a secret, or a public PEM) is HMAC bytes.
  const signingKey =
    typeof key !== 'string' ? key : key.includes('PRIVATE KEY') ? createPrivateKey(key) : new TextEncoder().encode(key);
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT', ...header }).sign(signingKey);
}

function hsVerifier(overrides: Partial<TokenVerifierConfig> = {}): TokenVerifier {
  return new TokenVerifier({
    algorithms: ['HS256'],
    secret: SECRET,
    issuer: ISSUER,
    audience: AUDIENCE,
    ...overrides,
  } as TokenVerifierConfig<'required'>);
}

/** Asserts the refusal's code, reason and status, and that it leaks nothing of the token. */
async function refused(
  attempt: Promise<unknown>,
  code: TokenErrorCode,
  reason: TokenErrorReason,
  token: string,
  secrets: string[] = [],
): Promise<TokenError> {
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
  const visible = `${e.message}\n${JSON.stringify(e.details)}\n${e.stack ?? ''}\n${String(e.cause ?? '')}`;
  expect(visible).not.toContain(token);
  for (const part of token.split('.')) if (part.length >= 8) expect(visible).not.toContain(part);
  for (const secret of [...secrets, SECRET, TENANT_A, TENANT_B, USER]) expect(visible).not.toContain(secret);
  // jose's errors carry the decoded payload: they must never ride along as the cause.
  if (code !== 'TOKEN_KEYS_UNAVAILABLE') expect(e.cause).toBeUndefined();
  return e;
}

function configError(build: () => unknown, pattern: RegExp, secrets: string[] = []): void {
  let error: unknown;
  try {
    build();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ConfigurationError);
  const message = (error as Error).message;
  expect(message).toMatch(pattern);
  for (const secret of secrets)
    for (const line of secret.split('\n')) if (line.length > 20) expect(message).not.toContain(line);
}

describe('TokenVerifier configuration', () => {
  it('requires a non-empty list of known algorithms and never accepts none', () => {
    configError(() => hsVerifier({ algorithms: [] }), /at least one algorithm/);
    configError(() => hsVerifier({ algorithms: ['none' as 'HS256'] }), /"none"/);
    configError(() => hsVerifier({ algorithms: ['HS1' as 'HS256'] }), /unsupported algorithm "HS1"/);
  });

  it('refuses HS* and asymmetric algorithms in one verifier, and keys of the other kind', () => {
    configError(
      () =>
        new TokenVerifier({
          algorithms: ['HS256', 'RS256'],
          publicKey: rsa.publicKey,
          issuer: ISSUER,
          audience: AUDIENCE,
        }),
      /mix HS\* with asymmetric/,
    );
    configError(
      () => new TokenVerifier({ algorithms: ['HS256'], publicKey: rsa.publicKey, issuer: ISSUER, audience: AUDIENCE }),
      /need a secret/,
    );
    configError(
      () => new TokenVerifier({ algorithms: ['RS256'], secret: SECRET, issuer: ISSUER, audience: AUDIENCE }),
      /HS\* algorithms only/,
      [SECRET],
    );
  });

  it('refuses the RS256 public key PEM configured as an HS256 secret (HS/RS confusion from the config side)', () => {
    configError(
      () => new TokenVerifier({ algorithms: ['HS256'], secret: rsa.publicKey, issuer: ISSUER, audience: AUDIENCE }),
      /looks like a PEM or JWK/,
      [rsa.publicKey],
    );
  });

  it('refuses secrets shorter than the hash, without printing them', () => {
    const short = 'x'.repeat(31);
    configError(() => hsVerifier({ secret: short }), /at least 32 bytes for HS256/, [short]);
    configError(() => hsVerifier({ algorithms: ['HS512'], secret: 'y'.repeat(48) }), /at least 64 bytes for HS512/);
  });

  it('refuses private keys, weak RSA keys and keys that do not fit the algorithm', () => {
    const base = { issuer: ISSUER, audience: AUDIENCE };
    configError(
      () => new TokenVerifier({ ...base, algorithms: ['RS256'], publicKey: rsa.privateKey }),
      /private key PEM/,
      [rsa.privateKey],
    );
    configError(
      () => new TokenVerifier({ ...base, algorithms: ['ES256'], publicKey: rsa.publicKey }),
      /cannot be used with ES256/,
    );
    const weak = pemPair('rsa', { modulusLength: 1024 });
    configError(
      () => new TokenVerifier({ ...base, algorithms: ['RS256'], publicKey: weak.publicKey }),
      /at least 2048 bits/,
    );
    const p384 = pemPair('ec', { namedCurve: 'P-384' });
    configError(
      () => new TokenVerifier({ ...base, algorithms: ['ES256'], publicKey: p384.publicKey }),
      /cannot be used with ES256/,
    );
  });

  it('requires exactly one key source, an issuer, an audience and https for a remote JWKS', () => {
    configError(
      () =>
        new TokenVerifier({
          algorithms: ['RS256'],
          issuer: ISSUER,
          audience: AUDIENCE,
        } as unknown as TokenVerifierConfig),
      /exactly one key source/,
    );
    configError(
      () =>
        new TokenVerifier({
          algorithms: ['RS256'],
          publicKey: rsa.publicKey,
          jwksUrl: 'https://x.test/jwks',
          issuer: ISSUER,
          audience: AUDIENCE,
        } as unknown as TokenVerifierConfig),
      /exactly one key source/,
    );
    configError(() => hsVerifier({ issuer: undefined }), /^TokenVerifier: issuer:/);
    configError(() => hsVerifier({ audience: [] }), /^TokenVerifier: audience:/);
    configError(
      () =>
        new TokenVerifier({
          algorithms: ['RS256'],
          jwksUrl: 'http://idp.example.test/jwks',
          issuer: ISSUER,
          audience: AUDIENCE,
        }),
      /must use https/,
    );
    expect(
      new TokenVerifier({
        algorithms: ['RS256'],
        jwksUrl: 'http://127.0.0.1:1/jwks',
        issuer: ISSUER,
        audience: AUDIENCE,
      }).algorithms,
    ).toEqual(['RS256']);
  });
});

describe('TokenVerifier with an HS256 secret', () => {
  it('accepts a valid token and exposes subject, tenant, session, key id, expiry and every claim', async () => {
    const sid = randomUUID();
    const token = await forge(SECRET, 'HS256', { tid: TENANT_A.toUpperCase(), sid, kind: 'user', scopes: ['read'] });
    const verified = await hsVerifier().verify(token);
    expect(verified).toMatchObject({
      subject: USER,
      tenantId: TENANT_A,
      sessionId: sid,
      keyId: undefined,
      algorithm: 'HS256',
    });
    expect(verified.claims).toMatchObject({ kind: 'user', scopes: ['read'], tid: TENANT_A.toUpperCase() });
    expect(verified.expiresAt.getTime()).toBe((verified.claims.exp ?? 0) * 1000);
    expect(Object.isFrozen(verified.claims)).toBe(true);
  });

  it('refuses alg none', async () => {
    const token = new UnsecuredJWT({ iss: ISSUER, aud: AUDIENCE, sub: USER, tid: TENANT_A, exp: now() + 600 }).encode();
    await refused(hsVerifier().verify(token), 'TOKEN_INVALID', 'algorithm', token);
    const noneWithSignature = `${token}${base64url.encode('sig')}`;
    await refused(hsVerifier().verify(noneWithSignature), 'TOKEN_INVALID', 'algorithm', noneWithSignature);
  });

  it('refuses a token signed with another secret', async () => {
    const token = await forge(randomBytes(48).toString('base64url'), 'HS256');
    await refused(hsVerifier().verify(token), 'TOKEN_INVALID', 'signature', token);
  });

  it('refuses a tampered payload (tid swapped, signature kept)', async () => {
    const token = await forge(SECRET, 'HS256', { tid: TENANT_A });
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload))) as JWTPayload;
    const swapped = base64url.encode(JSON.stringify({ ...claims, tid: TENANT_B }));
    const forged = `${header}.${swapped}.${signature}`;
    await refused(hsVerifier().verify(forged), 'TOKEN_INVALID', 'signature', forged);
  });

  it('refuses an expired token as TOKEN_EXPIRED, and honours the clock tolerance', async () => {
    const token = await forge(SECRET, 'HS256', { iat: now() - 7200, exp: now() - 3600 });
    await refused(hsVerifier().verify(token), 'TOKEN_EXPIRED', 'expired', token);
    const justExpired = await forge(SECRET, 'HS256', { exp: now() - 1 });
    await refused(
      hsVerifier({ clockToleranceSeconds: 0 }).verify(justExpired),
      'TOKEN_EXPIRED',
      'expired',
      justExpired,
    );
    await expect(hsVerifier({ clockToleranceSeconds: 60 }).verify(justExpired)).resolves.toMatchObject({
      subject: USER,
    });
  });

  it('refuses a token older than maxTokenAgeSeconds, and one without iat when an age is required', async () => {
    const old = await forge(SECRET, 'HS256', { iat: now() - 3600 });
    await refused(hsVerifier({ maxTokenAgeSeconds: 600 }).verify(old), 'TOKEN_EXPIRED', 'too_old', old);
    const noIat = await forge(SECRET, 'HS256', { iat: undefined });
    const e = await refused(
      hsVerifier({ maxTokenAgeSeconds: 600 }).verify(noIat),
      'TOKEN_INVALID',
      'claim_missing',
      noIat,
    );
    expect(e.details.claim).toBe('iat');
  });

  it('refuses a token whose nbf or iat is in the future', async () => {
    const notYet = await forge(SECRET, 'HS256', { nbf: now() + 3600 });
    await refused(hsVerifier().verify(notYet), 'TOKEN_INVALID', 'not_yet_valid', notYet);
    const future = await forge(SECRET, 'HS256', { iat: now() + 3600, exp: now() + 7200 });
    await refused(hsVerifier({ maxTokenAgeSeconds: 600 }).verify(future), 'TOKEN_INVALID', 'issued_in_future', future);
  });

  it('refuses a wrong issuer and a wrong audience without printing either', async () => {
    const wrongIss = await forge(SECRET, 'HS256', { iss: 'https://evil.example.test/' });
    await refused(hsVerifier().verify(wrongIss), 'TOKEN_INVALID', 'issuer', wrongIss, ['evil.example']);
    const wrongAud = await forge(SECRET, 'HS256', { aud: ['billing-api', 'other-api'] });
    await refused(hsVerifier().verify(wrongAud), 'TOKEN_INVALID', 'audience', wrongAud, ['billing-api', 'other-api']);
    await expect(hsVerifier({ audience: ['other-api', 'x'] }).verify(wrongAud)).resolves.toMatchObject({
      subject: USER,
    });
  });

  it('refuses a missing or non-UUID tid, a missing sub or exp, and a malformed sid', async () => {
    const noTid = await forge(SECRET, 'HS256', { tid: undefined });
    expect((await refused(hsVerifier().verify(noTid), 'TOKEN_INVALID', 'claim_missing', noTid)).details.claim).toBe(
      'tid',
    );
    const badTid = await forge(SECRET, 'HS256', { tid: 'acme' });
    expect(
      (await refused(hsVerifier().verify(badTid), 'TOKEN_INVALID', 'claim_invalid', badTid, ['acme'])).details.claim,
    ).toBe('tid');
    const noSub = await forge(SECRET, 'HS256', { sub: undefined });
    expect((await refused(hsVerifier().verify(noSub), 'TOKEN_INVALID', 'claim_missing', noSub)).details.claim).toBe(
      'sub',
    );
    const noExp = await forge(SECRET, 'HS256', { exp: undefined });
    expect((await refused(hsVerifier().verify(noExp), 'TOKEN_INVALID', 'claim_missing', noExp)).details.claim).toBe(
      'exp',
    );
    const badSid = await forge(SECRET, 'HS256', { sid: 42 });
    expect((await refused(hsVerifier().verify(badSid), 'TOKEN_INVALID', 'claim_invalid', badSid)).details.claim).toBe(
      'sid',
    );
  });

  it('reads the tenant from a configured claim, and accepts no tenant only when configured so', async () => {
    const custom = await forge(SECRET, 'HS256', { tid: undefined, org: TENANT_B });
    await expect(hsVerifier({ tenantClaim: 'org' }).verify(custom)).resolves.toMatchObject({ tenantId: TENANT_B });
    const staff = await forge(SECRET, 'HS256', { tid: undefined, kind: 'staff' });
    const optional = new TokenVerifier({
      algorithms: ['HS256'],
      secret: SECRET,
      issuer: ISSUER,
      audience: AUDIENCE,
      tenant: 'optional',
    });
    const verified = await optional.verify(staff);
    expect(verified.tenantId).toBeUndefined();
    expect(verified.claims.kind).toBe('staff');
    const badTid = await forge(SECRET, 'HS256', { tid: 'not-a-uuid' });
    await refused(optional.verify(badTid), 'TOKEN_INVALID', 'claim_invalid', badTid);
  });

  it('refuses oversized and malformed tokens before parsing', async () => {
    const valid = await forge(SECRET, 'HS256');
    const huge = await forge(SECRET, 'HS256', { pad: 'p'.repeat(9000) });
    await refused(hsVerifier().verify(huge), 'TOKEN_INVALID', 'malformed', huge);
    await expect(hsVerifier({ maxTokenLength: 16_384 }).verify(huge)).resolves.toMatchObject({ subject: USER });
    for (const garbage of ['', 'abc', `${valid}.extra`, 'a.b.c', `!!!.${valid.split('.').slice(1).join('.')}`]) {
      await refused(hsVerifier().verify(garbage), 'TOKEN_INVALID', 'malformed', garbage || 'no-token');
    }
    // A garbled payload fails the signature check first: nothing unsigned is ever decoded.
    const [header, , signature] = valid.split('.');
    await refused(
      hsVerifier().verify(`${header}.!!!.${signature}`),
      'TOKEN_INVALID',
      'signature',
      `${header}.!!!.${signature}`,
    );
  });

  it('checks the typ header when configured', async () => {
    const plain = await forge(SECRET, 'HS256');
    await refused(hsVerifier({ type: 'at+jwt' }).verify(plain), 'TOKEN_INVALID', 'type', plain);
    const accessToken = await forge(SECRET, 'HS256', {}, { typ: 'at+jwt' });
    await expect(hsVerifier({ type: 'at+jwt' }).verify(accessToken)).resolves.toMatchObject({ subject: USER });
  });
});

describe('TokenVerifier with an RS256 public key', () => {
  const rsVerifier = (publicKey: string | JsonWebKey = rsa.publicKey) =>
    new TokenVerifier({ algorithms: ['RS256'], publicKey: publicKey as string, issuer: ISSUER, audience: AUDIENCE });

  it('accepts a token of the key pair, from a PEM or a JWK', async () => {
    const token = await forge(rsa.privateKey, 'RS256', {}, { kid: 'k1' });
    await expect(rsVerifier().verify(token)).resolves.toMatchObject({
      subject: USER,
      tenantId: TENANT_A,
      keyId: 'k1',
      algorithm: 'RS256',
    });
    const jwk = createPublicKey(rsa.publicKey).export({ format: 'jwk' });
    await expect(rsVerifier(jwk).verify(token)).resolves.toMatchObject({ subject: USER });
  });

  it('refuses HS256 signed with the RS256 public key PEM as the HMAC secret', async () => {
    const token = await forge(rsa.publicKey, 'HS256');
    await refused(rsVerifier().verify(token), 'TOKEN_INVALID', 'algorithm', token, [rsa.publicKey.split('\n')[1]!]);
  });

  it('refuses RS256 signed by another key pair, and PS256 when only RS256 is pinned', async () => {
    const other = await forge(otherRsa.privateKey, 'RS256');
    await refused(rsVerifier().verify(other), 'TOKEN_INVALID', 'signature', other);
    const pss = await forge(rsa.privateKey, 'PS256');
    await refused(rsVerifier().verify(pss), 'TOKEN_INVALID', 'algorithm', pss);
  });
});

describe('TokenVerifier with ES256 and EdDSA keys', () => {
  for (const [alg, type, options] of [
    ['ES256', 'ec', { namedCurve: 'P-256' }],
    ['EdDSA', 'ed25519', {}],
  ] as const) {
    it(`${alg}: verifies the issuer's tokens and refuses another key's and a tampered tid`, async () => {
      const pair = pemPair(type, options);
      const issuer = new TokenIssuer({
        algorithm: alg,
        privateKey: pair.privateKey,
        keyId: `${alg}-1`,
        issuer: ISSUER,
        audience: AUDIENCE,
      });
      const verifier = new TokenVerifier({
        algorithms: [alg],
        publicKey: issuer.publicJwk(),
        issuer: ISSUER,
        audience: AUDIENCE,
      });
      const token = await issuer.issue({
        subject: USER,
        tenantId: TENANT_A,
        sessionId: 's-1',
        claims: { kind: 'user' },
      });
      await expect(verifier.verify(token)).resolves.toMatchObject({
        subject: USER,
        tenantId: TENANT_A,
        sessionId: 's-1',
        keyId: `${alg}-1`,
        algorithm: alg,
      });

      const stranger = new TokenIssuer({
        algorithm: alg,
        privateKey: pemPair(type, options).privateKey,
        keyId: `${alg}-1`,
        issuer: ISSUER,
        audience: AUDIENCE,
      });
      const forged = await stranger.issue({ subject: USER, tenantId: TENANT_A });
      await refused(verifier.verify(forged), 'TOKEN_INVALID', 'signature', forged);

      const [header, , signature] = token.split('.');
      const swapped = `${header}.${base64url.encode(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: USER, tid: TENANT_B, exp: now() + 600 }))}.${signature}`;
      await refused(verifier.verify(swapped), 'TOKEN_INVALID', 'signature', swapped);
    });
  }
});

describe('TokenIssuer', () => {
  it('issues tokens a matching verifier accepts, and refuses to let claims override registered ones', async () => {
    const issuer = new TokenIssuer({
      algorithm: 'HS256',
      secret: SECRET,
      issuer: ISSUER,
      audience: AUDIENCE,
      ttlSeconds: 120,
    });
    const verified = await hsVerifier().verify(
      await issuer.issue({ subject: USER, tenantId: TENANT_B, claims: { kind: 'service' } }),
    );
    expect(verified).toMatchObject({ subject: USER, tenantId: TENANT_B, claims: { kind: 'service' } });
    expect(verified.expiresAt.getTime() - (verified.issuedAt?.getTime() ?? 0)).toBe(120_000);
    await expect(issuer.issue({ subject: USER, claims: { tid: TENANT_B } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(issuer.issue({ subject: USER, claims: { exp: 1 } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(issuer.issue({ subject: USER, tenantId: 'acme' })).rejects.toMatchObject({
      code: 'INVALID_TENANT_ID',
    });
  });

  it('publishes only the public half of an asymmetric key, and nothing for a secret', () => {
    const issuer = new TokenIssuer({
      algorithm: 'RS256',
      privateKey: rsa.privateKey,
      keyId: 'k1',
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    const jwk = issuer.publicJwk();
    expect(jwk).toMatchObject({ kty: 'RSA', kid: 'k1', alg: 'RS256', use: 'sig' });
    expect(jwk).not.toHaveProperty('d');
    configError(
      () => new TokenIssuer({ algorithm: 'HS256', secret: SECRET, issuer: ISSUER, audience: AUDIENCE }).publicJwk(),
      /no public half/,
    );
    configError(
      () => new TokenIssuer({ algorithm: 'RS256', privateKey: rsa.publicKey, issuer: ISSUER, audience: AUDIENCE }),
      /PEM private key/,
    );
    configError(
      () => new TokenIssuer({ algorithm: 'none' as 'HS256', secret: SECRET, issuer: ISSUER, audience: AUDIENCE }),
      /"none"/,
    );
  });
});
