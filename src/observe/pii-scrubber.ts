import { isIPv6 } from 'node:net';
import { passesLuhn } from './luhn.js';

/** The kinds of values {@link PiiScrubber} replaces, each with its placeholder (`[email]`, `[card]`…). */
export type PiiClass =
  'urlCredentials' | 'querySecret' | 'email' | 'phone' | 'card' | 'jwt' | 'apiKey' | 'bearer' | 'ip';

/** Options of {@link PiiScrubber}. */
export interface PiiScrubberOptions {
  /**
   * Which classes to replace; every class is on unless set to `false` here, e.g. `{ ip: false }`
   * to keep client addresses in the logs.
   */
  classes?: Partial<Record<PiiClass, boolean>>;
}

interface Rule {
  readonly kind: PiiClass;
  readonly pattern: RegExp;
  /** The replacement of one match, or `undefined` to keep it (a check the pattern cannot express). */
  readonly replace: (match: string) => string | undefined;
  /** A cheaper test a line must pass for the pattern to have a chance (default: the pattern). */
  readonly hint?: RegExp;
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

// Phone numbers: international (`+` or `00` then 8–15 digits with spaces, dots, dashes,
// parentheses), the grouped North American form `(555) 867-5309` / `555-867-5309`, and national
// forms with a trunk 0 (`07700 900125`, `020 7946 0958`, `030 9018206`, `07700900125`). Other bare
// digit runs are not taken (counts, byte sizes, ids, epoch seconds), except 10 digits right after a
// word that says phone (PHONE_AFTER_WORD). ISO dates (4-2-2) and UUID groups never have these shapes.
const PHONE =
  /(?<![\w+])(?:\+\d[\d ().-]{6,20}\d|00[1-9][\d ().-]{6,20}\d|\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}|0[1-9]\d{1,4}[ .-]\d{3,4}(?:[ .-]?\d{3,4})?|0[1-9]\d{8,9})(?![\w-])/g;
