import { createCipheriv, randomBytes, type Cipher } from 'node:crypto';

const DASHES = [8, 13, 18, 23];
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** ASCII byte → its hex digit value, or 255 (both cases accepted, as uuid input is). */
const NIBBLE = new Uint8Array(256).fill(255);
for (let i = 0; i < 10; i++) NIBBLE[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  NIBBLE[0x61 + i] = 10 + i;
  NIBBLE[0x41 + i] = 10 + i;
}

/**
 * How a restore-as-new gives fresh ids without a table of them: each id's 16 bytes are encrypted
 * with AES-128 under a key drawn for this import (a keyed permutation: two old ids never give the
 * same block), then marked as a version-4 UUID (6 fixed bits: a collision between two new ids is
 * as likely as between two random UUIDs, 122 bits). The same old id gives the same new id in
 * every table (a foreign key's column and the key it references map alike, so references stay
 * intact), the new ids tell nothing of the old ones without the key, and memory stays constant
 * however many ids the tenant has (a map of a million ids would not). ECB mode on purpose: each
 * id is one block on its own, so a whole chunk's ids are encrypted in one call ({@link IdRemap.mapBytes}).
 */
export class IdRemap {
  readonly #cipher: Cipher;

  constructor(key: Buffer = randomBytes(16)) {
    this.#cipher = createCipheriv('aes-128-ecb', key.subarray(0, 16), null);
    this.#cipher.setAutoPadding(false);
  }

  /** The new id of `id` (a uuid in canonical text form, either case); undefined when `id` is not a uuid. */
  map(id: string): string | undefined {
    const text = Buffer.from(id, 'latin1');
    if (text.length !== 36) return undefined;
    const batch = new IdBatch(this, 1);
    if (!batch.add(text, 0, 0)) return undefined;
    batch.run();
    batch.write(text, 0, 0);
    return text.toString('latin1');
  }

  /** Encrypts `blocks` (whole 16-byte blocks) in one call. */
  encrypt(blocks: Buffer): Buffer {
    return this.#cipher.update(blocks);
  }
}

/**
 * The ids of a chunk of rows, remapped together: {@link IdBatch.add} parses each uuid's text into
 * a block, {@link IdBatch.run} encrypts them all in one call, {@link IdBatch.write} writes each new
 * id's text in place of the old one (same length: 36 bytes). Parsing and formatting by hand on
 * the bytes: Buffer has no hex codec for a range with dashes, and a string per id is what cost most.
 */
export class IdBatch {
  #blocks: Buffer;
  #out: Buffer | undefined;
  #n = 0;
  readonly #remap: IdRemap;

  constructor(remap: IdRemap, capacity: number) {
    this.#remap = remap;
    this.#blocks = Buffer.allocUnsafe(Math.max(1, capacity) * 16);
  }

  get size(): number {
    return this.#n;
  }

  /** Parses the uuid text at `src[at…at+36)` as block `slot`; false when it is not a uuid. */
  add(src: Buffer, at: number, slot: number): boolean {
    if ((slot + 1) * 16 > this.#blocks.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.#blocks.length * 2, (slot + 1) * 16));
      this.#blocks.copy(grown, 0, 0, this.#n * 16);
      this.#blocks = grown;
    }
    const blocks = this.#blocks;
    let o = slot * 16;
    let i = at;
    const end = at + 36;
    let d = 0;
    while (i < end) {
      if (i - at === DASHES[d]) {
        if (src[i] !== 0x2d) return false;
        i++;
        d++;
        continue;
      }
      const hi = NIBBLE[src[i]!]!;
      const lo = NIBBLE[src[i + 1]!]!;
      if (hi === 255 || lo === 255) return false;
      blocks[o++] = (hi << 4) | lo;
      i += 2;
    }
    if (slot + 1 > this.#n) this.#n = slot + 1;
    return true;
  }

  run(): void {
    this.#out = this.#remap.encrypt(this.#blocks.subarray(0, this.#n * 16));
  }

  /** Writes the new id of block `slot` as uuid text at `dst[at…at+36)`. */
  write(dst: Buffer, at: number, slot: number): void {
    const out = this.#out!;
    const o = slot * 16;
    out[o + 6] = (out[o + 6]! & 0x0f) | 0x40;
    out[o + 8] = (out[o + 8]! & 0x3f) | 0x80;
    let j = at;
    for (let b = 0; b < 16; b++) {
      if (b === 4 || b === 6 || b === 8 || b === 10) dst[j++] = 0x2d;
      const v = out[o + b]!;
      dst[j++] = HEX[v >> 4]!;
      dst[j++] = HEX[v & 15]!;
    }
  }

  reset(): void {
    this.#n = 0;
    this.#out = undefined;
  }
}
