/**
 * Reading policy expressions as `pg_get_expr` prints them (with `search_path = pg_catalog,
 * pg_temp`, so Tenantry's function appears as `tenantry.current_tenant_id()`). This is text
 * analysis, not a parser: string literals are blanked out first so their content never matches.
 */

/** A call that reads the tenant context, and whether it is evaluated for every row. */
export interface ContextCall {
  /** `current_setting`, `tenantry.current_tenant_id` or `tenantry.home_tenant_id` (pinned tables: no route check). */
  name: string;
  /** True unless the call sits inside a scalar sub-select `( SELECT ...)`, which PostgreSQL runs once as an InitPlan. */
  perRow: boolean;
}

const CONTEXT_CALL = /(?<![\w$."])(?:(?:pg_catalog\.)?(current_setting)|(tenantry\.(?:current|home)_tenant_id))\s*\(/gi;

/** Replaces the content of every '...' literal with spaces (keeping offsets), so only code remains. */
export function blankLiterals(expr: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < expr.length; i++) {
    const ch = expr[i]!;
    if (inString) {
      if (ch === "'" && expr[i + 1] === "'") {
        out += '  ';
        i++;
      } else if (ch === "'") {
        inString = false;
        out += ch;
      } else {
        out += ' ';
      }
    } else {
      if (ch === "'") inString = true;
      out += ch;
    }
  }
  return out;
}

/** Every call in `expr` that reads the tenant context, in order. */
export function contextCalls(expr: string): ContextCall[] {
  const code = blankLiterals(expr);
  const calls: ContextCall[] = [];
  for (const m of code.matchAll(CONTEXT_CALL)) {
    calls.push({ name: m[1] ? 'current_setting' : m[2]!.toLowerCase(), perRow: !insideSubSelect(code, m.index) });
  }
  return calls;
}

/**
 * Rewrites `expr` so that every per-row context call is wrapped in a scalar sub-select
 * (`(SELECT current_setting(...))`); calls already inside a sub-select are left alone.
 */
export function wrapPerRowCalls(expr: string): string {
  const code = blankLiterals(expr);
  const spans: [number, number][] = [];
  for (const m of code.matchAll(CONTEXT_CALL)) {
    if (insideSubSelect(code, m.index)) continue;
    let depth = 0;
    let end = m.index + m[0].length - 1; // the call's opening parenthesis
    for (; end < code.length; end++) {
      if (code[end] === '(') depth++;
      else if (code[end] === ')' && --depth === 0) break;
    }
    spans.push([m.index, end + 1]);
  }
  let out = expr;
  for (const [from, to] of spans.reverse())
    out = `${out.slice(0, from)}(SELECT ${out.slice(from, to)})${out.slice(to)}`;
  return out;
}

/**
 * Rewrites every call of Tenantry's context function `from` in `expr` (outside string literals)
 * into a call of `to`: `tenantry.home_tenant_id()` ⇄ `tenantry.current_tenant_id()`.
 */
export function replaceTenantFunction(
  expr: string,
  from: 'current_tenant_id' | 'home_tenant_id',
  to: 'current_tenant_id' | 'home_tenant_id',
): string {
  const code = blankLiterals(expr);
  const call = new RegExp(`(?<![\\w$."])tenantry\\.${from}(?=\\s*\\()`, 'gi');
  let out = '';
  let last = 0;
  for (const m of code.matchAll(call)) {
    out += `${expr.slice(last, m.index)}tenantry.${to}`;
    last = m.index + m[0].length;
  }
  return out + expr.slice(last);
}

/** True when offset `at` lies inside a parenthesised `SELECT` (a sub-query) of `code`. */
function insideSubSelect(code: string, at: number): boolean {
  const stack: boolean[] = [];
  for (let i = 0; i < at; i++) {
    if (code[i] === '(') stack.push(/^\(\s*SELECT\b/i.test(code.slice(i, i + 16)));
    else if (code[i] === ')') stack.pop();
  }
  return stack.includes(true);
}

/** True when the (quoted) column name appears in `expr` as an identifier. */
export function mentionsColumn(expr: string, columnSql: string): boolean {
  const code = blankLiterals(expr);
  const escaped = columnSql.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![\\w$"])${escaped}(?![\\w$"])`).test(code);
}

/** True for an expression that is the constant `true`. */
export function isTrueLiteral(expr: string): boolean {
  return /^\(*\s*true\s*\)*$/i.test(expr.trim());
}

/** PostgreSQL's boolean reloption syntax (parse_bool): true, yes, on, 1 and their unambiguous prefixes. */
export function parsePgBool(value: string): boolean | undefined {
  const v = value.trim().toLowerCase();
  if (v.length === 0) return undefined;
  if ('true'.startsWith(v) || 'yes'.startsWith(v) || v === 'on' || v === '1') return true;
  if ('false'.startsWith(v) || 'no'.startsWith(v) || v === 'off' || v === 'of' || v === '0') return false;
  return undefined;
}
