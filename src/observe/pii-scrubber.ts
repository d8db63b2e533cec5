import { isIPv6 } from 'node:net';
import { isIban } from './iban.js';
import { passesLuhn } from './luhn.js';
import { QUERY_SECRET_HINT, redactQuerySecrets } from './query-secrets.js';

/** The kinds of values {@link PiiScrubber} replaces, each with its placeholder (`[email]`, `[card]`…). */
export type PiiClass =
  'urlCredentials' | 'querySecret' | 'email' | 'phone' | 'card' | 'iban' | 'jwt' | 'apiKey' | 'bearer' | 'ip';

/** Options of {@link PiiScrubber}. */
export interface PiiScrubberOptions {
  /**
   * Which classes to replace; every class is on unless set to `false` here, e.g. `{ ip: false }`
   * to keep client addresses in the logs.
   */
  classes?: Partial<Record<PiiClass, boolean>>;
}

type Rule = PatternRule | ScanRule;
interface PatternRule {
  readonly kind: PiiClass;
  readonly pattern: RegExp;
  /** The replacement of one match, or `undefined` to keep it (a check the pattern cannot express). */
  readonly replace: (match: string) => string | undefined;
  /** A cheaper test a line must pass for the pattern to have a chance (default: the pattern). */
  readonly hint?: RegExp;
}
/** A class found by a hand-written scan rather than one pattern (query-string parameters). */
interface ScanRule {
  readonly kind: PiiClass;
  readonly apply: (text: string) => string;
  readonly hint: RegExp;
}

const fixed = (placeholder: string) => (): string => placeholder;

// Card numbers: 13–19 digits, plain or in groups of 4 (Amex 4-6-5), starting with a digit an
// issuer uses (2–6: so epoch milliseconds, which start with 1, never look like one), and passing
// Luhn (so most order numbers do not). Groups are separated by spaces, dashes or dots. The
// lookarounds keep UUID groups, decimals and digits inside hex or alphanumeric ids out; an
// underscore may touch it (`card_4111111111111111`).
const CARD =
  /(?<![A-Za-z0-9.-])(?:[2-6]\d{12,18}|[2-6]\d{3}([ .-])\d{4}\1\d{4}\1\d{1,7}|3\d{3}([ .-])\d{6}\2\d{5})(?![A-Za-z0-9-]|\.\d)/g;
const cardOrKeep = (match: string): string | undefined =>
  passesLuhn(match.replace(/[ .-]/g, '')) ? '[card]' : undefined;

// Phone numbers: international (`00` then 8–15 digits, and `+` in PHONE_INTERNATIONAL below with spaces, dots, dashes,
// parentheses), the grouped North American form `(555) 867-5309` / `555-867-5309`, and national
// forms with a trunk 0 (`07700 900125`, `020 7946 0958`, `030 9018206`, `07700900125`). Other bare
// digit runs are not taken (counts, byte sizes, ids, epoch seconds), except 10 digits right after a
// word that says phone (PHONE_AFTER_WORD). ISO dates (4-2-2) and UUID groups never have these shapes.
const PHONE =
  /(?<![\w+])(?:00[1-9][\d ().-]{6,20}\d|\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}|0[1-9]\d{1,4}[ .-]\d{3,4}(?:[ .-]?\d{3,4})?|0[1-9]\d{8,9})(?![\w-])/g;
