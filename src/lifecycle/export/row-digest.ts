import { createHash, hash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

const NEWLINE = 0x0a;

/**
 * An order-independent digest of a multiset of rows: the sum, per 32-bit word, of the first 16
 * bytes of each row's SHA-256. The rows an import sent to COPY and the rows it reads back from
 * the table (in whatever order the table returns them) must give the same value. Sums of words
 * rather than of whole digests: plain numbers stay exact up to 2^21 million rows, with no BigInt per row.
 */
export class RowSetDigest {
  rows = 0;
  readonly #sums = [0, 0, 0, 0];

  /** One row, its newline included. */
  add(line: Buffer): void {
    // one-shot hash: no Hash object per row (half the cost of createHash at a million rows)
    const h = hash('sha256', line, 'buffer');
    this.#sums[0]! += h.readUInt32LE(0);
    this.#sums[1]! += h.readUInt32LE(4);
    this.#sums[2]! += h.readUInt32LE(8);
    this.#sums[3]! += h.readUInt32LE(12);
    this.rows++;
  }

  /** `rows:word0.word1.word2.word3` (hex). */
  value(): string {
    return `${this.rows}:${this.#sums.map((s) => s.toString(16)).join('.')}`;
  }
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
 * Splits a byte stream into whole lines (COPY text format: a row per line, newlines inside values
 * are escaped as `\n`, so a raw newline always ends a row) and hands each to `onLine`, which
 * returns the line to pass on (rewritten) or throws. Memory: one chunk plus one partial line.
 */
export class LineTransform extends Transform {
  #tail: Buffer | undefined;
  readonly #onLine: (line: Buffer) => Buffer;

  constructor(onLine: (line: Buffer) => Buffer) {
    super();
    this.#onLine = onLine;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      const data = this.#tail ? Buffer.concat([this.#tail, chunk]) : chunk;
      const out: Buffer[] = [];
      let start = 0;
      for (let at = data.indexOf(NEWLINE); at !== -1; at = data.indexOf(NEWLINE, start)) {
        out.push(this.#onLine(data.subarray(start, at + 1)));
        start = at + 1;
      }
      this.#tail = start < data.length ? Buffer.from(data.subarray(start)) : undefined;
      done(null, out.length ? Buffer.concat(out) : undefined);
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
