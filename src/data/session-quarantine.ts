import { TenantryError } from '../errors/tenantry-error.js';
import { headAt, statementStarts, withoutComments } from './statement-text.js';

/**
 * Statements that could replace a named statement of the session: PREPARE under its name (after
 * DEALLOCATE), directly or from a DO block's EXECUTE. The next Bind to the name runs their text
 * with the caller's values, under the context of whoever sends it next on that connection: a
 * named context prefix replaced so that it sets the attacker's own (valid) value for the next
 * tenant's statements, or an app's named statement replaced by one that copies the next tenant's
 * rows into a session setting the attacker reads later. They run (DO blocks have honest uses),
 * but the session is quarantined: no statement of another tenant on it, and the pool destroys it
 * at release instead of lending it again (PREPARE TRANSACTION is caught with them).
 */
const REPLACES_NAMED = new Set(['prepare', 'deallocate', 'do']);
/**
 * Statements that leave something on the session beyond their transaction (issue 15's attacker
 * try-outs: tenant A's `SET extra_float_digits = -15` rounded the next tenant's floats on the
 * same pooled session; a schema-tier tenant's session `search_path` sent a shared-tier tenant's
 * statements to its schema): RESET, DISCARD, LISTEN, and SET except `SET LOCAL`, `SET
 * TRANSACTION` and `SET CONSTRAINTS` (transaction-scoped). The same quarantine as above.
 */
const CHANGES_SESSION = new Set(['reset', 'discard', 'listen']);
// sticky, read from a statement's start in the whole text: a window cut after the start missed a
// name pushed past it by blanks (`SET LOCAL` + 100 spaces + `enable_indexscan`: seventh try-out)
const TRANSACTION_SCOPED_SET = /set\s+(?:local|transaction|constraints)\b/iy;
/**
 * A planner setting, even transaction-locally (`SET LOCAL`, `set_config(…, true)`), leaves the
 * plans made under it on the session: a named statement's generic plan, and the plans of
 * functions (the signed check's lookup, kept for the session), made once and kept. Try-out of
 * core 009: tenant A's `SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off`
 * and one statement made the next tenants' statements on that session 50× slower. Quarantined:
 * the session is not lent again. `work_mem` is left out on purpose: it also weighs in plans, but
 * apps set it per transaction for honest reasons, and each time would cost a connection. With
 * them: `transform_null_equals` (it changes how a statement parsed under it reads `= NULL`),
 * `plpgsql.*` (functions compiled under it stay compiled), and `seed` (setting it seeds
 * `random()` for the rest of the session, not the transaction: seventh try-out).
 */
const PLANNER_SETTING =
  /^"?(?:enable_\w+|\w*_cost|plan_cache_mode|jit\w*|geqo\w*|\w+_collapse_limit|constraint_exclusion|cursor_tuple_fraction|effective_cache_size|default_statistics_target|\w*parallel\w*|debug_\w+|hash_mem_multiplier|recursive_worktable_factor|transform_null_equals|plpgsql\.\w+|seed)"?$/i;
/** `SET LOCAL <name>` (also `SET LOCAL "<name>"`): the name. */
const SET_LOCAL_NAME = /set\s+local\s+("?[\w.]+"?)/iy;
/**
 * Words that, anywhere in a statement, may leave something on the session, matched as words
 * (an identifier that merely contains one, `asset_configs`, does not count):
 * - `set_config` (any call but the plainly transaction-local form below), and `pg_settings`,
 *   whose UPDATE rule calls it;
 * - functions that run SQL text given as a value, which the text of the statement does not show
 *   (`query_to_xml` and kin, `ts_stat`, `ts_rewrite`);
 * - `setseed` (the next borrower's `random()` would be A's sequence), the session-level advisory
 *   locks (held for the next borrower), a cursor `WITH HOLD`;
 * - a Unicode-escaped identifier (`U&"…"`), which can spell any of them.
 * Text is matched, not parsed: a mention in a string or a comment quarantines too (the cost is a
 * new connection). Best effort: a function of the app's that does any of this is not seen.
 */
const LEAVES_ON_SESSION =
  /\b(?:pg_settings|query_to_xml\w*|ts_stat|ts_rewrite|setseed|pg_(?:try_)?advisory_lock(?:_shared)?|with\s+hold)\b|\bu&"/i;
