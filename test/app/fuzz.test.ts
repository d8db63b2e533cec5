import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../app/server.js';
import { createAppFixture, type AppFixture } from './support/app-fixture.js';
import {
  bodyFor,
  FIELDS,
  fuzzString,
  headerText,
  INVALID_UTF8,
  jsonObject,
  MARKER,
  pct,
  query,
  rawSegment,
  ROUTE_FIELDS,
  sometimes,
  type Body,
} from './support/fuzz-values.js';
import { rawRequest, type RawAnswer } from './support/raw-http.js';
import { routeTable, type TableRoute } from './support/route-table.js';

/*
 * Property: whatever a client sends to any route of the reference server (routes read from
 * Fastify's own route table, so a new route is fuzzed without editing this file), the answer is
 * below 500; every refusal is a 4xx `{ error: { code, message } }` with a stable code that never
 * echoes the input; and the server still serves a normal request afterwards. Requests go through
 * `inject` (fast, in batches) and, for what only the real HTTP parser shows (repeated headers,
 * bytes Node's client would never send, oversized heads), raw bytes on a loopback socket.
 */

// FUZZ_RUNS=4000 for a deeper local run (100,000 requests); CI runs the default
const INJECT_RUNS = Number(process.env.FUZZ_RUNS ?? 400);
const INJECT_BATCH = 25; // 10,000 requests through inject
const RAW_RUNS = 60;
const RAW_BATCH = 10; // 600 through the real parser

const CODE = /^[A-Z][A-Z0-9_]{2,40}$/;

let f: AppFixture;
let app: FastifyInstance;
let routes: TableRoute[];
let recordingId: string;
let apiKey: string;
let port: number;
const codesSeen = new Map<string, number>();

beforeAll(async () => {
  f = await createAppFixture();
  // the server as npm start builds it: tenants by host too (<slug>.localhost, custom domains)
  app = buildServer({
    appPool: f.serverPool,
    supportPool: f.supportPool,
    jwtSecret: f.jwtSecret,
    host: { baseDomain: 'localhost', customDomains: true },
    resolveTxt: async () => [],
  });
  await app.ready();
  routes = routeTable(app);
  recordingId = (await f.insertRecordings(f.a, f.users.alice, 3))[0]!;
  const created = await f.call('POST', '/api-keys', {
    token: await f.token(f.users.alice, f.a),
    payload: { name: 'fuzz' },
  });
  apiKey = (created.json() as { key: string }).key;
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as { port: number }).port;
}, 120_000);
afterAll(async () => {
  await app?.close();
  await f?.close();
});

// ---- URLs --------------------------------------------------------------------------------

const pathValue = fc.oneof(
  { weight: 2, arbitrary: fc.constant(() => recordingId) },
  { weight: 2, arbitrary: fc.uuid().map((u) => () => u) },
  fc.constant(() => recordingId.toUpperCase()),
  fc.constantFrom('alpha', 'bravo', 'fuzz.example').map((v) => () => v),
  { weight: 4, arbitrary: fuzzString.map((s) => () => pct(s)) },
  { weight: 2, arbitrary: rawSegment.map((s) => () => s) },
);
interface FuzzRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Body | undefined;
  auth: Auth;
}

type Auth = 'none' | 'member' | 'member-lower' | 'staff' | 'api-key' | 'api-key-bearer' | 'garbage' | 'basic';
const auth = fc.constantFrom<Auth>(
  'none',
  'member',
  'member',
  'member',
  'member-lower',
  'staff',
  'api-key',
  'api-key-bearer',
  'garbage',
  'basic',
);

