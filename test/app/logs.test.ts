import { randomBytes } from 'node:crypto';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../app/logger.js';
import { createAppFixture, type AppFixture } from './support/app-fixture.js';
import { ROUTE_FIELDS } from './support/fuzz-values.js';
import { routeTable, type TableRoute } from './support/route-table.js';

/*
 * CI check of the reference server's logs: personal data and secrets seeded into the path, the
 * query string, the headers (a real access token in Authorization, a real API key in X-Api-Key)
 * and the body of EVERY route (read from Fastify's route table), plus requests built to fail
 * (malformed JSON quoting the body, wrong types, a garbage token, two credentials), are never
 * found in any line the server logged at any level; and the lines of a tenant request name it.
 */

const EMAIL = `leak.${randomBytes(3).toString('hex')}@pii-example.org`;
const PHONE = '+44 20 7946 0958';
const CARD = '4539 1488 0343 6467'; // passes Luhn
const IP4 = '198.51.100.23';
const IP6 = '2001:db8::4a:1234';
const SECRET = `sk_live_${randomBytes(12).toString('hex')}`;
// the observability try-out's values (issue 12): secrets in URL userinfo, camelCase keys, any
// Authorization scheme, IDN and localhost e-mails, cards with dots or glued by `_`, national phones
const TRYOUT_SECRET = `Tx${randomBytes(6).toString('hex')}`;
const TRYOUT_ASCII = [
  `postgres://tenantry_app:${TRYOUT_SECRET}@127.0.0.1:5432/tenantry`,
  `https://user:${TRYOUT_SECRET}@db.example/x`,
  `clientSecret=${TRYOUT_SECRET}&authorization=${TRYOUT_SECRET}&otp=${TRYOUT_SECRET}&pass=${TRYOUT_SECRET}`,
  `Authorization: Token ${TRYOUT_SECRET}`,
  'mail ann@localhost',
  'card 4111.1111.1111.1111',
  'card_4111111111111111',
  'call 07700 900125',
  'call 0049 30 9018206',
  'call 4155550145',
].join(' ');
const TRYOUT = `${TRYOUT_ASCII} mail jörg@müller.example now`;
// the scrubbing try-out's values: `+` as the space of form encoding (a card, a phone with its
// `%2B`, an IBAN), array and short secret names, a userinfo password holding `@`
const FORM_QUERY =
  `&q=4111+1111+1111+1111&tel=%2B44+20+7946+0958&iban=DE89+3704+0044+0532+0130+00` +
  `&pw=${TRYOUT_SECRET}&token[]=${TRYOUT_SECRET}&db=${encodeURIComponent(`postgres://u:p@${TRYOUT_SECRET}@db/x`)}`;

let f: AppFixture;
let routes: TableRoute[];
let token: string;
let apiKey: string;
const lines: string[] = [];
const SEEDED: string[] = [];

beforeAll(async () => {
  const logger = createLogger({ level: 'trace', destination: { write: (s: string) => void lines.push(s) } });
  f = await createAppFixture({ logger });
  routes = routeTable(f.app);
  token = await f.token(f.users.alice, f.a);
  const created = await f.call('POST', '/api-keys', { token, payload: { name: 'logs' } });
  expect(created.statusCode).toBe(201);
  apiKey = (created.json() as { key: string }).key;
  const jwtSignature = token.split('.')[2]!;
  const keySecret = apiKey.slice(apiKey.lastIndexOf('_') + 1);
  for (const value of [
    EMAIL,
    PHONE,
    CARD,
    CARD.replace(/ /g, ''),
    PHONE.replace(/\D/g, ''),
    '20 7946 0958',
    IP4,
    IP6,
    SECRET,
    TRYOUT_SECRET,
    'jörg@müller.example',
    'ann@localhost',
    '4111.1111.1111.1111',
    '4111111111111111',
    '07700 900125',
    '0049 30 9018206',
    '4155550145',
    '4111+1111+1111+1111',
    '4111 1111 1111 1111',
    '7946+0958',
    'DE89+3704+0044+0532+0130+00',
    'DE89 3704 0044 0532 0130 00',
    '0532',
    token,
    jwtSignature,
    apiKey,
    keySecret,
    ...Object.values(f.users).map((u) => u.email),
  ]) {
    SEEDED.push(value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1));
  }
}, 120_000);
afterAll(async () => {
  await f?.close();
});

let sequence = 0;
const query = () =>
  `n=${++sequence}&email=${encodeURIComponent(EMAIL)}&phone=${encodeURIComponent(PHONE)}&card=${encodeURIComponent(CARD)}` +
  `&ip=${IP4}&ip6=${encodeURIComponent(IP6)}&key=${SECRET}&jwt=${token}&apiKey=${apiKey}&note=${encodeURIComponent(TRYOUT)}` +
  FORM_QUERY;

const piiHeaders = (): Record<string, string> => ({
  'user-agent': `agent ${EMAIL}`,
  'x-forwarded-for': `${IP4}, ${IP6}`,
  referer: `https://example.org/?card=${CARD}&phone=${PHONE}`,
  cookie: `session=${token}; key=${apiKey}`,
  'x-note': `${PHONE} ${CARD} ${SECRET} ${TRYOUT_ASCII}`,
});

