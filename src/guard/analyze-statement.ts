import { createHash } from 'node:crypto';
import { fingerprintSync, parseSync } from 'libpg-query';
import { LRUCache } from 'lru-cache';
import { assertSqlParserLoaded } from './sql-parser.js';
import {
  conjuncts,
  constantText,
  columnRefNames,
  equalityPairs,
  functionName,
  isTenantValue,
  stringValue,
  type AstNode,
} from './sql-ast.js';
import type { TenantTable, TenantTableMap } from './tenant-table-map.js';

// The setting that carries the tenant (defined once, by the install SQL): statements that set
// or reset it are flagged.
export { CONTEXT_SETTING } from '../policy/install-sql.js';
import { CONTEXT_SETTING } from '../policy/install-sql.js';

/** One reference to a tenant table that no tenant predicate scopes. */
export interface UnscopedReference {
  /** Schema-qualified table name (`public.notes`). */
  table: string;
  /** Why it is unscoped, naming the statement kind and where it sits (never values). */
  reason: string;
}

/** What {@link analyzeStatement} found in one statement text (which may hold several statements). */
export interface Analysis {
  /** libpg-query's fingerprint: the same for statements that differ only in constants. */
  fingerprint: string;
  unscoped: UnscopedReference[];
  /** The text sets or resets `tenantry.context` (SET, SET LOCAL, RESET, RESET ALL, DISCARD ALL, set_config). */
  setsContext: boolean;
  /** Set when libpg-query could not parse the text; nothing else is analysed then. */
  parseError?: string;
}

/** Default number of analyses kept per table map. */
export const DEFAULT_CACHE_SIZE = 5_000;

const caches = new WeakMap<TenantTableMap, LRUCache<string, Analysis>>();

/**
 * Parses `sql` with PostgreSQL's own parser and reports every reference to a tenant table that
 * is not scoped by its tenant column, and whether the text touches the tenant setting. Results
 * are cached by text (LRU, {@link DEFAULT_CACHE_SIZE} per map). Needs `await loadSqlParser()`
 * once beforehand.
 *
 * @example
 * await loadSqlParser();
 * analyzeStatement('select * from notes', TenantTableMap.from(['public.notes'])).unscoped;
 * // → [{ table: 'public.notes', reason: 'select has no tenant_id predicate' }]
 */
export function analyzeStatement(sql: string, tables: TenantTableMap): Analysis {
  let cache = caches.get(tables);
  if (!cache) caches.set(tables, (cache = new LRUCache({ max: DEFAULT_CACHE_SIZE })));
  const hit = cache.get(sql);
  if (hit) return hit;
  // shared by every caller of the same text: frozen all the way down
  const fresh = analyzeUncached(sql, tables);
  const analysis = Object.freeze({
    ...fresh,
    unscoped: Object.freeze(fresh.unscoped.map((u) => Object.freeze(u))) as UnscopedReference[],
  });
  cache.set(sql, analysis);
  return analysis;
}

/** {@link analyzeStatement} without the cache (for benchmarks and one-off scans). */
export function analyzeUncached(sql: string, tables: TenantTableMap): Analysis {
  assertSqlParserLoaded();
  let tree: AstNode;
  try {
    tree = parseSync(sql) as AstNode;
  } catch (error) {
    const fingerprint = `unparsed-${createHash('sha256').update(sql).digest('hex').slice(0, 16)}`;
    return { fingerprint, unscoped: [], setsContext: false, parseError: (error as Error).message };
  }
  const out = new Findings();
  const ctx: Ctx = { tables, out, level: undefined, where: 'statement' };
  for (const s of (tree.stmts ?? []) as AstNode[]) visit(s.stmt, ctx);
  return { fingerprint: fingerprintSync(sql), unscoped: out.list(), setsContext: out.setsContext };
}

