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
// other sessions (pg_notify, signals) or the server (sleep ties up a connection); functions that
// run SQL text of their own, out of this check's sight (query_to_xml and the rest of the *_to_xml*
// family); and the reading of settings, where the session's signed tenant context lives (a value
// copied out of one command could be replayed into another tenant's)
const REFUSED_FUNCTION =
  /^(set_config|current_setting|pg_show_all_settings|pg_notify|pg_advisory_\w*|pg_try_advisory_\w*|pg_sleep\w*|pg_cancel_backend|pg_terminate_backend|dblink\w*|lo_\w+|\w*_to_xml\w*|\w+_to_xmlschema)$/;

// relations that show the session's settings (the signed context among them)
const REFUSED_RELATION = /^(pg_settings|pg_file_settings)$/;

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
    const relation = refusedRelation(stmt);
    if (relation) throw new SupportStatementRefusedError(`tenantry sql does not read ${relation}`);
  }
}

function refusedFunction(stmt: unknown): string | undefined {
  let refused: string | undefined;
  walkAst(stmt, (node) => {
    const name = node.FuncCall ? functionName(node.FuncCall) : undefined;
    if (name && REFUSED_FUNCTION.test(name.toLowerCase())) refused ??= name;
  });
  return refused;
}

function refusedRelation(stmt: unknown): string | undefined {
  let refused: string | undefined;
  walkAst(stmt, (node) => {
    const relname = (node.RangeVar as { relname?: unknown } | undefined)?.relname;
    if (typeof relname === 'string' && REFUSED_RELATION.test(relname.toLowerCase())) refused ??= relname;
  });
  return refused;
}
