import { parseSync } from 'libpg-query';
import {
  columnRefNames,
  constantText,
  equalityPairs,
  functionName,
  stringValue,
  unwrapCast,
  type AstNode,
} from '../../guard/sql-ast.js';

/** What {@link tenantBinding} found in one policy expression. */
export interface TenantBinding {
  /** False when PostgreSQL's parser could not read the expression (then nothing is claimed). */
  parsed: boolean;
  /**
   * True when every way the expression can be true requires the tenant column to equal the
   * current tenant: every OR arm binds it, an AND binds it when one of its operands does.
   */
  bound: boolean;
}

const TENANT_FUNCTIONS = new Set(['current_tenant_id', 'home_tenant_id']);

/**
 * Analyses a policy expression (as `pg_get_expr` prints it) with PostgreSQL's own parser
 * (libpg-query; {@link loadSqlParser} must have run): is `column` bound to the current tenant on
 * every branch? `tenant_id = (SELECT tenantry.current_tenant_id())` is; `… OR is_public`,
 * `tenant_id IS NOT NULL`, `tenant_id = tenant_id` and `NOT (tenant_id <> …)` are not (a NOT is
 * never trusted). Written by hand because no library judges policy semantics: this walks the
 * parse tree, it does not match text.
 */
export function tenantBinding(expr: string, column: string): TenantBinding {
  let root: AstNode | undefined;
  try {
    const parsed = parseSync(`SELECT (${expr})`) as AstNode;
    root = parsed.stmts?.[0]?.stmt?.SelectStmt?.targetList?.[0]?.ResTarget?.val;
  } catch {
    return { parsed: false, bound: false };
  }
  if (!root) return { parsed: false, bound: false };
  return { parsed: true, bound: binds(root, column.toLowerCase()) };
}

function binds(node: AstNode, column: string): boolean {
  const b = node.BoolExpr;
  if (b?.boolop === 'AND_EXPR') return (b.args as AstNode[]).some((a) => binds(a, column));
  if (b?.boolop === 'OR_EXPR') return (b.args as AstNode[]).every((a) => binds(a, column));
  if (b) return false; // NOT
  const sub = node.SubLink;
  if (sub?.subLinkType === 'ANY_SUBLINK' && isColumn(sub.testexpr, column)) {
    // tenant_id IN (SELECT tenantry.current_tenant_id())
    const op = stringValue((sub.operName as AstNode[] | undefined)?.at(-1));
    return (op === undefined || op === '=') && singleCurrentTenantSelect(sub.subselect);
  }
  return equalityPairs(node).some(
    ([l, r]) => (isColumn(l, column) && isCurrentTenant(r)) || (isColumn(r, column) && isCurrentTenant(l)),
  );
}

function isColumn(node: AstNode | undefined, column: string): boolean {
  const names = columnRefNames(node);
  return names !== undefined && names.at(-1)?.toLowerCase() === column;
}

/**
 * The current tenant: `tenantry.current_tenant_id()` or `tenantry.home_tenant_id()` (pinned
 * tables), `current_setting('tenantry.…')` (unsigned mode; signed mode reports it separately),
 * or any of these inside a scalar sub-select without FROM (the InitPlan form); casts allowed.
 */
function isCurrentTenant(node: AstNode | undefined): boolean {
  const n = unwrapCast(node);
  if (!n) return false;
  if (n.FuncCall) {
    const parts = ((n.FuncCall.funcname ?? []) as AstNode[]).map((p) => stringValue(p)?.toLowerCase());
    const name = functionName(n.FuncCall);
    if (TENANT_FUNCTIONS.has(name ?? '')) return parts.length === 2 && parts[0] === 'tenantry';
    if (name === 'current_setting' && (parts.length === 1 || parts[0] === 'pg_catalog')) {
      return constantText((n.FuncCall.args as AstNode[] | undefined)?.[0])?.startsWith('tenantry.') === true;
    }
    return false;
  }
  const sub = n.SubLink;
  return sub?.subLinkType === 'EXPR_SUBLINK' && singleCurrentTenantSelect(sub.subselect);
}

function singleCurrentTenantSelect(select: AstNode | undefined): boolean {
  const s = select?.SelectStmt;
  const targets = s?.targetList as AstNode[] | undefined;
  return !!s && !s.fromClause && !s.whereClause && targets?.length === 1 && isCurrentTenant(targets[0]!.ResTarget?.val);
}
