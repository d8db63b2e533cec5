/** One counted key of a {@link SpaceSaving} summary. */
export interface SpaceSavingEntry {
  readonly key: string;
  /** Estimated weight: at least the key's true weight, at most `error` above it. */
  readonly count: number;
  /** How much of `count` may belong to the keys this one replaced. */
  readonly error: number;
}

interface Slot {
  key: string;
  count: number;
  error: number;
}

/**
 * The weighted Space-Saving summary (Metwally, Agrawal, El Abbadi, 2005): the heaviest keys of a
 * stream in `capacity` slots, whatever the number of distinct keys. A key not in the summary
 * takes the lightest slot and inherits its count as its error, so any key whose true weight is
 * above total/capacity is always in it. Slots are a binary min-heap: O(log capacity) per update.
 *
 * Written by hand: no maintained npm package offers a weighted Space-Saving (mnemonist's heaps
 * cannot update a key in place, and count-min-sketch packages cannot list their heavy keys).
 */
export class SpaceSaving {
  readonly #capacity: number;
  readonly #heap: Slot[] = [];
  readonly #index = new Map<string, number>();

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
    this.#capacity = capacity;
  }

  /** Distinct keys held (at most the capacity). */
  get size(): number {
    return this.#heap.length;
  }

  /** Adds `weight` (> 0) to `key`. */
  add(key: string, weight: number): void {
    if (!(weight > 0)) return;
    const at = this.#index.get(key);
    if (at !== undefined) {
      this.#heap[at]!.count += weight;
      this.#down(at);
      return;
    }
    if (this.#heap.length < this.#capacity) {
      this.#heap.push({ key, count: weight, error: 0 });
      this.#index.set(key, this.#heap.length - 1);
      this.#up(this.#heap.length - 1);
      return;
    }
    // the lightest key gives its slot up; the newcomer may have had that much before
    const min = this.#heap[0]!;
    this.#index.delete(min.key);
    min.key = key;
    min.error = min.count;
    min.count += weight;
    this.#index.set(key, 0);
    this.#down(0);
  }

  /** Multiplies every count by `factor` (0 < factor ≤ 1): older weight counts less. Keeps the heap's order. */
  decay(factor: number): void {
    for (const slot of this.#heap) {
      slot.count *= factor;
      slot.error *= factor;
    }
  }

  /**
   * The `k` heaviest keys, heaviest first, ranked by guaranteed weight (`count - error`): a light
   * key that just took a heavy slot over does not outrank a key that earned its weight.
   */
  top(k: number): SpaceSavingEntry[] {
    return [...this.#heap]
      .sort((a, b) => b.count - b.error - (a.count - a.error) || (a.key < b.key ? -1 : 1))
      .slice(0, k)
      .map(({ key, count, error }) => ({ key, count, error }));
  }

  #up(i: number): void {
    const heap = this.#heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.count <= heap[i]!.count) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #down(i: number): void {
    const heap = this.#heap;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let least = i;
      if (left < heap.length && heap[left]!.count < heap[least]!.count) least = left;
      if (right < heap.length && heap[right]!.count < heap[least]!.count) least = right;
      if (least === i) return;
      this.#swap(i, least);
      i = least;
    }
  }

  #swap(a: number, b: number): void {
    const heap = this.#heap;
    const x = heap[a]!;
    const y = heap[b]!;
    heap[a] = y;
    heap[b] = x;
    this.#index.set(y.key, a);
    this.#index.set(x.key, b);
  }
}