class Findings {
  setsContext = false;
  /** Every add, duplicates included: tells whether a sub-query added any. */
  count = 0;
  readonly #seen = new Map<string, UnscopedReference>();
  add(table: TenantTable, reason: string): void {
    this.count++;
    const name = `${table.schema}.${table.name}`;
    this.#seen.set(`${name}\0${reason}`, { table: name, reason });
  }
  list(): UnscopedReference[] {
    return [...this.#seen.values()];
  }
}

/** One relation read or written at a query level (a FROM item, a DML target). */
interface Instance {
  /** What column references use to name it: the alias, else the relation name. */
  ref: string;
  schemaname: string | undefined;
  table: TenantTable | undefined;
  scoped: boolean;
  /** A CTE or sub-select whose rows all belong to the scoped tenant (never reported itself). */
  derived?: boolean;
  /** The statement kind that reads or writes it, for the reason text. */
  kind: string;
}

/** One query level: its relations, the CTE names it sees, its enclosing level. */
interface Level {
  instances: Instance[];
  /** CTE name → the tenant column it outputs when every tenant table inside it is scoped. */
  ctes: Map<string, string | undefined>;
  parent: Level | undefined;
}

interface Ctx {
  tables: TenantTableMap;
  out: Findings;
  level: Level | undefined;
  /** 'statement', 'CTE' or 'subquery': where the current level sits, for reasons. */
  where: string;
}

/** A predicate and the relations it may scope (an outer join's ON scopes only its nullable side). */
interface Condition {
  expr: AstNode;
  allowed: Set<Instance> | undefined;
}

interface Edge {
  a: Instance;
  b: Instance;
  allowed: Set<Instance> | undefined;
}

const QUERY_KINDS: Record<string, string> = {
  SelectStmt: 'select',
  InsertStmt: 'insert',
  UpdateStmt: 'update',
  DeleteStmt: 'delete',
  MergeStmt: 'merge',
};

// Walks any part of the tree: query statements open a level, the rest is searched for them and
// for anything that touches the tenant setting.
function visit(node: unknown, ctx: Ctx): void {
  if (Array.isArray(node)) {
    for (const n of node) visit(n, ctx);
    return;
  }
  if (!node || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node as AstNode)) {
    if (key in QUERY_KINDS) {
      if (!analyzed.has(value)) analyzeQuery(key, value as AstNode, ctx);
    } else if (key === 'CopyStmt') analyzeCopy(value as AstNode, ctx);
    else if (key === 'TruncateStmt') {
      for (const rel of (value.relations ?? []) as AstNode[]) {
        const table = ctx.tables.resolve(rel.RangeVar?.schemaname, rel.RangeVar?.relname);
        if (table) ctx.out.add(table, 'truncate skips row level security');
      }
    } else if (key === 'LockStmt') {
      // a table lock is the whole table's, every tenant's rows: ACCESS EXCLUSIVE held in one
      // tenant's transaction makes every co-located tenant's statement wait (LOCK_TIMEOUT)
      for (const rel of (value.relations ?? []) as AstNode[]) {
        const table = ctx.tables.resolve(rel.RangeVar?.schemaname, rel.RangeVar?.relname);
        if (table) ctx.out.add(table, 'lock table locks every tenant sharing the table');
      }
    } else {
      // a few fields hold the struct without its wrapper: ALTER ROLE/DATABASE … SET
      if (key === 'VariableSetStmt' || key === 'setstmt') checkSet(value as AstNode, ctx);
      else if (key === 'DiscardStmt' && value.target === 'DISCARD_ALL') ctx.out.setsContext = true;
      else if (key === 'FuncCall') checkSetConfig(value as AstNode, ctx);
      visit(value, ctx);
    }
  }
}

function checkSet(stmt: AstNode, ctx: Ctx): void {
  if (stmt.kind === 'VAR_RESET_ALL' || String(stmt.name ?? '').toLowerCase() === CONTEXT_SETTING)
    ctx.out.setsContext = true;
}

// set_config with a name that is not a constant could name the setting: flagged too.
function checkSetConfig(call: AstNode, ctx: Ctx): void {
  if (functionName(call) !== 'set_config') return;
  const name = constantText((call.args as AstNode[] | undefined)?.[0]);
  if (name === undefined || name === CONTEXT_SETTING) ctx.out.setsContext = true;
}