const PII_VALUES = [EMAIL, PHONE, CARD, IP4, IP6, SECRET, `${EMAIL} ${CARD}`];
function piiBody(route: TableRoute): Record<string, unknown> {
  const fields = ROUTE_FIELDS[`${route.method} ${route.url}`] ?? ['email', 'name', 'title'];
  const body: Record<string, unknown> = { note: `${EMAIL} ${PHONE} ${CARD} ${IP4} ${SECRET} ${token} ${TRYOUT}` };
  fields.forEach((name, i) => (body[name] = PII_VALUES[i % PII_VALUES.length]));
  body.password = `${EMAIL}:${SECRET}`;
  return body;
}

const withParams = (url: string, value: string) => url.replace(/:[A-Za-z]+/g, encodeURIComponent(value));

async function send(
  route: TableRoute,
  url: string,
  headers: Record<string, string>,
  payload?: string | Record<string, unknown>,
) {
  const options: InjectOptions = {
    method: route.method as InjectOptions['method'],
    url: `${url}?${query()}`,
    headers: { ...piiHeaders(), ...headers },
  };
  if (payload !== undefined && route.method !== 'GET' && route.method !== 'HEAD') {
    options.payload = typeof payload === 'string' ? payload : JSON.stringify(payload);
    options.headers = { ...options.headers, 'content-type': 'application/json' };
  }
  const response = await f.app.inject(options);
  expect(response.statusCode, `${route.method} ${url}`).toBeLessThan(500);
  return response;
}

describe('reference server logs', () => {
  it('hold none of the PII and secrets seeded into every route', async () => {
    expect(routes.length).toBeGreaterThan(10);
    const keyed = { 'x-api-key': apiKey };
    for (const route of routes) {
      // a fresh session per route: sign-out (one of the routes) ends the one it is sent with
      const fresh = await f.token(f.users.alice, f.a);
      SEEDED.push(fresh, fresh.split('.')[2]!);
      const bearer = { authorization: `Bearer ${fresh}` };
      for (const param of [EMAIL, PHONE, CARD]) {
        await send(route, withParams(route.url, param), bearer, piiBody(route));
      }
      const url = withParams(route.url, IP4);
      await send(route, url, keyed, piiBody(route));
      await send(route, url, { ...bearer, ...keyed }, piiBody(route)); // two credentials: refused
      await send(route, url, {}, piiBody(route)); // none
      await send(route, url, { authorization: `Bearer ${EMAIL}.${CARD}.x` }, piiBody(route)); // garbage token
      await send(route, url, { authorization: `Bearer ${token}x` }, piiBody(route)); // bad signature
      await send(route, url, bearer, `{"email": "${EMAIL}", "card": ${CARD.replace(/ /g, '')}, `); // malformed JSON
      const wrongTypes = Object.fromEntries(Object.keys(piiBody(route)).map((k) => [k, { [EMAIL]: [CARD, PHONE] }]));
      await send(route, url, bearer, wrongTypes);
    }
    // a sign-in with a real user's address and a wrong password
    await send(
      { method: 'POST', url: '/auth/sign-in' },
      '/auth/sign-in',
      {},
      { email: f.users.alice.email, password: SECRET },
    );

    expect(lines.length).toBeGreaterThan(routes.length * 10);
    if (process.env.LOGS_DUMP) console.log(lines.slice(0, Number(process.env.LOGS_DUMP)).join(''));
    const all = lines.join('');
    const found = SEEDED.filter((value) => value.length >= 6 && all.includes(value));
    expect(found).toEqual([]);
    // the values were there to be logged, and the scrubber replaced them
    expect(all).toContain('[email]');
    expect(all).toContain('[card]');
    expect(all).toContain('[phone]');
    for (const line of lines) expect(() => JSON.parse(line) as unknown).not.toThrow();
  }, 300_000);

  it('lines written for a tenant request carry its tenant_id and actor, with tenants interleaved', async () => {
    // fresh sessions: the first test signed out and revoked through every route
    const alice = await f.token(f.users.alice, f.a);
    const carol = await f.token(f.users.carol, f.b);
    const callers = [
      { token: alice, tenant: f.a.id, actor: `user:${f.users.alice.id}` },
      { token: carol, tenant: f.b.id, actor: `user:${f.users.carol.id}` },
    ];
    const start = lines.length;
    const sent = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const caller = callers[i % 2]!;
        const n = String(i + 1); // a valid limit, which tells the requests apart in the log
        const response = await f.app.inject({
          method: 'GET',
          url: `/recordings?limit=${n}`,
          headers: { authorization: `Bearer ${caller.token}` },
        });
        expect(response.statusCode).toBe(200);
        return { n, caller };
      }),
    );
    const parsed = lines.slice(start).map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const { n, caller } of sent) {
      const incoming = parsed.find((l) => (l.req as { url?: string } | undefined)?.url === `/recordings?limit=${n}`);
      expect(incoming, n).toBeDefined();
      // the "incoming request" line too (written once the tenant is resolved), and only once
      expect(incoming).toMatchObject({ msg: 'incoming request', tenant_id: caller.tenant, actor: caller.actor });
      expect(parsed.filter((l) => l.reqId === incoming!.reqId && l.msg === 'incoming request')).toHaveLength(1);
      const ofRequest = parsed.filter((l) => l.reqId === incoming!.reqId);
      const completed = ofRequest.find((l) => l.msg === 'request completed');
      expect(completed).toMatchObject({ tenant_id: caller.tenant, actor: caller.actor, request_id: incoming!.reqId });
      // every line of the request after the tenant was resolved names that tenant, never another
      for (const line of ofRequest) if (line.tenant_id !== undefined) expect(line.tenant_id).toBe(caller.tenant);
    }
  }, 60_000);
});