const PHONE_AFTER_WORD =
  /(?<=\b(?:call|phone|tel|telephone|mobile|cell|fax|sms|whatsapp)[\s:=#.-]{1,3})[2-9]\d{9}(?![\w-])/gi;
const phoneOrKeep = (match: string): string | undefined => {
  const digits = match.replace(/\D/g, '').length;
  return digits >= 9 && digits <= 15 && (match.startsWith('0') ? digits >= 10 : true) ? '[phone]' : undefined;
};

// credentials in a URL's userinfo (`postgres://user:pass@host`): the scheme and host stay. The
// password runs to the LAST `@` before the path (`user:p@ss@host`: an unencoded `@` in a
// password is common in connection strings). The scheme is bounded: an unbounded run from each
// word start of `a.a.a.…` would be quadratic.
const URL_CREDENTIALS = /\b([A-Za-z][A-Za-z0-9+.-]{0,31}:\/\/)[^\s/?#@:'"<>]*:[^\s/?#'"<>]*@/g;
// an Authorization header (or field) logged as text: its scheme stays, whatever it is (`Token`, `Digest`…)
const AUTHORIZATION =
  /\b(authorization["']?\s*[:=]\s*["']?)(?:([A-Za-z][A-Za-z0-9_-]*)\s+)?[A-Za-z0-9._~+/=:-][^\s"'&;,]{3,}/gi;
// IBANs: country, check digits, then groups of 4 (a space between groups or none) and a last
// short group; the counts are bounded and a group cannot absorb a space, so there is one way to
// read a candidate. isIban checks the country's length and the mod-97 checksum.
const IBAN = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])/g;
// international phone numbers (`+` then 8–15 digits), judged before card numbers: `+4915112345678`
// passes Luhn but the `+` makes it a phone number (a longer run stays a candidate card)
const PHONE_INTERNATIONAL = /(?<![\w+])\+\d[\d ().-]{6,20}\d(?![\w-])/g;

const RULES: readonly Rule[] = [
  // before all: the whole userinfo goes, whatever other classes it would contain
  {
    kind: 'urlCredentials',
    pattern: URL_CREDENTIALS,
    replace: (m) => `${m.slice(0, m.indexOf('://') + 3)}[redacted]@`,
    hint: /:\/\/[^\s/?#@:]*:[^\s/?#]*@/,
  },
  {
    kind: 'bearer',
    pattern: AUTHORIZATION,
    replace: (m) => {
      const [, head, scheme] = new RegExp(AUTHORIZATION.source, 'i').exec(m) ?? [];
      return `${head ?? ''}${scheme ? `${scheme} ` : ''}[token]`;
    },
  },
  // then: a JWT's parts and an API key's secret may contain what looks like other classes
  {
    kind: 'bearer',
    pattern: /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi,
    replace: (m) => `${m.split(/\s/)[0]} [token]`,
  },
  {
    kind: 'jwt',
    // starts only where a base64url run starts: from every `eyJ` of `eyJ-eyJ-…` the first part's
    // run would reach the end of the line looking for its `.` (quadratic)
    pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g,
    replace: fixed('[jwt]'),
  },
  {
    kind: 'apiKey',
    // Tenantry's keys: `tnry_<32 hex: id>_<secret>` (src/identity/api-keys.ts; the library only
    // issues lower case, but a key read aloud or copied through an upper-casing system is still
    // a key: the exact shape, in any case, so `TNRY_API_KEY` as a name stays). Then the common
    // shapes of others' secrets: Stripe-like sk_/pk_/rk_ and webhook whsec_, GitHub classic and
    // fine-grained tokens, Slack, AWS access key ids. Runs are bounded (no key is that long): one
    // match through a 16 KB run of key characters measured 30× slower than through 8 KB under load
    pattern:
      /\btnry_[A-Za-z0-9_-]{16,256}|\b[Tt][Nn][Rr][Yy]_[0-9A-Fa-f]{32}_[A-Za-z0-9_-]{16,256}|\b(?:sk|pk|rk)_(?:live_|test_)?[A-Za-z0-9]{16,256}|\bwhsec_[A-Za-z0-9+/=]{16,256}|\bgh[pousr]_[A-Za-z0-9]{30,256}|\bgithub_pat_[A-Za-z0-9_]{22,256}|\bxox[abprs]-[A-Za-z0-9-]{10,256}|\bAKIA[0-9A-Z]{16}\b/g,
    replace: fixed('[api-key]'),
  },
  // after the credentials that have a placeholder of their own (`token=[jwt]` says more than
  // `[redacted]`, and a value that is one placeholder is left alone); before the classes that
  // would take only part of a value
  { kind: 'querySecret', apply: redactQuerySecrets, hint: QUERY_SECRET_HINT },
  {
    kind: 'email',
    // the lookbehind starts a match only where a run of address characters starts: without it
    // the engine retries from every character of a long word (quadratic on a clean line)
    // (Unicode letters: an internationalized local part or domain, `jörg@müller.example`), and
    // `name@localhost`
    pattern:
      /(?<![\p{L}\p{N}._%+-])[\p{L}\p{N}._%+-]+@(?:[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,}|localhost\b)/gu,
    replace: fixed('[email]'),
    hint: /@|%40/i,
  },
  // before cards and phones: an IBAN's digit groups look like both
  { kind: 'iban', pattern: IBAN, replace: (m) => (isIban(m) ? '[iban]' : undefined) },
  { kind: 'phone', pattern: PHONE_INTERNATIONAL, replace: phoneOrKeep },
  { kind: 'card', pattern: CARD, replace: cardOrKeep },
  { kind: 'phone', pattern: PHONE, replace: phoneOrKeep },
  { kind: 'phone', pattern: PHONE_AFTER_WORD, replace: fixed('[phone]') },
  {
    kind: 'ip',
    pattern: /(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w.]*\d)/g,
    replace: fixed('[ip]'),
  },
  {
    kind: 'ip',
    // candidates only: node's parser decides (a time like 06:23:24 or a MAC address is not one)
    pattern: /(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|\[ip\])?(?![\w:])/g,
    replace: (m) => (isIPv6(m.replace('[ip]', '0.0.0.0')) ? '[ip]' : undefined),
    hint: /:[0-9A-Fa-f]{0,4}:/,
  },
];

const PERCENT_RUN = /(?:%[0-9A-Fa-f]{2})+/g;
const PERCENT_ESCAPE = /%[0-9A-Fa-f]{2}/;
const BARE_NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
// invisible characters that split an address or a number so that no pattern sees it whole
const ZERO_WIDTH = /[\u200B-\u200D\u2060\uFEFF]/;
const ZERO_WIDTHS = /[\u200B-\u200D\u2060\uFEFF]/g;
// in a query string (from `?` to the end of the URL) and a form body, `+` is an encoded space
const QUERY_PART = /\?[^\s#]*/g;
// a `+` in a parameter's value (bounded: a run of `=` must not rescan the line from each one)
const PLUS_IN_VALUE = /=[^\s&]{0,64}\+/;

/**
 * Replaces personal data and secrets found BY VALUE — wherever they are, whatever the key: in a
 * message, an error's stack, a URL's query string, a header someone decided to log. pino's
 * `redact` removes known key paths only; this catches what nobody foresaw. Written by hand: the
 * libraries that do this scan free text without knowing JSON or percent-encoding, and a log line
 * needs both (a `+` in a phone number is `%2B` in a query string; an escape must stay valid JSON).
 *
 * Cheap when nothing matches: one unanchored test per class over the whole line decides; only
 * lines with a candidate are taken apart.
 *
 * @example
 * const scrubber = new PiiScrubber({ classes: { ip: false } });
 * scrubber.text('mail alice@example.com'); // 'mail [email]'
 */
export class PiiScrubber {
  readonly #rules: readonly Rule[];
  #candidates: readonly RegExp[];

  constructor(options: PiiScrubberOptions = {}) {
    const on = options.classes ?? {};
    for (const name of Object.keys(on))
      if (!RULES.some((r) => r.kind === name)) throw new TypeError(`PiiScrubber: unknown class "${name}"`);
    this.#rules = RULES.filter((r) => on[r.kind] !== false);
    // the same patterns without the global flag (whose lastIndex would carry over between tests)
    this.#candidates = this.#rules.map((r) =>
      'apply' in r ? r.hint : (r.hint ?? new RegExp(r.pattern.source, r.pattern.flags.replace('g', ''))),
    );
    // percent-encoded text is decoded before it is judged, and `+` in a value read as a space,
    // so any escape or such `+` is a candidate too; an invisible character may hide any class
    if (this.#rules.length > 0) this.#candidates = [...this.#candidates, PERCENT_ESCAPE, PLUS_IN_VALUE, ZERO_WIDTH];
  }

  /**
   * `text` with every match replaced by its placeholder. Percent-encoded PII is found too, and in
   * a query string or a form body `+` is read as the space it encodes (`4111+1111+1111+1111`).
   */
  text(text: string): string {
    if (!this.#mayMatch(text)) return text;
    const input = ZERO_WIDTH.test(text) ? text.replace(ZERO_WIDTHS, '') : text;
    const plain = this.#replace(input);
    const unchanged = plain === input ? text : plain;
    // judge the decoded form; keep the encoded one when decoding revealed nothing
    const decoded = decodeQuery(plain);
    if (decoded === plain) return unchanged;
    const scrubbed = this.#replace(decoded);
    return scrubbed === decoded ? unchanged : scrubbed;
  }

  /**
   * One serialized JSON log line, scrubbed: each string literal is decoded, scrubbed and
   * re-encoded (so the line stays valid JSON), and a bare number that is a card number becomes
   * the string `"[card]"`. A line that is not JSON is scrubbed as text.
   */
  line(line: string): string {
    if (!this.#mayMatch(line)) return line;
    // a hand-written scan, not a `"(?:[^"\\]|\\.)*"|[^"]+` pattern: on `"\"\"\"…` with no
    // closing quote that pattern rescans the rest of the line from every quote (quadratic)
    let out = '';
    let at = 0;
    while (at < line.length) {
      const open = line.indexOf('"', at);
      if (open === -1) return out + this.#bare(line.slice(at));
      out += this.#bare(line.slice(at, open));
      const close = closingQuote(line, open + 1);
      if (close === -1) return out + this.text(line.slice(open)); // not JSON: the rest as text
      out += this.#string(line.slice(open, close + 1));
      at = close + 1;
    }
    return out;
  }

  #string(token: string): string {
    let value: unknown;
    try {
      value = JSON.parse(token);
    } catch {
      return this.text(token);
    }
    if (typeof value !== 'string') return this.text(token);
    const scrubbed = this.text(value);
    return scrubbed === value ? token : JSON.stringify(scrubbed);
  }

  #mayMatch(text: string): boolean {
    for (const candidate of this.#candidates) if (candidate.test(text)) return true;
    return false;
  }

  #bare(token: string): string {
    if (token === '' || !this.#rules.some((r) => r.kind === 'card')) return token;
    return token.replace(BARE_NUMBER, (n) => (/^[2-6]\d{12,18}$/.test(n) && passesLuhn(n) ? '"[card]"' : n));
  }

  #replace(text: string): string {
    let out = text;
    for (const rule of this.#rules) {
      if ('apply' in rule) {
        if (rule.hint.test(out)) out = rule.apply(out);
        continue;
      }
      rule.pattern.lastIndex = 0;
      out = out.replace(rule.pattern, (match) => rule.replace(match) ?? match);
    }
    return out;
  }
}

/** The index of the `"` that closes a JSON string whose content starts at `from`, or -1. */
function closingQuote(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 92)
      i++; // a backslash escapes the next character
    else if (c === 34) return i;
  }
  return -1;
}

/** `text` as a server would read it: `+` as a space in a query string or form body, then %XX (twice: a URL inside a URL). */
function decodeQuery(text: string): string {
  let out = text;
  if (out.includes('+')) {
    const formBody = !/\s/.test(out) && out.includes('=') && !out.includes('?');
    out = formBody ? out.replace(/\+/g, ' ') : out.replace(QUERY_PART, (query) => query.replace(/\+/g, ' '));
  }
  return PERCENT_ESCAPE.test(out) ? decodePercent(decodePercent(out)) : out;
}

function decodePercent(text: string): string {
  return text.replace(PERCENT_RUN, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run; // not UTF-8: left as it is
    }
  });
}
