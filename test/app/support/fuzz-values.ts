import { randomUUID } from 'node:crypto';
import fc from 'fast-check';

/*
 * The values the fuzz test (fuzz.test.ts) builds its requests from: strings and numbers that
 * broke the server once (NUL, unpaired surrogates, int8 edges), plausible field values with
 * something nasty inside, bodies in every encoding and content type, URLs and query strings.
 */

/** Any refusal whose body contains this echoed the input ('§' keeps it out of identifier echoes). */
export const MARKER = '§echo§';

export const nasty = fc.constantFrom(
  '\u0000',
  `a\u0000${MARKER}`,
  '\ud800',
  `${MARKER}\udfff`,
  'x\ud83d',
  '\u202e\u200b',
  '\uffff\ufffe',
  '<script>alert(1)</script>',
  "' or 1=1 --",
  '%00',
  '%zz',
  '../../etc/passwd',
  '\r\nX-Injected: 1',
  '9223372036854775807',
  '9223372036854775808',
  '9999999999999999999',
  '-9223372036854775809',
  '1e400',
  'NaN',
  '-0',
  '0x10',
  ' 12 ',
  '',
  ' ',
  MARKER,
);
export const fuzzString = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.tuple(fc.string({ maxLength: 8 }), nasty, fc.string({ maxLength: 8 })).map(([a, b, c]) => a + b + c),
  nasty,
  fc.string({ minLength: 150, maxLength: 400 }).map((s) => MARKER + s),
  fc.uuid(),
);
export const fuzzNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 2 ** 53, 2 ** 63, -(2 ** 63), 1e308, -1e308, 0.5, -1, 0, 1, 100, 101, 501),
);
export const fuzzValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fuzzString },
  { weight: 3, arbitrary: fuzzNumber },
  fc.boolean(),
  fc.constant(null),
  fc.array(fuzzString, { maxLength: 3 }),
  fc.dictionary(fuzzString, fuzzString, { maxKeys: 3 }),
);

// plausible values, so a request often passes validation except for the fuzzed field and
// reaches the database (where a NUL or an out-of-range number used to become a 500)
export const PLAUSIBLE: Record<string, unknown> = {
  title: 'fuzzed title',
  durationSeconds: 60,
  mimeType: 'audio/ogg',
  name: 'fuzz key',
  expiresInDays: 30,
  email: 'alice@example.test',
  password: 'correct horse battery staple',
  tenant: 'alpha',
  code: 'A'.repeat(22),
  confirmation: 'B'.repeat(22),
  displayName: 'Fuzz',
  role: 'member',
  domain: 'fuzz.example',
  reason: 'fuzzing the reference server',
  access: 'read',
  minutes: 5,
};
export const FIELDS = Object.keys(PLAUSIBLE);

// plausible, fuzzed, or plausible with something nasty inside (a NUL in an otherwise valid email)
export const field = (name: string) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant(PLAUSIBLE[name]) },
    { weight: 2, arbitrary: fuzzValue },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.nat({ max: String(PLAUSIBLE[name]).length }), nasty)
        .map(([at, bad]) => String(PLAUSIBLE[name]).slice(0, at) + bad + String(PLAUSIBLE[name]).slice(at)),
    },
  );

// the fields each route reads, so that most bodies pass validation but for the fuzzed field and
// reach the database; a route missing here (a new one) gets bodies of any of the fields
export const ROUTE_FIELDS: Record<string, string[]> = {
  'POST /recordings': ['title', 'durationSeconds', 'mimeType'],
  'PATCH /recordings/:id': ['title', 'durationSeconds', 'mimeType'],
  'POST /api-keys': ['name', 'expiresInDays'],
  'POST /domains': ['domain'],
  'POST /invitations': ['email', 'role'],
  'PATCH /members/:userId': ['role'],
  'POST /auth/sign-in': ['email', 'password', 'tenant'],
  'POST /invitations/accept': ['code', 'email', 'password', 'displayName', 'confirmation'],
  'POST /staff/sign-in': ['email', 'password'],
  'POST /staff/access': ['tenant', 'access', 'reason', 'minutes'],
  'POST /staff/tenants/:tenant/summary': ['reason'],
};

export const jsonObjectFor = (fields: string[]) =>
  fc.oneof(
    // the route's own fields, each plausible or fuzzed
    { weight: 3, arbitrary: fc.record(Object.fromEntries(fields.map((n) => [n, field(n)]))) },
    fc
      .subarray(fields, { minLength: 0 })
      .chain((names) => fc.record(Object.fromEntries(names.map((n) => [n, field(n)])))),
    fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fuzzString), fuzzValue, { maxKeys: 5 }),
  );