const SET_CONFIG_CALL = /\bset_config\b/gi;
/** `set_config('<name>', <$n or a literal without quotes inside>, true)`: nothing else in the parentheses; the name captured. */
const LOCAL_SET_CONFIG = /^set_config\s*\(\s*'([^']*)'\s*,\s*(?:\$\d+|'[^']*')\s*,\s*true\s*\)/i;
/** Statements refused outright through a TenantPool: ALTER ROLE / ALTER USER change the app role's defaults (or password) for every tenant's sessions to come. */
const ALTERS_ROLE = /alter\s+(?:role|user)\b/iy;
/** A cheap first look, so that the scanner runs only on a text that mentions one of the words. */
const MENTIONS_SESSION_CHANGE =
  /prepare|deallocate|\bdo\b|\bset\b|reset|discard|listen|set_config|pg_settings|query_to|ts_stat|ts_rewrite|setseed|advisory_lock|hold|u&"/i;
/** Texts found harmless, per session (an app sends the same few again and again); cleared when full. */
const HARMLESS_KEPT = 256;

/** Settings PostgreSQL reports to the client (GUC_REPORT) that change how text and values are read. */
const SESSION_REPORTED = new Set([
  'client_encoding',
  'DateStyle',
  'IntervalStyle',
  'TimeZone',
  'standard_conforming_strings',
]);

/**
 * What one session of a TenantClient may have been left with by a tenant's SQL, and the refusals
 * that follow: a session that may have had a named statement replaced serves no other tenant and
 * is not lent again; nor is one whose reported settings differ from their login values.
 */
export class SessionQuarantine {
  /** The tenant ('' for none) whose statement may have replaced a named statement of this session. */
  #for: string | undefined;
  /** standard_conforming_strings is off on this session. */
  #nonStandardStrings = false;
  /** Reported settings at login, and those whose current value differs from it. */
  readonly #login = new Map<string, string>();
  readonly #changed = new Set<string>();
  /** Statement texts (extended protocol) found to change nothing beyond their transaction. */
  readonly #harmless = new Set<string>();
  /** The server session held a prepared statement this client did not prepare (42P05). */
  #foreign = false;
  /** The tenant ('' for none) of the last statement sent: a reported setting it changed quarantines for it. */
  #lastTenant: string | undefined;
  /** The tenant whose statement changed the reported settings that differ now. */
  #changedBy = '';

  /**
   * The server refused a Parse with 42P05: a statement of that name already exists in the
   * session though this client never prepared it, so someone else's SQL ran in this server
   * session before this client (a session pooler lending sessions without a reset): what the
   * name runs is not known. The session serves no more statements and is not lent again.
   */
  foreignStatement(): void {
    this.#foreign = true;
  }

