/**
 * Per-query latencies in nanoseconds, in a buffer allocated before measuring so that
 * recording costs one store. Samples past the capacity are counted but not kept.
 */
export class LatencyRecorder {
  readonly #samples: Float64Array;
  #length = 0;
  #count = 0;

  constructor(capacity: number) {
    this.#samples = new Float64Array(capacity);
  }

  record(nanoseconds: number): void {
    this.#count++;
    if (this.#length < this.#samples.length) this.#samples[this.#length++] = nanoseconds;
  }

  /** Queries recorded (kept or not). */
  get count(): number {
    return this.#count;
  }

  /** True when some samples did not fit: percentiles then describe the first `capacity` queries. */
  get truncated(): boolean {
    return this.#count > this.#length;
  }

  /** Nearest-rank percentiles, in milliseconds. Sorts the kept samples in place. */
  percentiles(...ps: number[]): number[] {
    const kept = this.#samples.subarray(0, this.#length);
    kept.sort();
    return ps.map((p) => {
      if (kept.length === 0) return Number.NaN;
      const rank = Math.min(kept.length - 1, Math.max(0, Math.ceil((p / 100) * kept.length) - 1));
      return kept[rank]! / 1e6;
    });
  }
}