function fuzzRequest(): fc.Arbitrary<FuzzRequest> {
  return fc
    .constantFrom(...routes)
    .chain((route) =>
      fc.record({
        route: fc.constant(route),
        otherMethod: sometimes(fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'), 8),
        params: fc.array(pathValue, { minLength: 4, maxLength: 4 }),
        suffix: fc.oneof({ weight: 12, arbitrary: fc.constant('') }, fc.constantFrom('/', '/extra', '//')),
        query: sometimes(query, 2),
        // fc.option: null one time in `freq`
        body: fc.option(bodyFor(ROUTE_FIELDS[`${route.method} ${route.url}`] ?? FIELDS), { freq: 5 }),
        auth,
        xTenant: sometimes(fc.oneof(fc.constantFrom('alpha', 'bravo', 'alpha, bravo'), headerText), 8),
        host: sometimes(
          fc.oneof(
            fc.constantFrom(
              'alpha.localhost',
              'bravo.localhost:3000',
              'nope.localhost',
              'a.b.localhost',
              'fuzz.example',
            ),
            headerText,
          ),
          4,
        ),
        lastEventId: sometimes(headerText, 10),
      }),
    )
    .map(({ route, otherMethod, params, suffix, query: q, body: b, auth: a, xTenant, host, lastEventId }) => {
      let i = 0;
      const path = route.url.replace(/:[A-Za-z]+/g, () => params[i++ % params.length]!()) + suffix;
      const headers: Record<string, string> = {};
      if (xTenant !== null) headers['x-tenant'] = xTenant;
      if (host !== null) headers.host = host;
      if (lastEventId !== null) headers['last-event-id'] = lastEventId;
      return {
        method: otherMethod ?? route.method,
        url: q === null ? path : `${path}?${q}`,
        headers,
        body: b ?? undefined,
        auth: a,
      };
    });
}

// ---- checks ------------------------------------------------------------------------------

/** Why an answer breaks the property, or undefined. */
function fault(
  method: string,
  answer: { status: number; body: string; contentType: string | undefined },
): string | undefined {
  if (answer.status >= 500) return `answered ${answer.status}: ${answer.body.slice(0, 300)}`;
  if (answer.status < 400) return undefined;
  if (method === 'HEAD') return answer.body === '' ? undefined : 'a HEAD refusal carries a body';
  if (!answer.contentType?.startsWith('application/json')) return `a refusal as ${answer.contentType}`;
  let parsed: { error?: { code?: unknown; message?: unknown } };
  try {
    parsed = JSON.parse(answer.body) as typeof parsed;
  } catch {
    return `a refusal that is not JSON: ${answer.body.slice(0, 200)}`;
  }
  const code = parsed.error?.code;
  if (typeof code !== 'string' || !CODE.test(code) || typeof parsed.error?.message !== 'string')
    return `a refusal without { error: { code, message } }: ${answer.body.slice(0, 200)}`;
  if (Object.keys(parsed).length !== 1) return `a refusal with more than { error }: ${answer.body.slice(0, 200)}`;
  if (answer.body.includes(MARKER) || /FST_ERR|statusCode/.test(answer.body))
    return `a refusal that echoes the input or the framework: ${answer.body.slice(0, 300)}`;
  codesSeen.set(code, (codesSeen.get(code) ?? 0) + 1);
  return undefined;
}

interface Credentials {
  member: string;
  staff: string;
}

function authHeaders(a: Auth, c: Credentials): Record<string, string> {
  switch (a) {
    case 'member':
      return { authorization: `Bearer ${c.member}` };
    case 'member-lower':
      return { authorization: `bearer ${c.member}` };
    case 'staff':
      return { authorization: `Bearer ${c.staff}` };
    case 'api-key':
      return { 'x-api-key': apiKey };
    case 'api-key-bearer':
      return { authorization: `Bearer ${apiKey}` };
    case 'garbage':
      return { authorization: `Bearer ${MARKER.replace(/§/g, 'x')}.e30.x` };
    case 'basic':
      return { authorization: 'Basic YWxpY2U6cGFzc3dvcmQ=' };
    default:
      return {};
  }
}

async function credentials(): Promise<Credentials> {
  // fresh each run: a fuzzed POST /auth/sign-out may end the session of the previous ones
  return { member: await f.token(f.users.alice, f.a), staff: await f.staffToken() };
}

async function injectOne(request: FuzzRequest, c: Credentials): Promise<string | undefined> {
  const headers = { ...request.headers, ...authHeaders(request.auth, c) };
  if (request.body?.contentType !== undefined) headers['content-type'] = request.body.contentType;
  const answer = await app.inject({
    method: request.method as InjectOptions['method'],
    url: request.url,
    headers,
    ...(request.body === undefined ? {} : { payload: request.body.bytes }),
  });
  const problem = fault(request.method, {
    status: answer.statusCode,
    body: request.method === 'HEAD' && answer.statusCode >= 400 ? '' : answer.body,
    contentType: answer.headers['content-type'] as string | undefined,
  });
  return problem && `${request.method} ${request.url} (${request.auth}): ${problem}`;
}

// ---- raw requests ------------------------------------------------------------------------

/** Lines of a request head that only the real parser sees: repetitions, odd bytes, sizes. */
function rawHead(c: Credentials): fc.Arbitrary<RawCase> {
  const duplicate = fc.constantFrom(
    [`Authorization: Bearer ${c.member}`, `Authorization: Bearer ${c.member}`],
    [`Authorization: Bearer ${c.member}`, 'Authorization: Bearer x.y.z'],
    [`Authorization: Bearer ${c.staff}`, 'X-Tenant: alpha', 'X-Tenant: bravo'],
    [`Authorization: Bearer ${c.member}`, 'X-Tenant: alpha', 'x-tenant: alpha'],
    [`X-Api-Key: ${apiKey}`, `X-Api-Key: ${apiKey}`],
    [`X-Api-Key: ${apiKey}`, `Authorization: Bearer ${apiKey}`],
    [`Authorization: bearer ${c.member}`, 'Host: alpha.localhost', 'Host: bravo.localhost'],
    [`Authorization: BEARER ${c.member}`],
    [`Authorization: Bearer ${c.member}`, `Authorization: Basic ${MARKER}`],
    ['Content-Type: application/json', 'Content-Type: text/plain'],
  );
  const oddLine = fc.constantFrom(
    `X-Note: ${MARKER}`,
    'X-Bytes: \u00ff\u00fe',
    'X-Nul: a\u0000b',
    'X-Ctl: a\u007fb',
    `X-Big: ${'a'.repeat(20_000)}`,
    'Bad Header Name: x',
    ': empty name',
    'Transfer-Encoding: chunked',
    'Content-Length: 0',
    'Content-Length: -1',
    'Content-Length: 1, 2',
    'Expect: 100-continue',
    `Cookie: ${'c'.repeat(9000)}`,
  );
  const target = fc.oneof(
    fc.constantFrom(...routes).map((r) => r.url.replace(/:[A-Za-z]+/g, () => randomUUID())),
    fc.constantFrom(
      '/recordings/\u00ff\u00fe',
      '/recordings/a b',
      `/recordings/${'a'.repeat(150)}`,
      '/me?limit=\u0000',
      '*',
      'http://evil.example/me',
      `/${'x'.repeat(9000)}`,
    ),
  );
  const rawBody = fc.oneof(
    fc.constant(Buffer.alloc(0)),
    fc
      .constantFrom(...INVALID_UTF8)
      .map((bad) =>
        Buffer.concat([
          Buffer.from(`{"title":"${MARKER}`),
          bad,
          Buffer.from('","durationSeconds":1,"mimeType":"audio/ogg"}'),
        ]),
      ),
    jsonObject.map((o) => Buffer.from(JSON.stringify(o))),
  );
  return fc
    .record({
      method: fc.constantFrom('GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'PUT', 'BREW', 'get'),
      lines: fc.array(
        fc.oneof(
          duplicate,
          oddLine.map((l) => [l]),
        ),
        { minLength: 1, maxLength: 3 },
      ),
      target,
      body: rawBody,
    })
    .map(({ method, lines, target: t, body: b }) => ({
      method,
      target: t,
      head: lines.flat(),
      body: b,
    }));
}

/** A raw request: head lines as latin1 text (one character a byte), the body as bytes. */
interface RawCase {
  method: string;
  head: string[];
  target: string;
  body: Buffer;
}

async function rawOne(r: RawCase): Promise<string | undefined> {
  const head = r.head;
  const chunked = head.some((l) => /^transfer-encoding:/i.test(l));
  const framed = chunked || head.some((l) => /^content-length:/i.test(l));
  // a framing line of the fuzz comes with a complete body of its own (never a body the server
  // would wait for), and the body then trails as a second, pipelined request
  const bytes = Buffer.concat([
    Buffer.from(`${r.method} ${r.target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n`, 'latin1'),
    ...head.map((l) => Buffer.from(`${l}\r\n`, 'latin1')),
    Buffer.from(
      r.body.length > 0 && !framed
        ? `Content-Type: application/json\r\nContent-Length: ${r.body.length}\r\n\r\n`
        : '\r\n',
    ),
    Buffer.from(chunked ? '0\r\n\r\n' : ''),
    r.body,
  ]);
  let answer: RawAnswer;
  try {
    answer = await rawRequest(port, bytes, 20_000);
  } catch (error) {
    return `raw ${r.method} ${r.target.slice(0, 80)} [${head.map((l) => l.slice(0, 40)).join(' | ')}]: ${(error as Error).message}`;
  }
  const problem = fault(r.method, {
    status: answer.status,
    body: answer.body,
    contentType: answer.headers['content-type'],
  });
  return (
    problem && `raw ${r.method} ${r.target.slice(0, 80)} [${head.map((l) => l.slice(0, 40)).join(' | ')}]: ${problem}`
  );
}

// ---- the property ------------------------------------------------------------------------

describe('fuzzing every route', () => {
  it('reads every route from the route table', () => {
    const urls = new Set(routes.map((r) => `${r.method} ${r.url}`));
    for (const known of [
      'POST /auth/sign-in',
      'GET /recordings/:id',
      'POST /staff/tenants/:tenant/summary',
      'GET /audit-log',
    ])
      expect(urls).toContain(known);
    expect(routes.length).toBeGreaterThan(25);
  });

  it(
    `answers ${INJECT_RUNS * INJECT_BATCH} generated requests below 500, every refusal in the error shape`,
    async () => {
      let sent = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fuzzRequest(), { minLength: INJECT_BATCH, maxLength: INJECT_BATCH }),
          async (batch) => {
            const c = await credentials();
            const problems = (await Promise.all(batch.map((r) => injectOne(r, c)))).filter((p) => p !== undefined);
            sent += batch.length;
            expect(problems).toEqual([]);
          },
        ),
        { numRuns: INJECT_RUNS, endOnFailure: true },
      );
      expect(sent).toBeGreaterThanOrEqual(Math.min(10_000, INJECT_RUNS * INJECT_BATCH));
    },
    240_000 + INJECT_RUNS * 500,
  );

  it(`answers ${RAW_RUNS * RAW_BATCH} raw requests (repeated headers, odd bytes, sizes) the same way`, async () => {
    const c = await credentials();
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(rawHead(c), { minLength: RAW_BATCH, maxLength: RAW_BATCH }), async (batch) => {
        const problems = (await Promise.all(batch.map(rawOne))).filter((p) => p !== undefined);
        sent += batch.length;
        expect(problems).toEqual([]);
      }),
      { numRuns: RAW_RUNS, endOnFailure: true },
    );
    expect(sent).toBe(RAW_RUNS * RAW_BATCH);
  }, 240_000);

  it('is healthy after: a normal request works, through inject and through the socket', async () => {
    const token = await f.token(f.users.alice, f.a);
    expect((await app.inject({ url: '/me', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200);
    expect(
      (await app.inject({ url: '/me', headers: { authorization: `Bearer ${token}`, host: 'alpha.localhost' } }))
        .statusCode,
    ).toBe(200);
    const answer = await rawRequest(
      port,
      `GET /recordings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
    );
    expect(answer.status).toBe(200);
    expect((JSON.parse(answer.body) as { items: unknown[] }).items.length).toBeGreaterThan(0);
    // what the fuzz was refused with: stable codes only
    expect([...codesSeen.keys()].every((code) => CODE.test(code))).toBe(true);
    expect(codesSeen.has('VALIDATION_FAILED')).toBe(true);
  });
});