function analyzeCopy(stmt: AstNode, ctx: Ctx): void {
  if (stmt.relation) {
    const table = ctx.tables.resolve(stmt.relation.schemaname, stmt.relation.relname);
    if (table) ctx.out.add(table, `copy ${stmt.is_from ? 'into' : 'of'} a whole tenant table`);
  }
  if (stmt.query) visit(stmt.query, { ...ctx, where: 'copy query' });
}

function cteOf(level: Level | undefined, name: string): { column: string | undefined } | undefined {
  for (let l = level; l; l = l.parent) if (l.ctes.has(name)) return { column: l.ctes.get(name) };
  return undefined;
}

// Statements already analysed as a derived relation, so the generic walk skips them.
const analyzed = new WeakSet<object>();

/**
 * Checks one query level and everything below it. For a plain SELECT in which every tenant
 * table is scoped, returns the tenant column it outputs (so a join to it on that column scopes).
 */
function analyzeQuery(type: string, stmt: AstNode, ctx: Ctx): string | undefined {
  analyzed.add(stmt);
  const findingsBefore = ctx.out.count;
  let parent = ctx.level;
  const ctes = (stmt.withClause?.ctes ?? []) as AstNode[];
  if (ctes.length > 0) {
    // CTE bodies see the CTE names (recursive CTEs) but not the main query's relations
    const withLevel: Level = {
      instances: [],
      parent,
      ctes: new Map(ctes.map((c) => [c.CommonTableExpr.ctename as string, undefined])),
    };
    for (const c of ctes) {
      const body = c.CommonTableExpr.ctequery as AstNode;
      const cteCtx = { ...ctx, level: withLevel, where: 'CTE' };
      if (body.SelectStmt)
        withLevel.ctes.set(c.CommonTableExpr.ctename, analyzeQuery('SelectStmt', body.SelectStmt, cteCtx));
      else visit(body, cteCtx);
    }
    parent = withLevel;
  }
  const level: Level = { instances: [], ctes: new Map(), parent };
  const kind = QUERY_KINDS[type]!;
  const conditions: Condition[] = [];
  const edges: Edge[] = [];
  const relation = (rv: AstNode | undefined, k: string): Instance | undefined => {
    if (!rv?.relname) return undefined;
    const cte = rv.schemaname ? undefined : cteOf(parent, rv.relname);
    if (cte) return cte.column ? derived(rv.alias?.aliasname ?? rv.relname, cte.column) : undefined;
    const instance: Instance = {
      ref: rv.alias?.aliasname ?? rv.relname,
      schemaname: rv.schemaname,
      table: ctx.tables.resolve(rv.schemaname, rv.relname),
      scoped: false,
      kind: k,
    };
    level.instances.push(instance);
    return instance;
  };
  const derived = (ref: string, column: string): Instance => {
    const instance: Instance = {
      ref,
      schemaname: undefined,
      table: { schema: '', name: ref, column },
      scoped: true,
      derived: true,
      kind,
    };
    level.instances.push(instance);
    return instance;
  };
  const fromItem = (item: AstNode | undefined): Instance[] => {
    if (!item) return [];
    if (item.RangeVar) return [relation(item.RangeVar, kind)].filter((i): i is Instance => !!i);
    const sub = item.RangeSubselect;
    // a LATERAL sub-select may correlate with this level: checked after it, with the rest
    if (sub && !sub.lateral && sub.alias && sub.subquery?.SelectStmt) {
      const column = analyzeQuery('SelectStmt', sub.subquery.SelectStmt, { ...ctx, level, where: 'subquery' });
      return column ? [derived(sub.alias.aliasname, column)] : [];
    }
    const j = item.JoinExpr;
    if (!j) return [];
    const left = fromItem(j.larg);
    const right = fromItem(j.rarg);
    const allowed = new Set(
      j.jointype === 'JOIN_LEFT'
        ? right
        : j.jointype === 'JOIN_RIGHT'
          ? left
          : j.jointype === 'JOIN_FULL'
            ? []
            : [...left, ...right],
    );
    if (j.quals) conditions.push({ expr: j.quals, allowed });
    const using = new Set(((j.usingClause ?? []) as AstNode[]).map(stringValue));
    for (const a of left) {
      for (const b of right) {
        const column = a.table?.column;
        if (column && column === b.table?.column && (j.isNatural || using.has(column))) edges.push({ a, b, allowed });
      }
    }
    return [...left, ...right];
  };

  switch (type) {
    case 'SelectStmt':
      for (const item of (stmt.fromClause ?? []) as AstNode[]) fromItem(item);
      break;
    case 'UpdateStmt':
      relation(stmt.relation, 'update');
      for (const item of (stmt.fromClause ?? []) as AstNode[]) fromItem(item);
      break;
    case 'DeleteStmt':
      relation(stmt.relation, 'delete');
      for (const item of (stmt.usingClause ?? []) as AstNode[]) fromItem(item);
      break;
    case 'InsertStmt': {
      const target = relation(stmt.relation, 'insert');
      const columns = ((stmt.cols ?? []) as AstNode[]).map((c) => c.ResTarget?.name);
      if (
        target?.table &&
        (columns.includes(target.table.column) ||
          (columns.length === 0 && setsPosition(stmt.selectStmt, target.table.position)))
      )
        target.scoped = true;
      break;
    }
    case 'MergeStmt': {
      const target = relation(stmt.relation, 'merge');
      const source = fromItem(stmt.sourceRelation);
      const clauses = ((stmt.mergeWhenClauses ?? []) as AstNode[]).map((c) => c.MergeWhenClause as AstNode);
      mergeScopes(level, target, source, clauses, stmt.joinCondition, conditions, edges);
      const column = target?.table?.column;
      const inserts = clauses.filter((c) => c.commandType === 'CMD_INSERT');
      if (
        column &&
        inserts.some((c) => !((c.targetList ?? []) as AstNode[]).some((t) => t.ResTarget?.name === column))
      ) {
        ctx.out.add(
          target.table!,
          `merge insert does not set ${column}${ctx.where === 'statement' ? '' : ` (in a ${ctx.where})`}`,
        );
      }
      break;
    }
  }
  if (stmt.whereClause) conditions.push({ expr: stmt.whereClause, allowed: undefined });
  solve(level, conditions, edges);

  const where = ctx.where === 'statement' ? '' : ` (in a ${ctx.where})`;
  for (const i of level.instances) {
    if (!i.table || i.scoped || i.derived) continue;
    const reason =
      i.kind === 'insert' ? `insert does not set ${i.table.column}` : `${i.kind} has no ${i.table.column} predicate`;
    ctx.out.add(i.table, reason + where);
  }

  // Everything below (sub-selects in FROM, WHERE, the target list, INSERT's source, set
  // operations' branches) is a level of its own, checked with this one as its parent.
  const setOperation = type === 'SelectStmt' && stmt.op && stmt.op !== 'SETOP_NONE';
  const childCtx: Ctx = { ...ctx, level, where: setOperation ? ctx.where : 'subquery' };
  for (const [key, value] of Object.entries(stmt)) {
    // set operations hold their branches as bare SelectStmt structs
    if ((key === 'larg' || key === 'rarg') && type === 'SelectStmt')
      analyzeQuery('SelectStmt', value as AstNode, childCtx);
    else if (key !== 'withClause' && key !== 'relation') visit(value, childCtx);
  }
  const plainSelect = type === 'SelectStmt' && !setOperation;
  return plainSelect && ctx.out.count === findingsBefore ? tenantOutput(stmt, level) : undefined;
}

