/**
 * The context prefix's protocol messages (Parse, Bind, Execute) as one buffer, written by hand.
 * pg's Connection.parse/bind/execute serialise each message through a shared writer (a copy per
 * message, a value mapper per parameter) and write each to the stream on its own; the prefix is
 * always the same statement text with a few text parameters, so its Parse is serialised once per
 * writer and the three messages go to the stream as one write (bench:isolation's client cost:
 * the prefix costs less than a second statement sent through pg's query path).
 * Message layouts: PostgreSQL's protocol, "Message Formats".
 */

/** Execute of the unnamed portal, all rows: what pg's serializer sends for `execute({})`. */
const EXECUTE_UNNAMED = Buffer.from([0x45, 0, 0, 0, 9, 0, 0, 0, 0, 0]);

/**
 * A Parse message of `text` under `name` ('' for the unnamed statement), no parameter types
 * given. The same buffer for the same statement (every connection of a pool writes the same
 * prefixes), so the whole prefixes built on it can be shared too (`unnamedPrefix`).
 */
export function parseMessage(name: string, text: string): Buffer {
  const key = `${name}\0${text}`;
  let bytes = PARSES.get(key);
  if (bytes === undefined) PARSES.set(key, (bytes = buildParse(name, text)));
  return bytes;
}
const PARSES = new Map<string, Buffer>();

function buildParse(name: string, text: string): Buffer {
  const nameLength = Buffer.byteLength(name, 'utf8');
  const textLength = Buffer.byteLength(text, 'utf8');
  const bytes = Buffer.alloc(1 + parseLength(nameLength, textLength));
  writeParse(bytes, 0, name, nameLength, text, textLength);
  return bytes;
}

/** The length field of a Parse message: itself, the name and the text (each ending in a zero byte), no parameter types. */
function parseLength(nameLength: number, textLength: number): number {
  return 4 + nameLength + 1 + textLength + 1 + 2;
}

/** Writes a Parse message at `at` (lengths in bytes, UTF-8); returns where it ends. */
function writeParse(
  bytes: Buffer,
  at: number,
  name: string,
  nameLength: number,
  text: string,
  textLength: number,
): number {
  bytes[at] = 0x50; // 'P'
  bytes.writeInt32BE(parseLength(nameLength, textLength), at + 1);
  at += 5;
  at += bytes.write(name, at, nameLength, 'utf8');
  bytes[at++] = 0;
  at += bytes.write(text, at, textLength, 'utf8');
  bytes[at++] = 0;
  bytes[at++] = 0; // no parameter types
  bytes[at++] = 0;
  return at;
}

/** A parameter as sent: a string in text format, a Buffer in binary (as pg sends a Buffer), null (or undefined) for SQL NULL. */
type Parameter = string | Buffer | null | undefined;

/** The length field of a Bind message to the unnamed portal of the statement `nameLength` bytes long, with `values`, text results. */
function bindLength(nameLength: number, values: readonly Parameter[]): number {
  const n = values.length;
  let valueBytes = 0;
  for (let i = 0; i < n; i++) {
    const value = values[i];
    if (typeof value === 'string') valueBytes += Buffer.byteLength(value, 'utf8');
    else if (value !== null && value !== undefined) valueBytes += value.length;
  }
  // length, portal '', statement name, format codes, values (each with its length), result formats
  return 4 + 1 + nameLength + 1 + 2 + 2 * n + 2 + 4 * n + valueBytes + 2 + 2;
}

/** Writes a Bind message of `name` to the unnamed portal at `at` (its length from bindLength); returns where it ends. */
function writeBind(
  bytes: Buffer,
  at: number,
  length: number,
  name: string,
  nameLength: number,
  values: readonly Parameter[],
): number {
  const n = values.length;
  bytes[at] = 0x42; // 'B'
  bytes.writeInt32BE(length, at + 1);
  at += 5;
  bytes[at++] = 0; // the unnamed portal
  at += bytes.write(name, at, nameLength, 'utf8');
  bytes[at++] = 0;
  bytes.writeInt16BE(n, at);
  at += 2;
  const formats = at; // one format code per parameter: text, binary for a Buffer
  at += 2 * n;
  bytes.writeInt16BE(n, at);
  at += 2;
  for (let i = 0; i < n; i++) {
    const value = values[i];
    bytes[formats + 2 * i] = 0;
    if (value === null || value === undefined) {
      bytes[formats + 2 * i + 1] = 0;
      bytes.writeInt32BE(-1, at);
      at += 4;
    } else if (typeof value === 'string') {
      bytes[formats + 2 * i + 1] = 0;
      const written = bytes.write(value, at + 4, 'utf8');
      bytes.writeInt32BE(written, at);
      at += 4 + written;
    } else {
      bytes[formats + 2 * i + 1] = 1;
      bytes.writeInt32BE(value.length, at);
      value.copy(bytes, at + 4);
      at += 4 + value.length;
    }
  }
  bytes[at++] = 0; // one result format code, for every column: text
  bytes[at++] = 1;
  bytes[at++] = 0;
  bytes[at++] = 0;
  return at;
}

