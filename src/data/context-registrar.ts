import pg from 'pg';
import { sqlStateOf } from '../errors/sqlstate.js';

/** Values sent in one registration at most (tenantry.register_contexts takes up to 1,000): a few ms of a connection. */
const MAX_BATCH = 64;
/**
 * How long a queued value waits for others to go with it (ms): a registration's own statement and
 * commit cost ≈ 0.4 ms, each value in it ≈ 0.04 ms (docs/benchmarks.md, "Proofs remembered"), so
 * values go together rather than one statement each.
 */
const BATCH_WAIT_MS = 100;
/**
 * Values remembered per pool (≈ 15 MB at most): past this, those done with are dropped (at most
 * once a second); while none is, a new value is not counted (checked in full, not registered),
 * rather than everything forgotten and registered again.
 */
const MAX_VALUES = 50_000;
/**
 * A value is registered at its 3rd use within a minute (a pool hands a signed value out for at
 * most a minute). Until then each statement with it looks the value up and runs the whole check
 * (≈ 9 µs more than the check alone); once registered, each saves ≈ 10 µs against the check
 * alone, and a registration costs ≈ 0.04–0.1 ms: a value used three times or more pays for
 * itself, one used once or twice costs least unregistered.
 */
const USES_BEFORE_REGISTERING = 3;
const WITHIN_MS = 60_000;
/** A value first used longer ago than this is no longer handed out (its minute is over): dropped when pruning. */
const DONE_AFTER_MS = 2 * WITHIN_MS;

/** A value's uses so far and when it was first used (ms); `uses` -1: registered or given up. */
interface Uses {
  uses: number;
  since: number;
}

/** How a registration ended: how many values were remembered, -1: not in this session (not READ COMMITTED, or read only), or null: never here (unsigned, Citus). */
export type RegisterContexts = (values: string[]) => Promise<number | null>;

/**
 * Registers the signed values a pool sends, so the database remembers each one's proof (core
 * migration 009, `tenantry.register_contexts`) and checks later statements with one index probe
 * instead of the HMAC and the gate. Off the statement's path: noting a value is a map lookup; a
 * value used often enough (see USES_BEFORE_REGISTERING) is queued, and the queue goes in one
 * statement of its own on a connection of the pool, one at a time per pool, up to 64 values
 * each, a queued value waiting up to 100 ms for others (a pool that starts with 10,000 active
 * tenants registers them in 157 statements). No statement waits for a registration and none can
 * fail because of one (a value is checked in full until registered). A database that answers
 * "never here", lacks the function (an older schema) or refuses the role stops this pool's.
 */
export class ContextRegistrar {
  #register: RegisterContexts | undefined;
  #onStop: ((error: unknown) => void) | undefined;
  #onRefused: (() => void) | undefined;
  readonly #uses = new Map<string, Uses>();
  #queue: string[] = [];
  /** A batch is on its way, or waiting (BATCH_WAIT_MS) to go. */
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #prunedAt = 0;

  /**
   * Where registrations run (the pool, once constructed), who is told of an error that stops them
   * (42883, 42501), and who is told, once, of the first registration a session would not make (-1:
   * its transaction not READ COMMITTED, or read only, as on a standby). That one does not stop
   * them: another connection (after a failover, another host) may.
   */
  attach(register: RegisterContexts, onStop?: (error: unknown) => void, onRefused?: () => void): void {
    this.#register = register;
    this.#onStop = onStop;
    this.#onRefused = onRefused;
  }

