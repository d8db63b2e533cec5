import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

const NEWLINE = 0x0a;

/**
 * An order-independent digest of a multiset of rows: the sum, per 32-bit word, of each row's
 * 128-bit hash. The rows an import sent to COPY and the rows it reads back from the table (in
 * whatever order the table returns them) must give the same value. Sums of words rather than of
 * whole hashes: plain numbers stay exact up to 2^21 million rows, with no BigInt per row.
 *
 * The row hash is MurmurHash3 (x86, 128-bit) written out here, seeded per import with random
 * words shared by both sides: it runs in JavaScript on a byte range of the chunk, where a
 * SHA-256 per row (a native call each: several microseconds, the import's largest client cost)
 * did not; no maintained package hashes a Buffer range without a call or a copy per row. It is
 * not a cryptographic hash: what it guards is that the table holds what was sent (a trigger,
 * a default or a type's rounding changing a row shows); the archive's own integrity is the
 * manifest's SHA-256 over every byte of it, checked as before.
 */
export class RowSetDigest {
  rows = 0;
  readonly #sums = [0, 0, 0, 0];
  readonly #seed: Uint32Array;

  constructor(seed: Uint32Array) {
    this.#seed = seed;
  }

  /** One row, its newline included: `buf[start…end)`. */
  add(buf: Buffer, start = 0, end = buf.length): void {
    murmur3x86x128(buf, start, end, this.#seed, OUT);
    this.#sums[0]! += OUT[0]!;
    this.#sums[1]! += OUT[1]!;
    this.#sums[2]! += OUT[2]!;
    this.#sums[3]! += OUT[3]!;
    this.rows++;
  }

  /** `rows:word0.word1.word2.word3` (hex). */
  value(): string {
    return `${this.rows}:${this.#sums.map((s) => s.toString(16)).join('.')}`;
  }
}

const OUT = new Uint32Array(4);
const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));
const fmix = (h: number) => {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
};
const word = (b: Buffer, i: number) => (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;

/** MurmurHash3_x86_128 of `b[start…end)` with one seed per lane, into `out` (4 words). */
export function murmur3x86x128(b: Buffer, start: number, end: number, seed: Uint32Array, out: Uint32Array): void {
  let h1 = seed[0]! | 0;
  let h2 = seed[1]! | 0;
  let h3 = seed[2]! | 0;
  let h4 = seed[3]! | 0;
  const len = end - start;
  const blocksEnd = start + (len & ~15);
  let i = start;
  for (; i < blocksEnd; i += 16) {
    let k1 = word(b, i);
    let k2 = word(b, i + 4);
    let k3 = word(b, i + 8);
    let k4 = word(b, i + 12);
    k1 = Math.imul(rotl(Math.imul(k1, C1), 15), C2);
    h1 ^= k1;
    h1 = (Math.imul(rotl(h1, 19) + h2, 5) + 0x561ccd1b) | 0;
    k2 = Math.imul(rotl(Math.imul(k2, C2), 16), C3);
    h2 ^= k2;
    h2 = (Math.imul(rotl(h2, 17) + h3, 5) + 0x0bcaa747) | 0;
    k3 = Math.imul(rotl(Math.imul(k3, C3), 17), C4);
    h3 ^= k3;
    h3 = (Math.imul(rotl(h3, 15) + h4, 5) + 0x96cd1c35) | 0;
    k4 = Math.imul(rotl(Math.imul(k4, C4), 18), C1);
    h4 ^= k4;
    h4 = (Math.imul(rotl(h4, 13) + h1, 5) + 0x32ac3b17) | 0;
  }
  // the tail: up to 15 bytes, little-endian into k1..k4
  let k1 = 0;
  let k2 = 0;
  let k3 = 0;
  let k4 = 0;
  for (let t = end - 1; t >= i; t--) {
    const at = t - i;
    const v = b[t]! << ((at & 3) * 8);
    if (at < 4) k1 ^= v;
    else if (at < 8) k2 ^= v;
    else if (at < 12) k3 ^= v;
    else k4 ^= v;
  }
  const tail = end - i;
  if (tail > 12) h4 ^= Math.imul(rotl(Math.imul(k4, C4), 18), C1);
  if (tail > 8) h3 ^= Math.imul(rotl(Math.imul(k3, C3), 17), C4);
  if (tail > 4) h2 ^= Math.imul(rotl(Math.imul(k2, C2), 16), C3);
  if (tail > 0) h1 ^= Math.imul(rotl(Math.imul(k1, C1), 15), C2);
  h1 ^= len;
  h2 ^= len;
  h3 ^= len;
  h4 ^= len;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h3 = fmix(h3);
  h4 = fmix(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  out[0] = h1;
  out[1] = h2;
  out[2] = h3;
  out[3] = h4;
}

/** What a {@link StreamDigest} saw: rows (newlines), bytes and the SHA-256 of those bytes. */
export interface StreamFacts {
  rows: number;
  bytes: number;
  sha256: string;
}

/**
 * A pass-through Transform that counts the rows (newlines) and bytes of a COPY text stream and
 * hashes it, chunk by chunk: what the export records per table, and what the import checks the
 * archive's bytes against.
 */
export class StreamDigest extends Transform {
  readonly #hash: Hash = createHash('sha256');
  #rows = 0;
  #bytes = 0;
  readonly #onChunk: ((facts: { rows: number; bytes: number }) => void) | undefined;

  constructor(onChunk?: (facts: { rows: number; bytes: number }) => void) {
    super();
    this.#onChunk = onChunk;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.#hash.update(chunk);
    this.#bytes += chunk.length;
    for (let at = chunk.indexOf(NEWLINE); at !== -1; at = chunk.indexOf(NEWLINE, at + 1)) this.#rows++;
    this.#onChunk?.({ rows: this.#rows, bytes: this.#bytes });
    done(null, chunk);
  }

  /** Valid once the stream has ended. */
  facts(): StreamFacts {
    return { rows: this.#rows, bytes: this.#bytes, sha256: this.#hash.copy().digest('hex') };
  }
}

/**
 * Splits a byte stream into runs of whole lines (COPY text format: a row per line, newlines
 * inside values are escaped as `\n`, so a raw newline always ends a row) and hands each run to
 * `onLines` (a buffer of whole lines, the last newline included), which returns what to pass on
 * (the same bytes, rewritten, or nothing) or throws. A chunk's rows are handled together: no
 * buffer per row. Memory: one chunk plus one partial line.
 */
export class LineTransform extends Transform {
  #tail: Buffer | undefined;
  readonly #onLines: (lines: Buffer) => Buffer | undefined;

  constructor(onLines: (lines: Buffer) => Buffer | undefined) {
    super();
    this.#onLines = onLines;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      const data = this.#tail ? Buffer.concat([this.#tail, chunk]) : chunk;
      const last = data.lastIndexOf(NEWLINE);
      this.#tail = last + 1 < data.length ? Buffer.from(data.subarray(last + 1)) : undefined;
      done(null, last === -1 ? undefined : (this.#onLines(data.subarray(0, last + 1)) ?? undefined));
    } catch (error) {
      done(error as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    // a row without its newline: the stream was cut inside a row
    if (this.#tail && this.#tail.length > 0) done(new Error('tenantry: a row does not end with a newline'));
    else done();
  }
}
