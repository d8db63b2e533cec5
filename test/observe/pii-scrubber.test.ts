import { describe, expect, it } from 'vitest';
import { passesLuhn, PiiScrubber } from '../../src/observe/index.js';

const scrubber = new PiiScrubber();
const text = (s: string): string => scrubber.text(s);

describe('PiiScrubber: each class by value', () => {
  it('emails, also percent-encoded in a query string', () => {
    expect(text('invite alice.o+x@mail.example.co.uk now')).toBe('invite [email] now');
    expect(text('/recordings?q=alice%40example.com&n=1')).toBe('/recordings?q=[email]&n=1');
  });

  it('phone numbers: international and grouped national forms', () => {
    expect(text('call +44 20 7946 0958')).toBe('call [phone]');
    expect(text('call +15558675309.')).toBe('call [phone].');
    expect(text('call (555) 867-5309 or 555.867.5309')).toBe('call [phone] or [phone]');
    expect(text('/x?p=%2B1%20555%20867%205309')).toBe('/x?p=[phone]');
  });

  it('card numbers that pass Luhn, plain or grouped; not order numbers that fail it', () => {
    expect(text('card 4111111111111111')).toBe('card [card]');
    expect(text('card 4111 1111 1111 1111 and 5500-0000-0000-0004')).toBe('card [card] and [card]');
    expect(text('amex 3782 822463 10005')).toBe('amex [card]');
    expect(text('order 4111111111111112')).toBe('order 4111111111111112');
    expect(text('order 5500-0000-0000-0005')).toBe('order 5500-0000-0000-0005');
    expect(passesLuhn('79927398713')).toBe(true);
    expect(passesLuhn('79927398710')).toBe(false);
  });

  it('JWTs (three base64url parts), bearer and basic credentials', () => {
    const jwt =
      'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
    expect(text(`token=${jwt};`)).toBe('token=[jwt];');
    expect(text(`Authorization: Bearer ${jwt}`)).toBe('Authorization: Bearer [token]');
    expect(text('Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l')).toBe('Authorization: Basic [token]');
  });

  it("API keys: Tenantry's tnry_ keys and common secret shapes", () => {
    const key = `tnry_${'ab12'.repeat(8)}_${'Zz9-_'.repeat(8)}abc`;
    expect(text(`key ${key} used`)).toBe('key [api-key] used');
    expect(text('sk_live_4eC39HqLyjWDarjtT1zdp7dc')).toBe('[api-key]');
    expect(text('AKIAIOSFODNN7EXAMPLE')).toBe('[api-key]');
    expect(text('ghp_' + 'a1'.repeat(18))).toBe('[api-key]');
  });

  it('IPv4 and IPv6 addresses, and they can be kept', () => {
    expect(text('from 203.0.113.7:443')).toBe('from [ip]:443');
    expect(text('from 2001:db8::8a2e:370:7334 and ::1')).toBe('from [ip] and [ip]');
    expect(text('mapped ::ffff:192.0.2.1')).toBe('mapped [ip]');
    expect(new PiiScrubber({ classes: { ip: false } }).text('from 203.0.113.7 by bob@x.io')).toBe(
      'from 203.0.113.7 by [email]',
    );
    expect(() => new PiiScrubber({ classes: { ssn: false } as never })).toThrow(/unknown class/);
  });
});

describe('PiiScrubber: secrets in query strings, by parameter name', () => {
  it('token, access_token, api_key, key, signature, client_secret…: the value goes, the URL stays', () => {
    expect(text('GET /metrics?token=abc123&x=1')).toBe('GET /metrics?token=[redacted]&x=1');
    expect(text('/cb?access_token=opaque.value#top')).toBe('/cb?access_token=[redacted]#top');
    expect(text('/a?api_key=k1&api-key=k2&apikey=k3&key=k4')).toBe(
      '/a?api_key=[redacted]&api-key=[redacted]&apikey=[redacted]&key=[redacted]',
    );
    expect(text('/s3?X-Amz-Signature=deadbeef&X-Amz-Credential=AK%2F1')).toBe(
      '/s3?X-Amz-Signature=[redacted]&X-Amz-Credential=[redacted]',
    );
    expect(text('/o?client_secret=s&code=c&password=p;session=z')).toBe(
      '/o?client_secret=[redacted]&code=[redacted]&password=[redacted];session=[redacted]',
    );
    expect(text('/x?user[token]=t&accessToken=u')).toBe('/x?user[token]=[redacted]&accessToken=[redacted]');
    // percent-encoded as a whole (a URL inside another URL's query string)
    expect(text('/login?next=%2Fcb%3Ftoken%3Dsecretvalue')).toBe('/login?next=/cb?token=[redacted]');
    // in a serialized line, as pino writes the request
    const line = JSON.stringify({
      req: { method: 'GET', url: '/metrics?token=s3cr3t-value' },
      msg: 'incoming request',
    });
    expect(scrubber.line(line)).toBe(line.replace('s3cr3t-value', '[redacted]'));
  });

  it('parameters that only contain such a word stay, and the class can be turned off', () => {
    for (const url of ['/x?limit=5&monkey=3', '/x?sort=keyword', '/x?tokens_used=4', '/x?q=token'])
      expect(text(url)).toBe(url);
    expect(new PiiScrubber({ classes: { querySecret: false } }).text('/m?token=abc')).toBe('/m?token=abc');
  });
});

