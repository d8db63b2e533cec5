// Small readers over libpg-query's JSON AST. Nodes are `{ NodeType: { ...fields } }` objects;
// some fields (InsertStmt.relation, MergeStmt.relation…) hold the struct without the wrapper.

/** A node or struct of the parse tree; fields vary by node type. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- libpg-query's JSON AST: fields vary by node type
export type AstNode = Record<string, any>;

/** Calls `visit` on every node and struct of a parse tree, depth first, parents before children. */
export function walkAst(node: unknown, visit: (node: AstNode) => void): void {
  if (Array.isArray(node)) {
    for (const item of node) walkAst(item, visit);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  visit(node as AstNode);
  for (const value of Object.values(node)) walkAst(value, visit);
}

/** The `sval` of a String node, or undefined. */
export function stringValue(node: AstNode | undefined): string | undefined {
  return node?.String?.sval;
}

/** The name parts of a ColumnRef (`n.tenant_id` → ['n', 'tenant_id']); undefined for `*` or non-names. */
export function columnRefNames(node: AstNode | undefined): string[] | undefined {
  const fields = unwrapCast(node)?.ColumnRef?.fields as AstNode[] | undefined;
  if (!fields) return undefined;
  const names = fields.map(stringValue);
  return names.every((n): n is string => n !== undefined) ? names : undefined;
}

/** Strips `::type` casts and `COLLATE` clauses. */
export function unwrapCast(node: AstNode | undefined): AstNode | undefined {
  let n = node;
  while (n?.TypeCast || n?.CollateClause) n = (n.TypeCast ?? n.CollateClause).arg;
  return n;
}

/**
 * The equalities one conjunct implies, pairwise: `a = b` → [[a, b]]; a row comparison
 * `(a, b) = (x, y)` (or IS NOT DISTINCT FROM, or `ROW(…)`) → [[a, x], [b, y]]; `(a, b) IN ((x, y),
 * (x, z))` → [[a, x]]: a position holds an equality only when every element of the list has the
 * same expression there (an IN over rows is an OR of row equalities). Empty when it implies none.
 */
export function equalityPairs(node: AstNode): Array<[AstNode, AstNode]> {
  const e = node.A_Expr;
  if (!e) return [];
  const op = stringValue((e.name as AstNode[] | undefined)?.at(-1));
  const left = rowItems(e.lexpr);
  if ((e.kind === 'AEXPR_OP' && op === '=') || e.kind === 'AEXPR_NOT_DISTINCT') {
    const right = rowItems(e.rexpr);
    if (left && right) return left.length === right.length ? left.map((l, i) => [l, right[i]!]) : [];
    return left || right ? [] : [[e.lexpr, e.rexpr]];
  }
  const items = e.rexpr?.List?.items as AstNode[] | undefined;
  if (e.kind !== 'AEXPR_IN' || op !== '=' || !items?.length) return [];
  if (!left) return items.length === 1 && !rowItems(items[0]) ? [[e.lexpr, items[0]!]] : [];
  const rows = items.map(rowItems);
  if (rows.some((r) => r?.length !== left.length)) return [];
  const pairs: Array<[AstNode, AstNode]> = [];
  left.forEach((l, i) => {
    const first = rows[0]![i]!;
    if (rows.every((r) => sameExpression(r![i]!, first))) pairs.push([l, first]);
  });
  return pairs;
}

/** The fields of a row constructor (`(a, b)`, `ROW(a, b)`), else undefined. */
function rowItems(node: AstNode | undefined): AstNode[] | undefined {
  return node?.RowExpr?.args as AstNode[] | undefined;
}

/** Structural equality of two expressions, source positions ignored. */
function sameExpression(a: AstNode, b: AstNode): boolean {
  const text = (n: AstNode) => JSON.stringify(n, (key, value) => (key === 'location' ? undefined : value));
  return text(a) === text(b);
}

/** Top-level conjuncts of a boolean expression: `a AND (b AND c)` → [a, b, c]. An OR is one conjunct. */
export function conjuncts(node: AstNode | undefined): AstNode[] {
  if (!node) return [];
  const b = node.BoolExpr;
  if (b?.boolop === 'AND_EXPR') return (b.args as AstNode[]).flatMap(conjuncts);
  return [node];
}

/** Last part of a function name, lower case (`pg_catalog.set_config` → 'set_config'). */
export function functionName(call: AstNode): string | undefined {
  return stringValue((call.funcname as AstNode[] | undefined)?.at(-1))?.toLowerCase();
}

const TENANT_FUNCTIONS = new Set(['current_tenant_id', 'home_tenant_id']);

/**
 * A value that names one tenant: a parameter, a literal (not NULL), `current_tenant_id()`, or
 * `(select current_tenant_id())`; casts allowed.
 */
export function isTenantValue(node: AstNode | undefined): boolean {
  const n = unwrapCast(node);
  if (!n) return false;
  if (n.ParamRef) return true;
  if (n.A_Const) return !n.A_Const.isnull;
  if (n.FuncCall) {
    // current_tenant_id() or tenantry.current_tenant_id(), not some_schema.current_tenant_id()
    const parts = ((n.FuncCall.funcname ?? []) as AstNode[]).map((p) => stringValue(p)?.toLowerCase());
    return (
      TENANT_FUNCTIONS.has(parts.at(-1) ?? '') &&
      (parts.length === 1 || (parts.length === 2 && parts[0] === 'tenantry'))
    );
  }
  const sub = n.SubLink;
  if (sub?.subLinkType === 'EXPR_SUBLINK') {
    const s = sub.subselect?.SelectStmt;
    const targets = s?.targetList as AstNode[] | undefined;
    return !!s && !s.fromClause && !s.whereClause && targets?.length === 1 && isTenantValue(targets[0]!.ResTarget?.val);
  }
  return false;
}

/** The lower-cased constant text of a node (`'tenantry.context'`, `'x'::text`), or undefined. */
export function constantText(node: AstNode | undefined): string | undefined {
  const c = unwrapCast(node)?.A_Const;
  return typeof c?.sval?.sval === 'string' ? c.sval.sval.toLowerCase() : undefined;
}