/**
 * Scopes a MERGE's target and source. A row is read or acted on under a known set of conditions:
 * the target's rows by a WHEN MATCHED clause under ON and the clause's own condition, by a WHEN NOT
 * MATCHED BY SOURCE clause under its condition alone (ON did not match them); the source's rows
 * likewise with MATCHED and NOT MATCHED [BY TARGET]. A side is scoped when every case scopes it.
 * The join itself reads the target to decide what is not matched (a NOT MATCHED [BY TARGET]
 * insert), and the source for NOT MATCHED BY SOURCE: ON must scope them then. DO NOTHING acts on nothing.
 */
function mergeScopes(
  level: Level,
  target: Instance | undefined,
  source: Instance[],
  clauses: AstNode[],
  on: AstNode | undefined,
  base: Condition[],
  edges: Edge[],
): void {
  const acting = clauses.filter((c) => c.commandType !== 'CMD_NOTHING');
  const own = (c: AstNode): Condition[] => (c.condition ? [{ expr: c.condition, allowed: undefined }] : []);
  const join: Condition[] = on ? [{ expr: on, allowed: undefined }] : [];
  const kind = (k: string) => acting.filter((c) => c.matchKind === k);
  const matched = kind('MERGE_WHEN_MATCHED').map((c) => [...join, ...own(c)]);
  const bySource = kind('MERGE_WHEN_NOT_MATCHED_BY_SOURCE');
  const byTarget = kind('MERGE_WHEN_NOT_MATCHED_BY_TARGET');
  const targetCases = [...matched, ...bySource.map(own)];
  if (byTarget.length > 0 || targetCases.length === 0) targetCases.push(join);
  const sourceCases = [...matched, ...byTarget.map(own)];
  if (bySource.length > 0 || sourceCases.length === 0) sourceCases.push(join);

  const initial = new Map(level.instances.map((i) => [i, i.scoped]));
  const scopedIn = (cases: Condition[][]): Set<Instance> => {
    let result: Set<Instance> | undefined;
    for (const extra of cases) {
      for (const [i, scoped] of initial) i.scoped = scoped;
      solve(level, [...base, ...extra], [...edges]);
      const now = new Set(level.instances.filter((i) => i.scoped));
      result = result ? new Set([...result].filter((i) => now.has(i))) : now;
    }
    return result ?? new Set();
  };
  const targetScoped = target ? scopedIn(targetCases).has(target) : false;
  const sourceScoped = scopedIn(sourceCases);
  for (const [i, scoped] of initial) i.scoped = scoped;
  if (target) target.scoped ||= targetScoped;
  for (const i of source) i.scoped ||= sourceScoped.has(i);
}