export const jsonObject = jsonObjectFor(FIELDS);

/** A body: bytes and the content type they are sent as. */
export interface Body {
  bytes: Buffer | string;
  contentType: string | undefined;
}

export const INVALID_UTF8 = [
  Buffer.from([0xff]),
  Buffer.from([0xc0, 0xaf]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
];
export const contentType = fc.oneof(
  { weight: 30, arbitrary: fc.constant('application/json') },
  fc.constantFrom(
    'application/json; charset=utf-8',
    'application/json; charset=latin1',
    'APPLICATION/JSON',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/json-patch+json',
    'application/json; charset="utf-16"',
    MARKER,
  ),
);
export const bodyFor = (fields: string[]): fc.Arbitrary<Body> =>
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc
        .tuple(jsonObjectFor(fields), contentType)
        .map(([o, ct]) => ({ bytes: JSON.stringify(o), contentType: ct })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(...fields), fc.constantFrom(...INVALID_UTF8), fc.string({ maxLength: 10 }))
        .map(([name, bad, rest]) => ({
          bytes: Buffer.concat([
            Buffer.from(`{"${name}":"${MARKER}`),
            bad,
            Buffer.from(`${rest.replace(/["\\]/g, '')}"}`),
          ]),
          contentType: 'application/json',
        })),
    },
    fc.constantFrom<Body>(
      { bytes: '', contentType: 'application/json' },
      { bytes: '{"title":', contentType: 'application/json' },
      { bytes: `{"title":"${MARKER}"`, contentType: 'application/json' },
      { bytes: '[1,2,3]', contentType: 'application/json' },
      { bytes: 'null', contentType: 'application/json' },
      { bytes: '"just a string"', contentType: 'application/json' },
      { bytes: '{"__proto__":{"admin":true}}', contentType: 'application/json' },
      { bytes: '{"constructor":{"prototype":{"admin":true}}}', contentType: 'application/json' },
      { bytes: '{"durationSeconds":99999999999999999999999999}', contentType: 'application/json' },
      { bytes: '{"durationSeconds":1e999}', contentType: 'application/json' },
      { bytes: '['.repeat(20_000), contentType: 'application/json' },
      { bytes: `{"title":"${'x'.repeat(70_000)}"}`, contentType: 'application/json' },
      { bytes: '\ufeff{"title":"bom"}', contentType: 'application/json' },
    ),
    fc.constant<Body>({ bytes: '', contentType: undefined }),
  );

/** Percent-encodes every byte outside the unreserved set (lone surrogates become U+FFFD's bytes). */
export function pct(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8'))
    out += /[A-Za-z0-9_.~-]/.test(String.fromCharCode(byte))
      ? String.fromCharCode(byte)
      : `%${byte.toString(16).padStart(2, '0')}`;
  return out;
}

export const rawSegment = fc.constantFrom(
  '%zz',
  '%00',
  '%FF%FE',
  '%C0%AF',
  '%ED%A0%80',
  '%',
  '..',
  '%2F',
  '%2e%2e',
  'a'.repeat(150),
  '+',
);
export const cursorOf = (text: string) => Buffer.from(text).toString('base64url');
export const queryValue = fc.oneof(
  fuzzString.map(pct),
  fuzzNumber.map((n) => pct(String(n))),
  rawSegment,
  fc.constantFrom(
    cursorOf(`9223372036854775807.${randomUUID()}`),
    cursorOf(`-9223372036854775808.${randomUUID()}`),
    cursorOf(`-99999999999999999.${randomUUID()}`),
    cursorOf(`1700000000000000.${randomUUID()}`),
    cursorOf(`1700000000000000.${MARKER}`),
  ),
);
export const query = fc
  .array(
    fc.tuple(fc.oneof(fc.constantFrom('limit', 'cursor', 'before'), fuzzString.map(pct), rawSegment), queryValue),
    {
      maxLength: 4,
    },
  )
  .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join('&'));

/** `arbitrary` one time in `every`, else null. */
export const sometimes = <T>(arbitrary: fc.Arbitrary<T>, every: number): fc.Arbitrary<T | null> =>
  fc.oneof({ weight: every - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary });

/** A request against one route of the table, its parameters, query and body fuzzed. */
export const headerText = fuzzString.map((s) => s.replace(/[^\x20-\x7e]/g, '?'));