/**
 * `parse` (when the statement still has to be parsed on this connection), then a Bind of
 * `statement` (ASCII, '' for the unnamed one) to the unnamed portal with `values` as text
 * parameters (null: SQL NULL) and text results, then an Execute of all its rows: the bytes pg
 * would send for `parse(…)`, `bind({ statement, values })`, `execute({})`.
 */
export function prefixMessages(
  parse: Buffer | undefined,
  statement: string,
  values: readonly (string | null)[],
): Buffer {
  const nameLength = Buffer.byteLength(statement, 'utf8');
  const length = bindLength(nameLength, values);
  const parseSize = parse === undefined ? 0 : parse.length;
  const bytes = Buffer.allocUnsafe(parseSize + 1 + length + EXECUTE_UNNAMED.length);
  if (parse !== undefined) parse.copy(bytes, 0);
  const at = writeBind(bytes, parseSize, length, statement, nameLength, values);
  EXECUTE_UNNAMED.copy(bytes, at);
  return bytes;
}

/**
 * The whole prefix of the unnamed statement `parse` (from `parseMessage`) with one parameter,
 * `value`: built once per value and shared by every connection. A value is a tenant's context,
 * the same for all its statements until the signer renews it (after a fifth of its lifetime,
 * see ContextSigner), so one tenant's statements mostly find theirs built. Keyed by the value itself:
 * the bytes are those of that value, never another's.
 */
export function unnamedPrefix(parse: Buffer, value: string): Buffer {
  return sharedPrefix(PREFIXES, parse, parse, '', value);
}
const PREFIXES = new Map<Buffer, Map<string, Buffer>>();
const MAX_PREFIXES = 10_000;

/**
 * The whole prefix of the named statement `statement` (already parsed on the connection) with
 * one parameter, `value`: as `unnamedPrefix`, built once per value and shared by every
 * connection (the statement's name is the same on each).
 */
export function namedPrefix(statement: string, value: string): Buffer {
  return sharedPrefix(NAMED_PREFIXES, statement, undefined, statement, value);
}
const NAMED_PREFIXES = new Map<string, Map<string, Buffer>>();

/** The prefix of `parse`/`statement` with `value`, from `cache` under `key`, built on the first use. */
function sharedPrefix<K>(
  cache: Map<K, Map<string, Buffer>>,
  key: K,
  parse: Buffer | undefined,
  statement: string,
  value: string,
): Buffer {
  let byValue = cache.get(key);
  if (byValue === undefined) cache.set(key, (byValue = new Map()));
  let bytes = byValue.get(value);
  if (bytes === undefined) {
    // a bound on memory: values of tenants no longer seen, or renewed, are dropped all at once
    if (byValue.size >= MAX_PREFIXES) byValue.clear();
    bytes = prefixMessages(parse, statement, [value]);
    byValue.set(value, bytes);
  }
  return bytes;
}

/** Describe of the unnamed portal, then Execute of all its rows, then Sync: as pg's serializer writes them. */
const DESCRIBE_EXECUTE_SYNC = Buffer.concat([
  Buffer.from([0x44, 0, 0, 0, 6, 0x50, 0]), // Describe, portal '' ('P')
  EXECUTE_UNNAMED, // Execute, portal '', all rows
  Buffer.from([0x53, 0, 0, 0, 4]), // Sync
]);

/**
 * The app's own statement, written after `prefix` in the same buffer: a Parse of `text` under
 * `name` ('' for the unnamed statement) with no parameter types when `parse`, a Bind of `name`
 * to the unnamed portal with `values` (a string: text format; a Buffer: binary, as pg sends a
 * Buffer; null: SQL NULL) and text results, a Describe of the portal, an Execute of all its rows
 * and the Sync. Byte for byte what pg's Query.prepare writes for a query without `rows`,
 * `binary`, `portal` or parameter types (test/prefix-bytes.test.ts compares them), but as one
 * buffer and one write to the socket, where pg serialises each message through its shared writer
 * (a copy each) and writes five: no library writes a pipeline of messages in one buffer for pg,
 * and this is most of what pg's client spends per statement besides reading the answer.
 */
export function withStatement(
  prefix: Buffer,
  parse: boolean,
  name: string,
  text: string,
  values: readonly (string | Buffer | null)[],
): Buffer {
  const nameLength = Buffer.byteLength(name, 'utf8');
  const textLength = parse ? Buffer.byteLength(text, 'utf8') : 0;
  const parseSize = parse ? 1 + parseLength(nameLength, textLength) : 0;
  const length = bindLength(nameLength, values);
  const bytes = Buffer.allocUnsafe(prefix.length + parseSize + 1 + length + DESCRIBE_EXECUTE_SYNC.length);
  prefix.copy(bytes, 0);
  let at = prefix.length;
  if (parse) at = writeParse(bytes, at, name, nameLength, text, textLength);
  at = writeBind(bytes, at, length, name, nameLength, values);
  DESCRIBE_EXECUTE_SYNC.copy(bytes, at);
  return bytes;
}