/**
 * Whether the source of an INSERT without a column list gives a value at `position` (the tenant
 * column's place in the table): every VALUES row, or a plain SELECT's target list (`*` not
 * counted), is that long. Unknown position, DEFAULT VALUES or a set operation: no.
 */
function setsPosition(source: AstNode | undefined, position: number | undefined): boolean {
  const select = source?.SelectStmt as AstNode | undefined;
  if (!select || position === undefined || (select.op && select.op !== 'SETOP_NONE')) return false;
  const rows = select.valuesLists as AstNode[] | undefined;
  if (rows) return rows.every((r) => ((r.List?.items ?? []) as AstNode[]).length >= position);
  // `*` may expand to nothing: only the other targets count (an expansion only adds columns)
  const targets = ((select.targetList ?? []) as AstNode[]).filter(
    (t) => !(t.ResTarget?.val?.ColumnRef?.fields as AstNode[] | undefined)?.some((f) => f.A_Star),
  );
  return targets.length >= position;
}

/** The name under which a plain SELECT outputs the tenant column of a scoped tenant relation. */
function tenantOutput(stmt: AstNode, level: Level): string | undefined {
  for (const target of (stmt.targetList ?? []) as AstNode[]) {
    const rt = target.ResTarget as AstNode | undefined;
    const fields = rt?.val?.ColumnRef?.fields as AstNode[] | undefined;
    if (fields?.at(-1)?.A_Star) {
      const qualifier = stringValue(fields.at(-2));
      const source = level.instances.find(
        (i) => i.scoped && i.table && (qualifier === undefined || i.ref === qualifier),
      );
      if (source) return source.table!.column;
      continue;
    }
    if (rt?.val && resolveTenantColumn(rt.val, level).local.some((i) => i.scoped))
      return rt.name ?? columnRefNames(rt.val)!.at(-1);
  }
  return undefined;
}