const PHONE_AFTER_WORD =
  /(?<=\b(?:call|phone|tel|telephone|mobile|cell|fax|sms|whatsapp)[\s:=#.-]{1,3})[2-9]\d{9}(?![\w-])/gi;
const phoneOrKeep = (match: string): string | undefined => {
  const digits = match.replace(/\D/g, '').length;
  return digits >= 9 && digits <= 15 && (match.startsWith('0') ? digits >= 10 : true) ? '[phone]' : undefined;
};

// A secret in a URL's query string (or a form body): the value of a parameter whose name is a
// secret's name, or ends with one after `_`, `-`, `.` or `[` (`?token=`, `&access_token=`, `;api_key=`, `&X-Amz-Signature=`,
// `&client_secret=`, `&code=`), whatever the value looks like: a random token has no shape the
// other classes would know. Exported for tests and for other loggers.
export const QUERY_SECRET_NAMES = [
  'token',
  'key',
  'apikey',
  'api_key',
  'api-key',
  'secret',
  'password',
  'passwd',
  'pwd',
  'signature',
  'sig',
  'code',
  'auth',
  'session',
  'sessionid',
  'jwt',
  'credential',
  'credentials',
  'accesstoken',
  'authorization',
  'otp',
  'pass',
] as const;
/** Parameter names ending in a secret's name in camelCase (`clientSecret`, `refreshToken`, `dbPassword`, `privateKey`). */
const CAMEL_SECRET_ENDINGS = [
  'Secret',
  'Token',
  'Password',
  'Passwd',
  'Pwd',
  'Key',
  'Signature',
  'Credential',
  'Credentials',
  'Otp',
];
// a parameter follows `?`, `&` or `;` (not a space: `exit code=1` stays); the camelCase names
// below may also start the text (a form body) or follow a space
const QUERY_SECRET = new RegExp(
  `([?&;](?:[\\w.\\-\\[\\]]*[_.\\-\\[])?(?:${QUERY_SECRET_NAMES.map((n) => n.replace('-', '\\-')).join('|')})\\]?=)[^&#;\\s"'<>]+`,
  'gi',
);
// case-sensitive: `clientSecret=` but not `monkey=` (`mon` + `key`)
const CAMEL_QUERY_SECRET = new RegExp(
  `((?:^|[?&;\\s])[\\w.\\-\\[\\]]*[a-z0-9](?:${CAMEL_SECRET_ENDINGS.join('|')})\\]?=)[^&#;\\s"'<>]+`,
  'g',
);
// credentials in a URL's userinfo (`postgres://user:pass@host`): the scheme and host stay
const URL_CREDENTIALS = /\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^\s/?#@:'"<>]*:[^\s/?#@'"<>]*@/g;
// an Authorization header (or field) logged as text: its scheme stays, whatever it is (`Token`, `Digest`…)
const AUTHORIZATION =
  /\b(authorization["']?\s*[:=]\s*["']?)(?:([A-Za-z][A-Za-z0-9_-]*)\s+)?[A-Za-z0-9._~+/=:-][^\s"'&;,]{3,}/gi;

const RULES: readonly Rule[] = [
  // before all: the whole value goes, whatever other classes it would contain
  {
    kind: 'urlCredentials',
    pattern: URL_CREDENTIALS,
    replace: (m) => `${m.slice(0, m.indexOf('://') + 3)}[redacted]@`,
    hint: /:\/\/[^\s/?#@]*:[^\s/?#@]*@/,
  },
  {
    kind: 'querySecret',
    pattern: QUERY_SECRET,
    replace: (m) => `${m.slice(0, m.indexOf('=') + 1)}[redacted]`,
    hint: /[?&;][^=\s]*?(?:token|key|secret|pass|pwd|sig|code|auth|session|jwt|credential|otp)[^=\s]*=/i,
  },
  {
    kind: 'querySecret',
    pattern: CAMEL_QUERY_SECRET,
    replace: (m) => `${m.slice(0, m.indexOf('=') + 1)}[redacted]`,
    hint: /[a-z0-9](?:Secret|Token|Passw|Pwd|Key|Signature|Credential|Otp)[^=\s]*=/,
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
  { kind: 'jwt', pattern: /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, replace: fixed('[jwt]') },
  {
    kind: 'apiKey',
    // Tenantry's keys (tnry_<id>_<secret>), then the common shapes of others' secrets: Stripe-like
    // sk_/pk_/rk_, GitHub, Slack, AWS access key ids
    pattern:
      /\btnry_[A-Za-z0-9_-]{16,}|\b(?:sk|pk|rk)_(?:live_|test_)?[A-Za-z0-9]{16,}|\bgh[pousr]_[A-Za-z0-9]{30,}|\bxox[abprs]-[A-Za-z0-9-]{10,}|\bAKIA[0-9A-Z]{16}\b/g,
    replace: fixed('[api-key]'),
  },
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

// a JSON string literal (escapes included) or a run of anything else (numbers, punctuation)
const JSON_TOKEN = /"(?:[^"\\]|\\.)*"|[^"]+/g;
const PERCENT_RUN = /(?:%[0-9A-Fa-f]{2})+/g;
const PERCENT_ESCAPE = /%[0-9A-Fa-f]{2}/;
const BARE_NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;

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
    // the same patterns without the global flag (whose lastIndex would carry over between tests);
    // percent-encoded text is decoded before it is judged, so any escape is a candidate too
    this.#candidates = this.#rules.map((r) => r.hint ?? new RegExp(r.pattern.source, r.pattern.flags.replace('g', '')));
    if (this.#rules.length > 0) this.#candidates = [...this.#candidates, PERCENT_ESCAPE];
  }

  /** `text` with every match replaced by its placeholder; percent-encoded PII is found too. */
  text(text: string): string {
    if (!this.#mayMatch(text)) return text;
    const plain = this.#replace(text);
    if (!PERCENT_ESCAPE.test(plain)) return plain;
    // judge the decoded form; keep the encoded one when decoding revealed nothing
    const decoded = decodePercent(decodePercent(plain));
    const scrubbed = this.#replace(decoded);
    return scrubbed === decoded ? plain : scrubbed;
  }

  /**
   * One serialized JSON log line, scrubbed: each string literal is decoded, scrubbed and
   * re-encoded (so the line stays valid JSON), and a bare number that is a card number becomes
   * the string `"[card]"`. A line that is not JSON is scrubbed as text.
   */
  line(line: string): string {
    if (!this.#mayMatch(line)) return line;
    return line.replace(JSON_TOKEN, (token) => {
      if (token.startsWith('"') && token.length > 1 && token.endsWith('"')) {
        let value: string;
        try {
          value = JSON.parse(token) as string;
        } catch {
          return this.text(token);
        }
        const scrubbed = this.text(value);
        return scrubbed === value ? token : JSON.stringify(scrubbed);
      }
      if (token.startsWith('"')) return this.text(token);
      return this.#bare(token);
    });
  }

  #mayMatch(text: string): boolean {
    for (const candidate of this.#candidates) if (candidate.test(text)) return true;
    return false;
  }

  #bare(token: string): string {
    if (!this.#rules.some((r) => r.kind === 'card')) return token;
    return token.replace(BARE_NUMBER, (n) => (/^[2-6]\d{12,18}$/.test(n) && passesLuhn(n) ? '"[card]"' : n));
  }

  #replace(text: string): string {
    let out = text;
    for (const rule of this.#rules) {
      rule.pattern.lastIndex = 0;
      out = out.replace(rule.pattern, (match) => rule.replace(match) ?? match);
    }
    return out;
  }
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
