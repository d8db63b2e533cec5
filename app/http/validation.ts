import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { validationFailed } from './api-error.js';
import { apiMessage, fieldOf, say } from './validation-messages.js';

/**
 * The one validation layer of the API. Every route parses its body, query string and params with
 * {@link parseInput} and builds its schemas from the shared field types below, so what PostgreSQL
 * would refuse with a 5xx (a NUL in text, a number past its range, a timestamp out of range) is
 * refused here with 400 VALIDATION_FAILED naming the field, in the API's own words.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** PostgreSQL's int4 and int8 bounds. */
export const INT4_MAX = 2_147_483_647;
const INT8_MAX = 9_223_372_036_854_775_807n;
// String.prototype.isWellFormed is Node 20's but not in our TypeScript lib (ES2022)
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Text PostgreSQL can store: no NUL (text columns refuse U+0000, 22021/22P05) and no unpaired
 * surrogate (a JSON `\ud800` escape would be written as U+FFFD without a word).
 */
export function isStorableText(value: string): boolean {
  return !value.includes('\u0000') && !LONE_SURROGATE.test(value);
}

/** A string field: storable text (see {@link isStorableText}); chain `.trim()`, `.min()`, `.max()`… as usual. */
export function text(): z.ZodString {
  return z.string().refine(isStorableText, {
    error: say((field) => `${field} must be text without NUL characters or unpaired surrogates`),
    abort: true,
  });
}

/** A UUID (any case; lower-cased). */
export function uuid(): z.ZodPipe<z.ZodString, z.ZodTransform<string, string>> {
  return z
    .string()
    .regex(UUID, { error: say((field) => `${field} must be a UUID`) })
    .transform((id) => id.toLowerCase());
}

/** An integer in a JSON body, within `[min, max]` (both inside PostgreSQL's int4 unless said). */
export function int(min: number, max: number): z.ZodNumber {
  const error = say((field) => `${field} must be an integer from ${min} to ${max}`);
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/**
 * An integer in a query string, within `[min, max]`: decimal digits only (no `1e3`, `0x10`, `2.5`,
 * spaces or signs), so `limit=abc` answers "limit must be an integer from 1 to 100".
 */
export function queryInt(min: number, max: number): z.ZodPipe<z.ZodString, z.ZodTransform<number, string>> {
  const error = say((field) => `${field} must be an integer from ${min} to ${max}`);
  const digits = String(max).length;
  return z
    .string({ error })
    .regex(new RegExp(`^\\d{1,${digits}}$`), { error, abort: true })
    .refine((value) => Number(value) >= min && Number(value) <= max, { error })
    .transform(Number);
}

/** A positive bigint id (e.g. an audit entry's) as its decimal string, within PostgreSQL's int8. */
export function bigintId(): z.ZodString {
  const error = say((field) => `${field} must be an id from 1 to ${INT8_MAX}`);
  return z
    .string({ error })
    .regex(/^[1-9]\d{0,18}$/, { error, abort: true })
    .refine((value) => BigInt(value) <= INT8_MAX, { error });
}

/**
 * Parses `input` (a body, query string or route params) with `schema`, or throws 400
 * VALIDATION_FAILED naming the first offending field (`where` when the input as a whole is wrong),
 * with a message in the API's words (a schema's own message wins).
 */
export function parseInput<T extends z.ZodType>(
  schema: T,
  input: unknown,
  where: 'body' | 'query' | 'params',
): z.output<T> {
  const result = schema.safeParse(input, { error: (issue) => apiMessage(issue, where) });
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw validationFailed(issue.message, fieldOf(issue, where));
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route's query string, as a strict zod object (`z.object({...}).strict()`): the one
     * validation layer refuses any other parameter before the handler runs. A route without one
     * takes no query parameter at all.
     */
    query?: z.ZodType;
  }
}

// a route that reads no query string: any parameter is refused rather than ignored
const NO_QUERY = z.object({}).strict();

/**
 * Refuses, for every route, a query parameter the route does not read (400 VALIDATION_FAILED
 * naming it): `GET /events?tenant=globex` or `GET /recordings?limit=5&tenantId=…` must not look
 * accepted. Routes declare what they read in `config.query` and parse it with {@link parseInput}
 * as usual; routes that declare nothing take no parameter.
 */
export function installQueryCheck(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    if (request.is404) return; // an unknown route stays 404, whatever its query string
    parseInput(request.routeOptions.config.query ?? NO_QUERY, request.query, 'query');
  });
}