/** Which tenant-table instances a column reference names, or whether it names a scoped outer one. */
function resolveTenantColumn(node: AstNode, level: Level): { local: Instance[]; outerScoped: boolean } {
  const none = { local: [], outerScoped: false };
  const names = columnRefNames(node);
  if (!names) return none;
  const column = names.at(-1)!;
  const qualifier = names.at(-2);
  const schema = names.at(-3);
  if (qualifier === undefined)
    return { local: level.instances.filter((i) => i.table?.column === column), outerScoped: false };
  for (let l: Level | undefined = level, depth = 0; l; l = l.parent, depth++) {
    const matches = l.instances.filter(
      (i) => i.ref === qualifier && (!schema || (i.schemaname ?? i.table?.schema) === schema),
    );
    if (matches.length === 0) continue;
    const tenant = matches.filter((i) => i.table?.column === column);
    return depth === 0
      ? { local: tenant, outerScoped: false }
      : { local: [], outerScoped: tenant.some((i) => i.scoped) };
  }
  return none;
}

/** The relation of this level and the column a reference names, for any column (tenant or not). */
function resolveColumn(node: AstNode, level: Level): { instance: Instance; column: string } | undefined {
  const names = columnRefNames(node);
  if (!names) return undefined;
  const column = names.at(-1)!;
  const qualifier = names.at(-2);
  const matches = qualifier === undefined ? level.instances : level.instances.filter((i) => i.ref === qualifier);
  return matches.length === 1 ? { instance: matches[0]!, column } : undefined;
}

function solve(level: Level, conditions: Condition[], edges: Edge[]): void {
  const mark = (instances: Instance[], allowed: Set<Instance> | undefined) => {
    for (const i of instances) if (!allowed || allowed.has(i)) i.scoped = true;
  };
  const equalities = conditions.flatMap(({ expr, allowed }) =>
    conjuncts(expr).flatMap((c) => equalityPairs(c).map((operands) => ({ operands, allowed }))),
  );
  // Columns pinned to one value by `col = $n` where it filters (tenants.id = $1): a tenant
  // column equal to one of them is scoped too (members.tenant_id = tenants.id).
  const pinned = new Map<Instance, Set<string>>();
  for (const { operands, allowed } of equalities) {
    for (const [column, value] of [operands, [operands[1], operands[0]]] as const) {
      const ref = isTenantValue(value) ? resolveColumn(column, level) : undefined;
      if (ref && (!allowed || allowed.has(ref.instance)))
        pinned.set(ref.instance, (pinned.get(ref.instance) ?? new Set()).add(ref.column));
    }
  }
  const isPinned = (node: AstNode) => {
    const ref = resolveColumn(node, level);
    return !!ref && !!pinned.get(ref.instance)?.has(ref.column);
  };
  for (const { operands, allowed } of equalities) {
    const [l, r] = operands.map((o) => resolveTenantColumn(o, level)) as [
      ReturnType<typeof resolveTenantColumn>,
      ReturnType<typeof resolveTenantColumn>,
    ];
    if (isTenantValue(operands[1]) || r.outerScoped || isPinned(operands[1])) mark(l.local, allowed);
    if (isTenantValue(operands[0]) || l.outerScoped || isPinned(operands[0])) mark(r.local, allowed);
    for (const a of l.local) for (const b of r.local) if (a !== b) edges.push({ a, b, allowed });
  }
  // a = b where b is scoped scopes a: propagate until nothing changes
  for (let changed = true; changed;) {
    changed = false;
    for (const { a, b, allowed } of edges) {
      for (const [from, to] of [
        [a, b],
        [b, a],
      ] as const) {
        if (from.scoped && !to.scoped && (!allowed || allowed.has(to))) {
          to.scoped = true;
          changed = true;
        }
      }
    }
  }
}