  /** A ParameterStatus message of the session: the first report of a setting is its login value. */
  reported(name: string | undefined, value: string | undefined): void {
    if (name === undefined || !SESSION_REPORTED.has(name)) return;
    if (name === 'standard_conforming_strings') this.#nonStandardStrings = value !== 'on';
    const login = this.#login.get(name);
    if (login === undefined) this.#login.set(name, value ?? '');
    else if (login !== value) {
      // changed by the statement just sent: while it differs, the session serves no other tenant
      // (a SET LOCAL's change is reported too, and again when its transaction ends)
      if (this.#changed.size === 0) this.#changedBy = this.#lastTenant ?? '';
      this.#changed.add(name);
    } else this.#changed.delete(name);
  }

  /**
   * The refusal of a statement before it is sent: one of another tenant (or of none) on a
   * quarantined session, or multi-statement text (`simple`) while standard_conforming_strings is
   * off (backslashes then escape quotes in every string: the lexer reads text as PostgreSQL does
   * only with it on).
   */
  refusal(text: unknown, tenantId: string | undefined, simple: boolean): Error | undefined {
    if (this.#foreign)
      return new TenantryError(
        'UNSUPPORTED',
        "This connection's server session holds a prepared statement this client did not prepare (42P05; a pooler lending sessions without a reset?): it serves no more statements; release it and check out another",
        { status: 500 },
      );
    if (typeof text === 'string' && !this.#harmless.has(text) && altersRole(text))
      return new TenantryError(
        'UNSUPPORTED',
        "ALTER ROLE and ALTER USER are refused through a TenantPool: they would change the app role's defaults or password for every tenant's sessions to come (run them as the owner or a superuser)",
        { status: 500 },
      );
    const otherTenant =
      (this.#for !== undefined && this.#for !== (tenantId ?? '')) ||
      (this.#changed.size > 0 && this.#changedBy !== (tenantId ?? ''));
    if (!otherTenant && !(simple && this.#nonStandardStrings)) return undefined;
    if (typeof text === 'string' && text.trim() === '') return undefined; // runs nothing
    if (otherTenant)
      return new TenantryError(
        'UNSUPPORTED',
        "This connection ran a statement that could leave something on its session (PREPARE, DEALLOCATE, DO, a session-level SET, RESET, DISCARD, LISTEN, set_config, pg_settings, setseed, a session advisory lock, a cursor WITH HOLD, SQL text run by a function, or a multi-statement text) for another tenant (or none), or a reported setting changed: it serves no other tenant's statements; release it and check out another",
        { status: 500 },
      );
    return new TenantryError(
      'UNSUPPORTED',
      'Multi-statement text is refused while standard_conforming_strings is off on this connection',
      { status: 500 },
    );
  }

  /**
   * Marks the session when a statement that could replace a named statement or leave a setting
   * on the session is about to be sent (it may run even if it then fails). Text sent as a simple
   * Query (several statements in one string) is marked whatever it holds: a lexer of our own could
   * misread a text that hides a PREPARE (an extended-protocol statement is one statement,
   * PostgreSQL refuses a second one, so its first word is what runs).
   */
  sending(text: unknown, tenantId: string | undefined, simple: boolean): void {
    this.#lastTenant = tenantId ?? '';
    if (this.#for !== undefined || typeof text !== 'string') return;
    if (simple) {
      if (text.trim() !== '') this.#for = tenantId ?? '';
      return;
    }
    if (this.#harmless.has(text)) return;
    if (MENTIONS_SESSION_CHANGE.test(text) && changesSession(text)) {
      this.#for = tenantId ?? '';
      return;
    }
    if (this.#harmless.size >= HARMLESS_KEPT) this.#harmless.clear();
    this.#harmless.add(text);
  }

  /** True when the session must not be lent again: marked, or a reported setting changed. */
  get active(): boolean {
    return this.#for !== undefined || this.#changed.size > 0 || this.#foreign;
  }
}

/**
 * True when one statement's text (extended protocol) could replace a named statement or leave
 * something on the session: read as sent, and again without its comments (a block or line
 * comment between the words of `SET LOCAL enable_indexscan`, `WITH HOLD` or `ALTER ROLE` hid them
 * from the patterns: found by the sixth try-out); either reading quarantines.
 */
function changesSession(text: string): boolean {
  return inEitherReading(text, readsAsSessionChange);
}

/** `reads` of the text as sent, or (only when that is false) of the text with each comment as one space. */
function inEitherReading(text: string, reads: (text: string) => boolean): boolean {
  if (reads(text)) return true;
  const bare = withoutComments(text);
  return bare !== text && reads(bare);
}

function readsAsSessionChange(text: string): boolean {
  for (const start of statementStarts(text)) {
    const head = headAt(text, start);
    if (REPLACES_NAMED.has(head) || CHANGES_SESSION.has(head)) return true;
    if (head === 'set') {
      if (!readsAt(TRANSACTION_SCOPED_SET, text, start)) return true;
      SET_LOCAL_NAME.lastIndex = start;
      const local = SET_LOCAL_NAME.exec(text);
      if (local !== null && PLANNER_SETTING.test(local[1]!)) return true;
    }
  }
  if (LEAVES_ON_SESSION.test(text)) return true;
  for (const m of text.matchAll(SET_CONFIG_CALL)) {
    const local = LOCAL_SET_CONFIG.exec(text.slice(m.index));
    if (local === null || PLANNER_SETTING.test(local[1]!)) return true;
  }
  return false;
}

/** True when some statement of `text` is ALTER ROLE or ALTER USER: read as sent, or without its comments (see changesSession). */
function altersRole(text: string): boolean {
  if (!/alter/i.test(text)) return false;
  return inEitherReading(text, (t) => statementStarts(t).some((start) => readsAt(ALTERS_ROLE, t, start)));
}

/** True when the sticky `pattern` matches `text` at `at`. */
function readsAt(pattern: RegExp, text: string, at: number): boolean {
  pattern.lastIndex = at;
  return pattern.test(text);
}
