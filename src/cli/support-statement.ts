import { parseSync } from 'libpg-query';
import { TenantryError } from '../errors/tenantry-error.js';
import { functionName, walkAst } from '../guard/sql-ast.js';
import { loadSqlParser } from '../guard/sql-parser.js';

// what support work needs: reading and changing rows. Anything else (DO blocks, transaction
// control, SET/RESET, LISTEN/NOTIFY, DDL, COPY, CALL) is refused before it reaches PostgreSQL:
// a DO block hides its statements from the query guard, and session-level statements outlive
// the command's transaction on a pooled connection
const ALLOWED = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'ExplainStmt']);

// functions with effects outside the tenant's rows: the session (set_config, advisory locks),
// other sessions (pg_notify, signals) or the server (sleep ties up a connection)
const REFUSED_FUNCTION =
  /^(set_config|pg_notify|pg_advisory_\w*|pg_try_advisory_\w*|pg_sleep\w*|pg_cancel_backend|pg_terminate_backend|dblink\w*|lo_\w+)$/;

/** Thrown for a support statement of a kind `tenantry sql` does not run. */
export class SupportStatementRefusedError extends TenantryError {
  constructor(message: string) {
    super('SQL_STATEMENT_REFUSED', message, { status: 400 });
    this.name = 'SupportStatementRefusedError';
  }
}

/**
 * Refuses a support statement that is not a plain SELECT, INSERT, UPDATE, DELETE or EXPLAIN, or
 * that calls a function acting outside the tenant's rows. Parsed with PostgreSQL's own parser.
 */
export async function checkSupportStatement(sql: string): Promise<void> {
  await loadSqlParser();
  let tree: { stmts?: { stmt: Record<string, unknown> }[] };
  try {
    tree = parseSync(sql) as typeof tree;
  } catch {
    // PostgreSQL will say what is wrong with it, as SQL_FAILED
    return;
  }
  for (const { stmt } of tree.stmts ?? []) {
    const kind = Object.keys(stmt)[0] ?? 'unknown';
    if (!ALLOWED.has(kind))
      throw new SupportStatementRefusedError(
        `tenantry sql runs SELECT, INSERT, UPDATE, DELETE and EXPLAIN only (this is ${kind.replace(/Stmt$/, '')})`,
      );
    const refused = refusedFunction(stmt);
    if (refused) throw new SupportStatementRefusedError(`tenantry sql does not call ${refused}()`);
  }
}

function refusedFunction(stmt: unknown): string | undefined {
  let refused: string | undefined;
  walkAst(stmt, (node) => {
    const name = node.FuncCall ? functionName(node.FuncCall) : undefined;
    if (name && REFUSED_FUNCTION.test(name)) refused ??= name;
  });
  return refused;
}
