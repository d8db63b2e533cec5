import type { FastifyInstance } from 'fastify';
import { ApiError } from './api-error.js';
import { duplicateJsonKey } from './duplicate-json-key.js';

// a key of the body is named in the answer only when it looks like one of ours (never echo input)
const PLAIN_KEY = /^[A-Za-z0-9_]{1,64}$/;

// fatal: a byte sequence that is not UTF-8 throws instead of becoming U+FFFD (which would be
// stored as if the client had sent it); a leading BOM is dropped
const UTF8 = new TextDecoder('utf-8', { fatal: true });
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)/i;

/**
 * The API's only body parser: `application/json` in UTF-8. Fastify reads JSON bodies as a string
 * decoded leniently, so invalid UTF-8 would arrive as U+FFFD; here the body is read as bytes and
 * decoded strictly (400 VALIDATION_FAILED on invalid UTF-8), then parsed with Fastify's own JSON
 * parser (prototype-poisoning protection kept). A key twice in one object is 400 DUPLICATE_KEY
 * (JSON.parse would keep the last one silently). A charset other than UTF-8 is 415, as is every
 * other content type (the text/plain parser Fastify adds by default is removed).
 */
export function installJsonBodyParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const charset = CHARSET.exec(request.headers['content-type'] ?? '')?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8')
      return done(new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json in UTF-8'));
    let decoded: string;
    try {
      decoded = UTF8.decode(body as Buffer);
    } catch {
      return done(new ApiError(400, 'VALIDATION_FAILED', 'The request body is not valid UTF-8', 'body'));
    }
    parseJson(request, decoded, (error, value) => {
      if (error) return done(error);
      const duplicate = duplicateJsonKey(decoded);
      if (duplicate) {
        const field = duplicate.every((k) => PLAIN_KEY.test(k)) ? duplicate.join('.') : 'body';
        return done(
          new ApiError(
            400,
            'DUPLICATE_KEY',
            `The request body has a key twice in one object${field === 'body' ? '' : ` (${field})`}: send each key once`,
            field,
          ),
        );
      }
      done(null, value);
    });
  });
}
