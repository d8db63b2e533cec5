import { loadModule, parseSync } from 'libpg-query';

/**
 * The statements of a SQL script, one per element, cut where PostgreSQL's own parser
 * (libpg-query) says each begins and ends. Citus forwards the text of some commands to its
 * workers as it received it (`DROP POLICY` on a Citus table sends the query string): sent as one
 * multi-statement script, every statement of it would go along ("cannot insert multiple commands
 * into a prepared statement"). Hand-cutting at semicolons would break on dollar-quoted bodies.
 */
export async function splitStatements(sql: string): Promise<string[]> {
  await loadModule();
  const bytes = Buffer.from(sql, 'utf8');
  const { stmts } = parseSync(sql) as { stmts?: { stmt_location?: number; stmt_len?: number }[] };
  const out: string[] = [];
  for (const s of stmts ?? []) {
    // offsets are in bytes; a length of 0 means "to the end"
    const start = s.stmt_location ?? 0;
    const end = s.stmt_len ? start + s.stmt_len : bytes.length;
    const text = bytes.subarray(start, end).toString('utf8').trim();
    if (text !== '') out.push(text);
  }
  return out;
}
