// Secrets in a URL's query string (or a form body), found by the parameter's NAME: a random
// token has no shape the other classes would know. The text is tokenised by hand rather than
// matched by one regular expression: a pattern with a free run before the name and another after
// it (`[?&;][^=\s]*?token[^=\s]*=`) backtracks cubically on `?token?token…` with no `=`, and the
// scrubber sees unauthenticated request lines. Every expression here is either anchored on a
// string of at most MAX_NAME characters or has no two adjacent runs that can trade characters.

/**
 * Parameter names whose value is a secret, also when the name ends with one after `_`, `-`, `.`
 * or `[` (`access_token`, `client_secret`, `X-Amz-Signature`, `user[token]`).
 */
export const QUERY_SECRET_NAMES = [
  'token',
  'key',
  'apikey',
  'api_key',
  'api-key',
  'secret',
  'password',
  'passwd',
  'passphrase',
  'pwd',
  'pw',
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
  'Passphrase',
  'Pwd',
  'Key',
  'Signature',
  'Credential',
  'Credentials',
  'Otp',
];

// longer names are not looked at: no secret parameter has one, and the bound keeps the work per
// separator constant whatever the attacker sends
const MAX_NAME = 64;

// one candidate: a separator (or the start), a name of 1–64 characters, `=`; the name cannot
// contain a separator, so a run never crosses into the next candidate
const PARAM = new RegExp(`(^|[?&;\\s])([^=&;?#\\s"'<>]{1,${MAX_NAME}})=`, 'g');
// the value: up to the next separator (a `?` inside a value is kept in it: it is the secret's)
const VALUE = /[^&#;\s"'<>]*/y;

const PLACEHOLDER = /^\[[a-z-]{2,10}\]$/;
// anchored on a name of at most MAX_NAME characters: cheap whatever its shape
const ANY_NAME = new RegExp(
  `(?:^|[_.\\-\\[])(?:${QUERY_SECRET_NAMES.map((n) => n.replace('-', '\\-')).join('|')})$`,
  'i',
);
// case-sensitive: `clientSecret` but not `monkey` (`mon` + `key`)
const CAMEL_NAME = new RegExp(`[a-z0-9](?:${CAMEL_SECRET_ENDINGS.join('|')})$`);
// `token[]`, `token[0]`: an array's brackets say nothing about what it holds
const ARRAY_SUFFIX = /(?:\[\d{0,9}\])+$/;

/**
 * A cheap test a text must pass to hold a secret parameter: a secret's name (any case) right
 * before `=`, maybe closed by array brackets. Literal alternatives and a bounded tail: linear.
 */
export const QUERY_SECRET_HINT = new RegExp(
  `(?:${[...QUERY_SECRET_NAMES, ...CAMEL_SECRET_ENDINGS.map((e) => e.toLowerCase())]
    .map((n) => n.replace('-', '\\-'))
    .join('|')})(?:\\]|\\[\\d{0,9}\\]){0,4}=`,
  'i',
);

function isSecretName(raw: string, anyName: boolean): boolean {
  let name = raw.replace(ARRAY_SUFFIX, '');
  // `user[token]`: the innermost key names the value
  if (name.endsWith(']')) name = name.slice(name.lastIndexOf('[') + 1, -1);
  return CAMEL_NAME.test(name) || (anyName && ANY_NAME.test(name));
}

/**
 * `text` with the value of every secret-named parameter replaced by `[redacted]`. A parameter
 * follows `?`, `&` or `;`; a camelCase name (`refreshToken=`) may also follow a space or start
 * the text; and a text with no whitespace that starts with `name=` is a form body, whose first
 * parameter counts like any other (`password=hunter2&remember=1`). After a space, only camelCase
 * names count: `exit code=1` in a message stays.
 */
export function redactQuerySecrets(text: string): string {
  const formBody = !/\s/.test(text);
  let out = '';
  let copied = 0;
  PARAM.lastIndex = 0;
  for (let m = PARAM.exec(text); m !== null; m = PARAM.exec(text)) {
    const [whole, separator = '', name = ''] = m;
    const anyName = separator === '' ? formBody : !/\s/.test(separator);
    if (!isSecretName(name, anyName)) continue; // the scan goes on after `=`: `?next=/cb?token=…`
    const valueStart = m.index + whole.length;
    VALUE.lastIndex = valueStart;
    VALUE.exec(text);
    const valueEnd = VALUE.lastIndex;
    // empty, or already one placeholder (`token=[jwt]`, `authorization=[token]`)
    if (valueEnd === valueStart || PLACEHOLDER.test(text.slice(valueStart, valueEnd))) continue;
    out += `${text.slice(copied, valueStart)}[redacted]`;
    copied = valueEnd;
    PARAM.lastIndex = valueEnd;
  }
  return copied === 0 ? text : out + text.slice(copied);
}