describe('PiiScrubber: what must stay readable', () => {
  it.each([
    ['a UUID', '3f2b8c1e-4a5d-4f6e-9b7a-123456789012'],
    ['an all-digit UUID', '12345678-1234-4123-8123-123456789012'],
    ['an ISO timestamp', '2026-12-06T06:23:24.123Z'],
    ['epoch milliseconds', '1765002204123'],
    ['a compact tenant id', '3f2b8c1e4a5d4f6e9b7a123456789012'],
    ['a time of day', 'at 06:23:24'],
    ['a MAC address', '00:1a:2b:3c:4d:5e'],
    ['a duration', 'took 12.345 ms, 1234567 rows'],
    ['a version', 'node v20.20.2'],
    ['a route', 'GET /recordings/:id'],
  ])('%s', (_name, value) => {
    expect(text(value)).toBe(value);
    const line = JSON.stringify({ level: 30, time: 1765002204123, value, msg: value });
    expect(scrubber.line(line)).toBe(line);
  });
});

describe('PiiScrubber.line: a serialized JSON line stays valid JSON', () => {
  it('scrubs string values and keys through their escapes', () => {
    const line = JSON.stringify({ msg: 'quote "alice@example.com"\nnext\\bob@example.com', n: 1 }) + '\n';
    const out = scrubber.line(line);
    expect(out.endsWith('\n')).toBe(true);
    expect(JSON.parse(out)).toEqual({ msg: 'quote "[email]"\nnext\\[email]', n: 1 });
  });

  it('turns a bare number that is a card number into a string', () => {
    const out = scrubber.line('{"time":1765002204123,"card":4111111111111111,"order":4111111111111112}');
    expect(JSON.parse(out)).toEqual({ time: 1765002204123, card: '[card]', order: 4111111111111112 });
  });

  it('leaves a line with nothing to scrub as the very same string', () => {
    const line = '{"level":30,"time":1765002204123,"pid":42,"reqId":"req-1","msg":"request completed"}';
    expect(scrubber.line(line)).toBe(line);
  });
});

describe("PiiScrubber: the observability try-out's values (issue 12)", () => {
  it.each([
    [
      'URL userinfo (postgres)',
      'postgres://tenantry_app:S3cretPw@127.0.0.1:5432/tenantry',
      'postgres://[redacted]@[ip]:5432/tenantry',
    ],
    ['URL userinfo (https)', 'https://user:hunter2@db.example/x', 'https://[redacted]@db.example/x'],
    [
      'camelCase and other secret keys',
      'clientSecret=abc123xyz&authorization=xyz',
      'clientSecret=[redacted]&authorization=[redacted]',
    ],
    ['otp and pass', '/v?otp=123456&pass=hunter2&x=1', '/v?otp=[redacted]&pass=[redacted]&x=1'],
    [
      'camelCase after a space',
      'body refreshToken=r1 dbPassword=p2',
      'body refreshToken=[redacted] dbPassword=[redacted]',
    ],
    ['Authorization with any scheme', 'Authorization: Token abcdef123456', 'Authorization: Token [token]'],
    ['Authorization without a scheme', 'authorization=abcdef123456', 'authorization=[token]'],
    ['an IDN e-mail', 'mail jörg@müller.example now', 'mail [email] now'],
    ['a percent-encoded IDN e-mail', '/u?e=j%C3%B6rg%40m%C3%BCller.example', '/u?e=[email]'],
    ['name@localhost', 'mail to ann@localhost', 'mail to [email]'],
    ['a card with dots', 'card 4111.1111.1111.1111', 'card [card]'],
    ['a card glued to a word by _', 'card_4111111111111111', 'card_[card]'],
    ['a UK mobile', 'call 07700 900125', 'call [phone]'],
    ['a 00 international prefix', 'call 0049 30 9018206', 'call [phone]'],
    ['a bare national number with its trunk 0', 'phone=07700900125', 'phone=[phone]'],
    ['a bare 10-digit number after a phone word', 'call 4155550145', 'call [phone]'],
  ])('%s', (_name, value, expected) => {
    expect(text(value)).toBe(expected);
  });

  it.each([
    ['a URL with a user and no password', 'postgres://app@db:5432/x'],
    ['a byte count', 'took 4294967296 bytes'],
    ['epoch seconds', 'at 1765002204'],
    ['a zero-padded id', 'id 0000012345'],
    ['a bare 10-digit count', 'count=1234567890 rows 2345678901'],
    ['a card-like run inside a hex id', 'sha 9f86d0818841111111111111111d015a'],
    ['an exit code', 'exit code=1'],
    ['a word ending in key', '/x?monkey=3&turnkey=4'],
  ])('keeps %s', (_name, value) => {
    expect(text(value)).toBe(value);
  });
});

