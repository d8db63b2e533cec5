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
  const length = 4 + nameLength + 1 + textLength + 1 + 2;
  const bytes = Buffer.alloc(1 + length);
  bytes[0] = 0x50; // 'P'
  bytes.writeInt32BE(length, 1);
  let at = 5 + bytes.write(name, 5, 'utf8');
  bytes[at++] = 0;
  at += bytes.write(text, at, 'utf8');
  bytes[at++] = 0;
  bytes.writeInt16BE(0, at);
  return bytes;
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
  const n = values.length;
  let valueBytes = 0;
  for (let i = 0; i < n; i++) {
    const value = values[i];
    if (value !== null && value !== undefined) valueBytes += Buffer.byteLength(value, 'utf8');
  }
  // length, portal '' and statement names, format codes, values (each with its length), result formats
  const bindLength = 4 + 1 + statement.length + 1 + 2 + 2 * n + 2 + 4 * n + valueBytes + 2 + 2;
  const parseLength = parse === undefined ? 0 : parse.length;
  const bytes = Buffer.allocUnsafe(parseLength + 1 + bindLength + EXECUTE_UNNAMED.length);
  if (parse !== undefined) parse.copy(bytes, 0);
  let at = parseLength;
  bytes[at++] = 0x42; // 'B'
  bytes.writeInt32BE(bindLength, at);
  at += 4;
  bytes[at++] = 0; // the unnamed portal
  at += bytes.write(statement, at, 'latin1');
  bytes[at++] = 0;
  bytes.writeInt16BE(n, at);
  at += 2;
  bytes.fill(0, at, at + 2 * n); // every parameter in text format
  at += 2 * n;
  bytes.writeInt16BE(n, at);
  at += 2;
  for (let i = 0; i < n; i++) {
    const value = values[i];
    if (value === null || value === undefined) {
      bytes.writeInt32BE(-1, at);
      at += 4;
    } else {
      const written = bytes.write(value, at + 4, 'utf8');
      bytes.writeInt32BE(written, at);
      at += 4 + written;
    }
  }
  bytes.writeInt16BE(1, at); // one result format code, for every column: text
  bytes.writeInt16BE(0, at + 2);
  EXECUTE_UNNAMED.copy(bytes, at + 4);
  return bytes;
}

/**
 * The whole prefix of the unnamed statement `parse` (from `parseMessage`) with one parameter,
 * `value`: built once per value and shared by every connection. A value is a tenant's context,
 * the same for all its statements until the signer renews it (after a second, see
 * ContextSigner), so one tenant's statements mostly find theirs built. Keyed by the value itself:
 * the bytes are those of that value, never another's.
 */
export function unnamedPrefix(parse: Buffer, value: string): Buffer {
  let byValue = PREFIXES.get(parse);
  if (byValue === undefined) PREFIXES.set(parse, (byValue = new Map()));
  let bytes = byValue.get(value);
  if (bytes === undefined) {
    // a bound on memory: values of tenants no longer seen, or renewed, are dropped all at once
    if (byValue.size >= MAX_PREFIXES) byValue.clear();
    bytes = prefixMessages(parse, '', [value]);
    byValue.set(value, bytes);
  }
  return bytes;
}
const PREFIXES = new Map<Buffer, Map<string, Buffer>>();
const MAX_PREFIXES = 10_000;

/**
 * The whole prefix of the named statement `statement` (already parsed on the connection) with
 * one parameter, `value`: as `unnamedPrefix`, built once per value and shared by every
 * connection (the statement's name is the same on each).
 */
export function namedPrefix(statement: string, value: string): Buffer {
  let byValue = NAMED_PREFIXES.get(statement);
  if (byValue === undefined) NAMED_PREFIXES.set(statement, (byValue = new Map()));
  let bytes = byValue.get(value);
  if (bytes === undefined) {
    if (byValue.size >= MAX_PREFIXES) byValue.clear();
    bytes = prefixMessages(undefined, statement, [value]);
    byValue.set(value, bytes);
  }
  return bytes;
}
const NAMED_PREFIXES = new Map<string, Map<string, Buffer>>();

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
  const parseLength = parse ? 4 + nameLength + 1 + textLength + 1 + 2 : 0;
  const n = values.length;
  let valueBytes = 0;
  for (let i = 0; i < n; i++) {
    const value = values[i];
    if (typeof value === 'string') valueBytes += Buffer.byteLength(value, 'utf8');
    else if (value !== null && value !== undefined) valueBytes += value.length;
  }
  // length, portal '', statement name, format codes, values (each with its length), result formats
  const bindLength = 4 + 1 + nameLength + 1 + 2 + 2 * n + 2 + 4 * n + valueBytes + 2 + 2;
  const size = prefix.length + (parse ? 1 + parseLength : 0) + 1 + bindLength + DESCRIBE_EXECUTE_SYNC.length;
  const bytes = Buffer.allocUnsafe(size);
  prefix.copy(bytes, 0);
  let at = prefix.length;
  if (parse) {
    bytes[at] = 0x50; // 'P'
    bytes.writeInt32BE(parseLength, at + 1);
    at += 5;
    at += bytes.write(name, at, nameLength, 'utf8');
    bytes[at++] = 0;
    at += bytes.write(text, at, textLength, 'utf8');
    bytes[at++] = 0;
    bytes[at++] = 0; // no parameter types
    bytes[at++] = 0;
  }
  bytes[at] = 0x42; // 'B'
  bytes.writeInt32BE(bindLength, at + 1);
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
  DESCRIBE_EXECUTE_SYNC.copy(bytes, at);
  return bytes;
}
