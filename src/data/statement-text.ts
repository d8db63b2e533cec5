/**
 * Lexical facts about SQL text, for choosing how to send it: not a parser. Knows string
 * literals ('' and E'' escapes), quoted identifiers, dollar quotes, line and nested block
 * comments. A wrong guess makes Tenantry refuse text or PostgreSQL reject it; see tenant-client.ts.
 */

const DOLLAR_TAG = /^\$([A-Za-z_\u0080-\uffff][A-Za-z_0-9\u0080-\uffff]*)?\$/;

/**
 * The first word (lower-case) of each statement in `sql`, in order; empty statements are
 * skipped. `["select"]` for one statement, `["begin", "insert", "commit"]` for a script.
 */
export function statementHeads(sql: string): string[] {
  const heads: string[] = [];
  let inStatement = false;
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
      continue;
    }
    if (c === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') (depth++, (i += 2));
        else if (sql[i] === '*' && sql[i + 1] === '/') (depth--, (i += 2));
        else i++;
      }
      continue;
    }
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === ';') {
      inStatement = false;
      i++;
      continue;
    }
    if (!inStatement) {
      inStatement = true;
      heads.push((/^[A-Za-z_]+/.exec(sql.slice(i, i + 32))?.[0] ?? c).toLowerCase());
    }
    if (c === "'") {
      const escapes = i > 0 && (sql[i - 1] === 'E' || sql[i - 1] === 'e') && !/[A-Za-z0-9_]/.test(sql[i - 2] ?? '');
      i = skipQuoted(sql, i + 1, "'", escapes);
      continue;
    }
    if (c === '"') {
      i = skipQuoted(sql, i + 1, '"', false);
      continue;
    }
    if (c === '$') {
      const tag = DOLLAR_TAG.exec(sql.slice(i, i + 64));
      if (tag && !/[A-Za-z0-9_]/.test(sql[i - 1] ?? '')) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        i = end < 0 ? n : end + tag[0].length;
        continue;
      }
    }
    i++;
  }
  return heads;
}

/** True when `sql` holds more than one statement. */
export function hasMultipleStatements(sql: string): boolean {
  return statementHeads(sql).length > 1;
}

const ENDS_OR_STARTS_TRANSACTION = new Set(['commit', 'rollback', 'end', 'abort', 'prepare', 'begin', 'start']);

/** True when some statement of `sql` starts, ends or prepares a transaction (COMMIT, ROLLBACK, PREPARE TRANSACTION…). */
export function controlsTransaction(sql: string): boolean {
  return statementHeads(sql).some((head) => ENDS_OR_STARTS_TRANSACTION.has(head));
}

function skipQuoted(sql: string, i: number, quote: string, backslashEscapes: boolean): number {
  while (i < sql.length) {
    const c = sql[i]!;
    if (backslashEscapes && c === '\\') i += 2;
    else if (c === quote && sql[i + 1] === quote) i += 2;
    else if (c === quote) return i + 1;
    else i++;
  }
  return i;
}

const ENDS_TRANSACTION =
  /^\s*(?:rollback|abort|commit|end)(?:\s+(?:work|transaction))?(?:\s+and\s+(?:no\s+)?chain)?\s*;?\s*$/i;
const ROLLBACK_TO =
  /^\s*rollback(?:\s+(?:work|transaction))?\s+to\s+(?:savepoint\s+)?[A-Za-z_][A-Za-z0-9_$]*\s*;?\s*$/i;

/** True when `sql` is exactly one ROLLBACK / ABORT / COMMIT / END, or ROLLBACK TO SAVEPOINT. */
export function isLoneTransactionEnd(sql: unknown): boolean {
  return typeof sql === 'string' && (ENDS_TRANSACTION.test(sql) || ROLLBACK_TO.test(sql));
}
