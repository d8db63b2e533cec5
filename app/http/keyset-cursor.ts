import { z } from 'zod';
import { say } from './validation-messages.js';

/** A decoded page cursor: the sort key (creation time in microseconds since the epoch, id) of a page's last row. */
export interface KeysetCursor {
  micros: string;
  id: string;
}

const CURSOR = /^(-?\d{1,19})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
// years 1 to 9999: inside PostgreSQL's timestamptz range, so no cursor reaches it as 22008 / 22003
const MIN_MICROS = -62_135_596_800_000_000n;
const MAX_MICROS = 253_402_300_799_999_999n;

/** The opaque cursor clients send back: base64url of `<micros>.<id>`. */
export function encodeCursor(micros: string, id: string): string {
  return Buffer.from(`${micros}.${id}`, 'utf8').toString('base64url');
}

function decode(cursor: string): KeysetCursor | undefined {
  if (!/^[A-Za-z0-9_-]{1,100}$/.test(cursor)) return undefined;
  const match = CURSOR.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) return undefined;
  const micros = BigInt(match[1]!);
  if (micros < MIN_MICROS || micros > MAX_MICROS) return undefined;
  return { micros: micros.toString(), id: match[2]! };
}

/** A query-string cursor, decoded; anything but a cursor this API could have returned is a 400 naming the field. */
export function cursor(): z.ZodPipe<z.ZodString, z.ZodTransform<KeysetCursor, string>> {
  const error = say((field) => `${field} is not a cursor this API returned`);
  return z
    .string({ error })
    .refine((value) => decode(value) !== undefined, { error, abort: true })
    .transform((value) => decode(value)!);
}
