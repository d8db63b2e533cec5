import { sqlStateOf } from '../errors/sqlstate.js';

/** Values sent in one registration (tenantry.register_contexts takes up to 1,000): a few ms of a connection. */
const MAX_BATCH = 64;
/** Values remembered per pool: past this, those expired are dropped (all, if none is). */
const MAX_VALUES = 20_000;
/**
 * A value is registered once 16 of its uses come within 10 s (counted in windows of 16 uses): at
 * about 1.6 statements a second or more, each of the tenant's statements in the rest of the value's minute
 * saves the check, which pays for the registration's writes many times over. A tenant seen less
 * often is checked in full: at 10M rows and 10,000 tenants each used twice a second, registering
 * every value cost more than it saved (docs/benchmarks.md, "Proofs remembered").
 */
const USES_BEFORE_REGISTERING = 16;
const WITHIN_MS = 10_000;

/** A value's uses so far and when it was first used (ms); `uses` -1: registered or given up. */
interface Uses {
  uses: number;
  since: number;
}

/** How a registration ended: how many values were remembered, or null: never here (unsigned, Citus). */
export type RegisterContexts = (values: string[]) => Promise<number | null>;

/**
 * Registers the signed values a pool sends, so the database remembers each one's proof (core
 * migration 009, `tenantry.register_contexts`) and checks later statements with one index probe
 * instead of the HMAC and the gate. Off the statement's path: noting a value is a map lookup; a
 * value used often enough (see USES_BEFORE_REGISTERING) is queued, and the queue goes in one statement of its own on a connection of
 * the pool (one at a time per pool, up to 64 values each, a few milliseconds: a pool that starts
 * with 10,000 active tenants registers them in 157 statements). No statement waits for a registration and none can
 * fail because of one (a value is checked in full until registered). A database that answers
 * "never here", lacks the function (an older schema) or refuses the role stops this pool's.
 */
export class ContextRegistrar {
  #register: RegisterContexts | undefined;
  #onStop: ((error: unknown) => void) | undefined;
  readonly #uses = new Map<string, Uses>();
  #queue: string[] = [];
  #running = false;
  #stopped = false;

  /** Where registrations run (the pool, once constructed), and who is told of an error that stops them (42883, 42501). */
  attach(register: RegisterContexts, onStop?: (error: unknown) => void): void {
    this.#register = register;
    this.#onStop = onStop;
  }

  /** A statement is about to carry `value`. */
  note(value: string): void {
    if (this.#stopped || this.#register === undefined) return;
    const seen = this.#uses.get(value);
    if (seen === undefined) {
      if (this.#uses.size >= MAX_VALUES) this.#prune();
      this.#uses.set(value, { uses: 1, since: Date.now() });
      return;
    }
    if (seen.uses < 0 || ++seen.uses < USES_BEFORE_REGISTERING) return;
    const now = Date.now();
    if (now - seen.since > WITHIN_MS) {
      // not that often (yet): count the next 16 uses from now
      seen.uses = 0;
      seen.since = now;
      return;
    }
    // one attempt per value: one that is refused (a held tenant) or meets a change in progress
    // is followed by the tenant's next value within a minute
    seen.uses = -1;
    this.#queue.push(value);
    if (!this.#running) {
      this.#running = true;
      // after the statement that queued it has gone out: registrations ride behind the app's
      setImmediate(() => this.#drain());
    }
  }

  #drain(): void {
    if (this.#stopped || this.#queue.length === 0) {
      this.#running = false;
      return;
    }
    const batch = this.#queue.length <= MAX_BATCH ? this.#queue : this.#queue.slice(0, MAX_BATCH);
    this.#queue = this.#queue.length <= MAX_BATCH ? [] : this.#queue.slice(MAX_BATCH);
    this.#register!(batch).then(
      (outcome) => {
        if (outcome === null) this.#stop();
        this.#drain();
      },
      (error: unknown) => {
        const state = sqlStateOf(error);
        // 42883: no such function (installed by an older version); 42501: not the app role's
        if (state === '42883' || state === '42501') {
          this.#stop();
          try {
            this.#onStop?.(error);
          } catch {
            // a logger that throws must not matter here
          }
        }
        this.#drain();
      },
    );
  }

  /** Drops the values past their expiry (the second part of a signed value); all of them if none is. */
  #prune(): void {
    const now = Date.now() / 1000;
    for (const value of this.#uses.keys()) {
      const dot = value.indexOf('.');
      const expiry = Number(value.slice(dot + 1, value.indexOf('.', dot + 1)));
      if (!(expiry >= now)) this.#uses.delete(value);
    }
    if (this.#uses.size >= MAX_VALUES) this.#uses.clear();
  }

  #stop(): void {
    this.#stopped = true;
    this.#uses.clear();
    this.#queue = [];
  }
}