  /** A statement is about to carry `value`. */
  note(value: string): void {
    if (this.#stopped || this.#register === undefined) return;
    const seen = this.#uses.get(value);
    if (seen === undefined) {
      if (this.#uses.size >= MAX_VALUES && !this.#prune()) return;
      this.#uses.set(value, { uses: 1, since: Date.now() });
      return;
    }
    if (seen.uses < 0 || ++seen.uses < USES_BEFORE_REGISTERING) return;
    const now = Date.now();
    if (now - seen.since > WITHIN_MS) {
      // not that often: count the next uses from now
      seen.uses = 1;
      seen.since = now;
      return;
    }
    // one attempt per value: one that is refused (a held tenant) or meets a change in progress
    // is followed by the tenant's next value within a minute
    seen.uses = -1;
    this.#queue.push(value);
    if (!this.#running) {
      this.#running = true;
      this.#next();
    }
  }

  /** Ends registrations (the pool is ending): whatever is queued is dropped. */
  close(): void {
    this.#stop();
  }

  /** The next batch: at once when a full one is queued, else after BATCH_WAIT_MS (behind the app's statements either way). */
  #next(): void {
    if (this.#queue.length >= MAX_BATCH) setImmediate(() => this.#drain());
    else {
      this.#timer = setTimeout(() => this.#drain(), BATCH_WAIT_MS);
      this.#timer.unref?.();
    }
  }

  #drain(): void {
    this.#timer = undefined;
    if (this.#stopped || this.#queue.length === 0) {
      this.#running = false;
      return;
    }
    const batch = this.#queue.length <= MAX_BATCH ? this.#queue : this.#queue.slice(0, MAX_BATCH);
    this.#queue = this.#queue.length <= MAX_BATCH ? [] : this.#queue.slice(MAX_BATCH);
    this.#register!(batch).then(
      (outcome) => {
        if (outcome === null) this.#stop();
        else if (outcome === -1 && this.#onRefused !== undefined) {
          const onRefused = this.#onRefused;
          this.#onRefused = undefined; // once per pool
          tell(onRefused, undefined);
        }
        this.#after();
      },
      (error: unknown) => {
        const state = sqlStateOf(error);
        // 42883: no such function (installed by an older version); 42501: not the app role's
        if (state === '42883' || state === '42501') {
          this.#stop();
          tell(this.#onStop, error);
        }
        this.#after();
      },
    );
  }

  /** After a batch: the next one if anything is queued. */
  #after(): void {
    if (this.#stopped || this.#queue.length === 0) this.#running = false;
    else this.#next();
  }

  /** Drops the values done with (first used over two minutes ago) or past their expiry (the second part of a signed value), at most once a second: whether there is room now. */
  #prune(): boolean {
    const now = Date.now();
    if (now - this.#prunedAt < 1_000) return false;
    this.#prunedAt = now;
    for (const [value, seen] of this.#uses) {
      const dot = value.indexOf('.');
      const expiry = Number(value.slice(dot + 1, value.indexOf('.', dot + 1)));
      if (now - seen.since > DONE_AFTER_MS || !(expiry * 1000 >= now)) this.#uses.delete(value);
    }
    return this.#uses.size < MAX_VALUES;
  }

  #stop(): void {
    this.#stopped = true;
    this.#uses.clear();
    this.#queue = [];
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** Tells `listener` (the pool's logger, in the end): one that throws must not matter here. */
function tell(listener: ((error: unknown) => void) | undefined, error: unknown): void {
  try {
    listener?.(error);
  } catch {
    // nothing: the registrations go on, or stay stopped, either way
  }
}

/**
 * Registers signed values through `pool` (core migration 009): pg-pool's own checkout and pg's
 * own query, so it is not the app's statement (no prefix, no tenant, not counted by a
 * TenantPool's activity, observers or telemetry, not queued by its fair checkout).
 * register_contexts reads no context and never waits for a lock; the app role's
 * statement_timeout bounds it.
 */
export function registerThrough(pool: pg.Pool): RegisterContexts {
  return async (values) => {
    const client = await (pg.Pool.prototype.connect as () => Promise<pg.PoolClient>).call(pool);
    let broken: Error | undefined;
    // checked out, the client has no listener of the pool's: an error it emits between the
    // query's end and the release (the server ending the backend: a restart, a failover,
    // pg_terminate_backend) would be thrown as an unhandled 'error' event and end the process.
    // Such an error breaks the connection: it is not given back to the pool.
    const onError = (error: Error) => {
      broken ??= error;
    };
    client.on('error', onError);
    try {
      const res = await (
        pg.Client.prototype.query as (text: string, values: unknown[]) => Promise<pg.QueryResult>
      ).call(client, 'select tenantry.register_contexts($1::text[]) as n', [values]);
      return (res.rows[0] as { n: number | null } | undefined)?.n ?? null;
    } catch (error) {
      // an error without a SQLSTATE is the connection's: not given back to the pool
      if (sqlStateOf(error) === undefined) broken = error as Error;
      throw error;
    } finally {
      client.release(broken);
      // a broken client is being ended: it keeps the listener for whatever it still emits
      if (broken === undefined) client.removeListener('error', onError);
    }
  };
}
