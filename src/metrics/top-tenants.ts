import { SpaceSaving } from './space-saving.js';

/** The label value of every tenant that is not among the top K. */
export const OTHER_TENANTS = 'other';

/** Options of {@link TopTenants}. */
export interface TopTenantsOptions {
  /** How many tenants get a label value of their own (the rest share `other`). */
  k: number;
  /** Tenants the cost summary tracks (default `max(1000, 50 × k)`): memory, not series. */
  capacity?: number;
  /** How often the top K is chosen again (default 60 s). */
  windowMs?: number;
  /** Weight of the past at each choice (default 0.5: a window's cost counts half in the next). */
  decay?: number;
  /** Called with the tenants that left the top K, before any newcomer gets a label. */
  onRetire: (tenants: readonly string[]) => void;
  /** The clock (tests). */
  now?: () => number;
}

/**
 * Which tenants have a metric label of their own: at most `k` at any time, the rest are `other`.
 *
 * Every event charges its cost (seconds of request and database time) to its tenant in a weighted
 * Space-Saving summary, so the heaviest tenants are known in bounded memory among any number of
 * tenants. At the end of each window the top K by decayed cost is chosen again: tenants that left
 * it are retired (their series removed, through `onRetire`) before the newcomers get theirs, so a
 * metric never has more than K + 1 tenant label values, and the set changes at most once a window.
 * Within a window, while fewer than K tenants hold a label, a tenant seen for the first time gets
 * one at once (a small deployment sees every tenant by name from the start).
 */
export class TopTenants {
  readonly #k: number;
  readonly #summary: SpaceSaving;
  readonly #windowMs: number;
  readonly #decay: number;
  readonly #onRetire: (tenants: readonly string[]) => void;
  readonly #now: () => number;
  #labeled = new Set<string>();
  #windowEnd: number;

  constructor(options: TopTenantsOptions) {
    const { k, windowMs = 60_000, decay = 0.5 } = options;
    if (!Number.isInteger(k) || k < 0) throw new RangeError('k must be a non-negative integer');
    if (!(windowMs > 0)) throw new RangeError('windowMs must be positive');
    if (!(decay > 0 && decay <= 1)) throw new RangeError('decay must be in (0, 1]');
    this.#k = k;
    this.#summary = new SpaceSaving(options.capacity ?? Math.max(1000, 50 * k));
    this.#windowMs = windowMs;
    this.#decay = decay;
    this.#onRetire = options.onRetire;
    this.#now = options.now ?? Date.now;
    this.#windowEnd = this.#now() + windowMs;
  }

  /** Charges `cost` to the tenant and returns its label value: its id when in the top K, else `other`. */
  label(tenantId: string, cost: number): string {
    if (this.#now() >= this.#windowEnd) this.rotate();
    this.#summary.add(tenantId, cost);
    if (this.#labeled.has(tenantId)) return tenantId;
    if (this.#labeled.size < this.#k) {
      this.#labeled.add(tenantId);
      return tenantId;
    }
    return OTHER_TENANTS;
  }

  /** Chooses the top K again now (called at each window's end; tests call it directly). */
  rotate(): void {
    const top = new Set(this.#summary.top(this.#k).map((e) => e.key));
    const retired = [...this.#labeled].filter((t) => !top.has(t));
    if (retired.length > 0) this.#onRetire(retired);
    this.#labeled = top;
    this.#summary.decay(this.#decay);
    this.#windowEnd = this.#now() + this.#windowMs;
  }

  /** The tenants that have a label value of their own now. */
  labeled(): ReadonlySet<string> {
    return this.#labeled;
  }
}