describe('PiiScrubber: the scrubbing try-out (form encoding, hidden characters, more shapes)', () => {
  it.each([
    // `+` is a space in a query string or a form body (URLSearchParams, HTML forms)
    [
      'a card and a phone with + as the space',
      '/recordings?q=4111+1111+1111+1111&phone=%2B44+20+7946+0958',
      '/recordings?q=[card]&phone=[phone]',
    ],
    ['an Amex with + as the space', '/r?q=3782+822463+10005', '/r?q=[card]'],
    ['a bearer credential with + as the space', '/r?h=Bearer+opaqueSecret42', '/r?h=Bearer [token]'],
    ['a form body with + as the space', 'note=call+me&card=4111+1111+1111+1111', 'note=call me&card=[card]'],
    // array parameters, and a form body that starts with the secret
    [
      'token[] and token[0]',
      '/x?token[]=abc&token[0]=def&user[token][]=ghi',
      '/x?token[]=[redacted]&token[0]=[redacted]&user[token][]=[redacted]',
    ],
    ['a form body starting with password=', 'password=hunter2&remember=1', 'password=[redacted]&remember=1'],
    [
      'pw and passphrase',
      '/x?pw=hunter2&passphrase=correct-horse&db_pw=x',
      '/x?pw=[redacted]&passphrase=[redacted]&db_pw=[redacted]',
    ],
    [
      'a secret after a parameter whose value holds ?',
      '/login?next=/cb?token=s3cr3t',
      '/login?next=/cb?token=[redacted]',
    ],
    // invisible characters inside a value
    ['an e-mail with a zero-width space', 'mail ann\u200B@acme.example now', 'mail [email] now'],
    ['a card with zero-width joiners', 'card 4111\u200D1111\u200C1111\uFEFF1111', 'card [card]'],
    // a phone with its + is a phone, not a card that passes Luhn
    ['a German mobile in E.164', 'call +4915112345678', 'call [phone]'],
    // userinfo whose password holds @
    ['a password with @', 'postgres://user:p@ss@db.example:5432/x', 'postgres://[redacted]@db.example:5432/x'],
    // IBANs, whole
    ['an IBAN in groups', 'pay DE89 3704 0044 0532 0130 00 now', 'pay [iban] now'],
    ['an IBAN in one piece', 'iban=GB82WEST12345698765432', 'iban=[iban]'],
    ['a Dutch IBAN', 'NL91ABNA0417164300', '[iban]'],
    // more key shapes
    ['an upper-case Tenantry key', `k TNRY_${'0A1B2C3D'.repeat(4)}_${'Zz9-_'.repeat(8)}abc`, 'k [api-key]'],
    ['a GitHub fine-grained token', `github_pat_11ABCDEFG0${'a1B2'.repeat(20)}`, '[api-key]'],
    ['a webhook signing secret', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '[api-key]'],
  ])('%s', (_name, value, expected) => {
    expect(text(value)).toBe(expected);
    const line = JSON.stringify({ req: { url: value } });
    expect(JSON.parse(scrubber.line(line))).toEqual({ req: { url: expected } });
  });

  it.each([
    ['an IBAN-shaped code failing mod-97', 'GB82 WEST 1234 5698 7654 33'],
    ['a part number that starts like one', 'part AB12CDEF34567890'],
    ['an upper-case hex id after two capitals and digits', 'ref DE123F2B8C1E4A5D4F6E9B7A1234'],
    ['the key variable name', 'env TNRY_API_KEY is unset'],
    ['+ in a path (not a query string)', '/c++/items/+4111111111111111x'],
    ['+ in an ISO time with an offset', '/x?since=2026-12-06T06:23:24+01:00'],
    ['a version with +', 'tenantry 1.2.3+build.45'],
    ['a word with a zero-width space kept as it is', 'zero\u200Bwidth'],
    ['a query with + in an ordinary value', '/search?q=blue+shoes&page=2'],
  ])('keeps %s', (_name, value) => {
    expect(text(value)).toBe(value);
  });
});
