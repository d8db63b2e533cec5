import { sqlStateOf } from '../errors/sqlstate.js';

/** How many registrations one pool runs at once; a value met while all are busy waits for its next use. */
const MAX_IN_FLIGHT = 2;
/** Values remembered per pool (a tenant's value changes every minute at most): past this, the map starts over. */
const MAX_VALUES = 20_000;
/** Uses of a value before it is registered: a tenant seen once a minute is not worth a round trip. */
const USES_BEFORE_REGISTERING = 2;
const REGISTERED = -1;

/** How a registration ended: true remembered, false not now, null never here (unsigned, Citus). */
export type RegisterContext = (value: string) => Promise<boolean | null>;

/**
 * Registers the signed values a pool sends, so the database remembers each one's proof (core
 * migration 009, `tenantry.register_context`) and checks later statements with one index probe
 * instead of the HMAC and the gate. Off the statement's path: noting a value is a map lookup; a
 * value's second use starts its registration, on a connection of the pool, in a statement of its
 * own; its outcome is not awaited by anyone and its failure changes nothing (the value is checked
 * in full until registered). A database that answers "never here", lacks the function (an older
 * schema) or refuses the role stops the registrations of this pool.
 */
export class ContextRegistrar {
  #register: RegisterContext | undefined;
  #onError: ((error: unknown) => void) | undefined;
  readonly #uses = new Map<string, number>();
  #inFlight = 0;
  #stopped = false;

  /** Where registrations run (the pool, once constructed) and where their failures are told. */
  attach(register: RegisterContext, onError?: (error: unknown) => void): void {
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
      if (this.#uses.size >= MAX_VALUES) this.#uses.clear();
      this.#uses.set(value, 1);
      return;
    }
    if (uses + 1 < USES_BEFORE_REGISTERING || this.#inFlight >= MAX_IN_FLIGHT) {
      this.#uses.set(value, uses + 1);
      return;
    }
    // one attempt per value: one that is refused (a held tenant) or meets a change in progress is
    // followed by the tenant's next value within a minute
    this.#uses.set(value, REGISTERED);
    this.#inFlight++;
    this.#register(value).then(
      (outcome) => {
        this.#inFlight--;
        if (outcome === null) this.#stop();
      },
      (error: unknown) => {
        this.#inFlight--;
        const state = sqlStateOf(error);
        // 42883: no such function (installed by an older version); 42501: not the app role's
        if (state === '42883' || state === '42501') this.#stop();
        try {
          this.#onError?.(error);
        } catch {
          // a logger that throws must not matter here
        }
      },
    );
  }

  #stop(): void {
    this.#stopped = true;
    this.#uses.clear();
  }
}
