import { hash, randomBytes } from 'node:crypto';

const RECENT_MAX = 32_768;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * How a restore-as-new gives fresh ids without a table of them: each id becomes the SHA-256 of a
 * key drawn for this import followed by the old id (a fixed-length input: no length extension to
 * fear, and a one-shot hash costs half an HMAC object per id), cut to a version-4 UUID. The same old id gives
 * the same new id in every table (a foreign key's column and the key it references map alike, so
 * references stay intact), the new ids tell nothing of the old ones without the key, and memory
 * stays constant however many ids the tenant has (a map of a million ids would not).
 * A collision between two new ids is as likely as between two random UUIDs (122 bits).
 */
export class IdRemap {
  readonly #prefix: string;

  constructor(key: Buffer = randomBytes(32)) {
    this.#prefix = key.toString('hex');
  }

  /**
   * Recent mappings: a referencing column repeats its parents' ids (every task of a project),
   * so most of its lookups are hits. Bounded: emptied when full, memory stays constant.
   */
  readonly #recent = new Map<string, string>();

  /** The new id of `id` (a uuid in canonical text form); undefined when `id` is not a uuid. */
  map(id: string): string | undefined {
    const hit = this.#recent.get(id);
    if (hit !== undefined) return hit;
    const lower = id.toLowerCase();
    if (!UUID.test(lower)) return undefined;
    const mapped = this.#derive(lower);
    if (this.#recent.size >= RECENT_MAX) this.#recent.clear();
    this.#recent.set(id, mapped);
    return mapped;
  }

  #derive(lower: string): string {
    const h = hash('sha256', this.#prefix + lower, 'buffer');
    h[6] = (h[6]! & 0x0f) | 0x40;
    h[8] = (h[8]! & 0x3f) | 0x80;
    const x = h.subarray(0, 16).toString('hex');
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
  }
}
