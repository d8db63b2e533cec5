import { sqlStateOf } from '../errors/sqlstate.js';

/** Values sent in one registration (tenantry.register_contexts takes up to 1,000). */
const MAX_BATCH = 500;
/** Values remembered per pool: past this, those expired are dropped (all, if none is). */
const MAX_VALUES = 50_000;
/** Uses of a value before it is registered: a tenant seen once a minute is not worth the work. */
const USES_BEFORE_REGISTERING = 3;
const REGISTERED = -1;

/** How a registration ended: how many values were remembered, or null: never here (unsigned, Citus). */
export type RegisterContexts = (values: string[]) => Promise<number | null>;

/**
 * Registers the signed values a pool sends, so the database remembers each one's proof (core
 * migration 009, `tenantry.register_contexts`) and checks later statements with one index probe
 * instead of the HMAC and the gate. Off the statement's path: noting a value is a map lookup; a
 * value's third use queues it, and the queue goes in one statement of its own on a connection of
 * the pool (one at a time per pool, up to 500 values each: a pool that starts with 10,000 active
 * tenants registers them in 20 statements). No statement waits for a registration and none can
 * fail because of one (a value is checked in full until registered). A database that answers
 * "never here", lacks the function (an older schema) or refuses the role stops this pool's.
 */
export class ContextRegistrar {
  #register: RegisterContexts | undefined;
  #onError: ((error: unknown) => void) | undefined;
  readonly #uses = new Map<string, number>();
  #queue: string[] = [];
  #running = false;
  #stopped = false;

  /** Where registrations run (the pool, once constructed) and where their failures are told. */
  attach(register: RegisterContexts, onError?: (error: unknown) => void): void {
    this.#register = register;
    this.#onError = onError;
  }

  /** True once the database said registrations are not used here (or cannot be). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** A statement is about to carry `value`. */
  note(value: string): void {
    if (this.#stopped || this.#register === undefined) return;
    const uses = this.#uses.get(value);
    if (uses === REGISTERED) return;
    if (uses === undefined) {
      if (this.#uses.size >= MAX_VALUES) this.#prune();
      this.#uses.set(value, 1);
      return;
    }
    if (uses + 1 < USES_BEFORE_REGISTERING) {
      this.#uses.set(value, uses + 1);
      return;
    }
    // one attempt per value: one that is refused (a held tenant) or meets a change in progress is
    // followed by the tenant's next value within a minute
    this.#uses.set(value, REGISTERED);
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
        if (state === '42883' || state === '42501') this.#stop();
        try {
          this.#onError?.(error);
        } catch {
          // a logger that throws must not matter here
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
