import { sqlStateOf } from '../errors/sqlstate.js';
import type { PrefixForm } from './context-prefix.js';

/**
 * prepareStatements: at most this many of the app's statement texts are named per connection
 * (the first ones seen; later texts stay unnamed), each at most MAX_TEXT long and all together
 * at most MAX_BYTES. A bound on the server's memory per session: each named statement keeps its
 * parsed and planned form for the session's life, and that grows with its text (a try-out
 * measured ~46 MiB for one 16 KiB text of unions over catalog views, pinned by injected SQL).
 * A name given up after DDL (0A000, 26000) still counts: the server may still hold it.
 */
const MAX_NAMED = 256;
const MAX_TEXT = 16_384;
const MAX_BYTES = 131_072;

/**
 * The names one connection gives the app's unnamed parameterised statements (prepareStatements),
 * so each text is parsed and planned once per connection: `tenantry_s<n>`, by text.
 */
export class StatementNames {
  readonly #names = new Map<string, string>();
  #count = 0;
  #bytes = 0;

  /** `form`: whether statements are named now (the pool switches it on when its self-test answers). */
  constructor(private readonly form: PrefixForm | undefined) {}

  /** The name for a statement, or undefined when it stays unnamed (off, not yet safe, no parameters, long text, the cap). */
  nameOf(text: unknown, values: unknown): string | undefined {
    if (!this.form?.named || typeof text !== 'string' || !Array.isArray(values) || values.length === 0)
      return undefined;
    let name = this.#names.get(text);
    if (name === undefined) {
      if (this.#count >= MAX_NAMED || text.length > MAX_TEXT || this.#bytes + text.length > MAX_BYTES) return undefined;
      this.#bytes += text.length;
      name = `tenantry_s${++this.#count}`;
      this.#names.set(text, name);
    }
    return name;
  }

  /** The server can no longer run `name` as parsed: the text gets a fresh name next time. */
  forget(text: string, name: string): void {
    if (this.#names.get(text) === name) this.#names.delete(text);
  }
}

/**
 * A named statement the server may no longer run as parsed: 0A000 raised by the plan cache (its
 * result columns changed after DDL; the code alone is any "feature not supported"), 26000 (gone).
 * Not 42P05 (the name taken on the server while the client thought it free): the client tracks
 * what it parsed, so a name it did not parse was prepared by someone else in this server session
 * (a session pooler that lends sessions without a reset): the session quarantine refuses it.
 */
export function staleNamedStatement(error: unknown): boolean {
  const state = sqlStateOf(error);
  if (state === '26000') return true;
  return (
    state === '0A000' &&
    ((error as { routine?: unknown }).routine === 'RevalidateCachedQuery' ||
      /cached plan must not change result type/.test(String((error as { message?: unknown }).message)))
  );
}
