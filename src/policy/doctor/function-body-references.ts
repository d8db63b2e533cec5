import { parsePlPgSQLSync, parseSync } from 'libpg-query';
import { walkAst, type AstNode } from '../../guard/sql-ast.js';

/** A name as written in a function body: `schema.name` or just `name` (resolved through the search path). */
export interface NameReference {
  schema: string | null;
  name: string;
}

/** What a function body names, read with PostgreSQL's own parser. */
export interface BodyReferences {
  /** Tables, views and other relations the body's SQL names (CTE names left out). */
  relations: NameReference[];
  /** Functions the body calls (their bodies are read in turn). */
  calls: NameReference[];
  /** The body runs SQL built at run time (`EXECUTE`): its tables can only be guessed from the text. */
  dynamic: boolean;
  /** False when (part of) the body could not be parsed: its tables can only be guessed from the text. */
  parsed: boolean;
}

/** The pieces of a function {@link bodyReferences} needs, from pg_proc. */
export interface FunctionSource {
  language: string;
  /** `prosrc`: the body as written (empty for a `BEGIN ATOMIC` body, whose references pg_depend records). */
  source: string;
  /** `quote_ident(proname)`: plpgsql lets the body qualify parameters with the function's name. */
  nameSql: string;
  /** `pg_get_function_arguments()`. */
  arguments: string;
  /** `pg_get_function_result()`. */
  result: string;
}

const NONE: BodyReferences = { relations: [], calls: [], dynamic: false, parsed: true };
const BODY_TAG = '$tenantry_doctor_body$';

/**
 * The relations and functions a LANGUAGE sql or plpgsql body names, read with libpg-query
 * (`parse`, and `parsePlPgSQL` for plpgsql; {@link loadSqlParser} must have run). Other languages
 * come back unparsed. Written by hand: the parser gives trees, no library lists what a body reads.
 */
export function bodyReferences(fn: FunctionSource): BodyReferences {
  if (fn.source.trim() === '') return NONE;
  if (fn.language === 'sql') return statementReferences(fn.source) ?? { ...NONE, parsed: false };
  if (fn.language !== 'plpgsql' || fn.source.includes(BODY_TAG)) return { ...NONE, parsed: false };
  let tree: AstNode;
  try {
    tree = parsePlPgSQLSync(
      `CREATE FUNCTION pg_temp.${fn.nameSql}(${fn.arguments}) RETURNS ${fn.result} LANGUAGE plpgsql AS ${BODY_TAG}${fn.source}${BODY_TAG}`,
    ) as AstNode;
  } catch {
    return { ...NONE, parsed: false };
  }
  const out: BodyReferences = { relations: [], calls: [], dynamic: false, parsed: true };
  walkAst(tree, (node) => {
    if (node.PLpgSQL_stmt_dynexecute || node.PLpgSQL_stmt_dynfors || node.dynquery) out.dynamic = true;
    const expr = node.PLpgSQL_expr as AstNode | undefined;
    if (typeof expr?.query !== 'string') return;
    const refs = expressionReferences(expr.query, expr.parseMode as number | undefined);
    if (!refs) out.parsed = false;
    else {
      out.relations.push(...refs.relations);
      out.calls.push(...refs.calls);
    }
  });
  return out;
}

/** One PL/pgSQL expression or statement: a full statement (parse mode 0), else an expression or an assignment. */
function expressionReferences(query: string, parseMode: number | undefined): BodyReferences | undefined {
  if (!parseMode) return statementReferences(query);
  // assignments arrive as `target := expression` (PostgreSQL 14+)
  const assignment = /^\s*(?:"[^"]+"|[\w$]+)(?:\s*\.\s*(?:"[^"]+"|[\w$]+))*(?:\s*\[[^\]]*\])*\s*:?=(?!=)/.exec(query);
  const expression = assignment ? query.slice(assignment[0].length) : query;
  return statementReferences(`SELECT ${expression}`) ?? statementReferences(query);
}

function statementReferences(sql: string): BodyReferences | undefined {
  let tree: AstNode;
  try {
    tree = parseSync(sql) as AstNode;
  } catch {
    return undefined;
  }
  const relations: NameReference[] = [];
  const calls: NameReference[] = [];
  const ctes = new Set<string>();
  walkAst(tree, (node) => {
    if (typeof node.ctename === 'string') ctes.add(node.ctename);
    // RangeVar, wrapped or (InsertStmt.relation…) bare
    if (typeof node.relname === 'string') relations.push({ schema: node.schemaname ?? null, name: node.relname });
    const call = node.FuncCall as AstNode | undefined;
    if (call) {
      const parts = ((call.funcname ?? []) as AstNode[]).map((p) => p.String?.sval as string | undefined);
      const name = parts.at(-1);
      if (name !== undefined && parts.length <= 2) calls.push({ schema: parts.length === 2 ? parts[0]! : null, name });
    }
  });
  return {
    relations: relations.filter((r) => r.schema !== null || !ctes.has(r.name)),
    calls: calls.filter((c) => c.schema !== 'pg_catalog'),
    dynamic: false,
    parsed: true,
  };
}
