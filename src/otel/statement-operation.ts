/** The statement kinds a span or metric may name: a closed list, so no text of a statement leaks. */
const OPERATIONS = new Set([
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'MERGE',
  'WITH',
  'VALUES',
  'TABLE',
  'COPY',
  'CALL',
  'BEGIN',
  'START',
  'COMMIT',
  'END',
  'ROLLBACK',
  'ABORT',
  'SAVEPOINT',
  'RELEASE',
  'PREPARE',
  'EXECUTE',
  'DECLARE',
  'FETCH',
  'CLOSE',
  'LOCK',
  'SET',
  'SHOW',
  'RESET',
  'EXPLAIN',
  'LISTEN',
  'UNLISTEN',
  'NOTIFY',
  'CREATE',
  'ALTER',
  'DROP',
  'TRUNCATE',
  'GRANT',
  'REVOKE',
  'ANALYZE',
  'VACUUM',
  'DO',
]);

// leading blanks, `-- …` lines and `/* … */` comments, then the first word
const FIRST_WORD = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*([A-Za-z]+)/;

/**
 * The statement's kind (`SELECT`, `INSERT`…) from its first keyword, or `OTHER`: what a span
 * is named after (OpenTelemetry's `db.operation.name`) without recording the statement's text.
 */
export function statementOperation(text: string | undefined): string {
  if (text === undefined) return 'OTHER';
  const word = FIRST_WORD.exec(text.length > 512 ? text.slice(0, 512) : text)?.[1]?.toUpperCase();
  return word !== undefined && OPERATIONS.has(word) ? word : 'OTHER';
}
