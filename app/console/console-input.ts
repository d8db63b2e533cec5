import { ApiError } from '../http/api-error.js';

/**
 * Refuses a console query string that is not well-formed: a `%` not followed by two hex digits,
 * or percent-escapes that do not decode to UTF-8 (`%ff`, `%c3%28`, a lone surrogate `%ed%a0%80`).
 * The query parser would otherwise pass them on as they are, or as U+FFFD, and a search for
 * them would answer 200 with nothing found as if the input were fine.
 */
export function checkQueryEncoding(url: string): void {
  const at = url.indexOf('?');
  if (at < 0) return;
  for (const part of url.slice(at + 1).split('&')) {
    try {
      // decodeURIComponent throws URIError on a malformed escape and on bytes that are not UTF-8
      decodeURIComponent(part.replaceAll('+', ' '));
    } catch {
      const name = part.split('=')[0] ?? '';
      throw new ApiError(
        400,
        'QUERY_ENCODING_INVALID',
        'The query string must be percent-encoded UTF-8',
        /^[A-Za-z]{1,20}$/.test(name) ? name : 'query',
      );
    }
  }
}
