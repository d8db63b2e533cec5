import { readFile } from 'node:fs/promises';
import { loadModule, parseSync } from 'libpg-query';
import { isGlobalTable } from '../global-tables.js';

/** Options of {@link checkMigrationSql}. */
export interface MigrationCheckOptions {
  /** Names of the tenant column; default `tenant_id`. */
  columns?: string[];
  /** Tables shared by all tenants: `plans` (any schema), `app_private.users`, `audit.*`. */
  globalTables?: string[];
}

/** One defect found in a migration. `line` and `column` are 1-based. */
export interface MigrationFinding {
  code: 'MISSING_TENANT_COLUMN' | 'SQL_PARSE_ERROR';
  /** The table as written (`public.recordings`), for MISSING_TENANT_COLUMN. */
  table?: string;
  message: string;
  line: number;
  column: number;
}

let loading: Promise<void> | undefined;

/** Loads the PostgreSQL parser (WASM) once; {@link checkMigrationSqlSync} needs it loaded. */
export function loadSqlParser(): Promise<void> {
  loading ??= loadModule();
  return loading;
}

/**
 * Finds `CREATE TABLE` statements of tenant-owned tables without the tenant column, parsed by
 * PostgreSQL's own parser (libpg-query). A table is not judged when it is global (listed in
 * `globalTables`, or registered with `tenantry.register_global_table('…')` in the same file),
 * temporary, a partition or `OF type` (columns come from elsewhere), inherits or copies its
 * columns (`INHERITS`, `LIKE`), or gets the column from an `ALTER TABLE … ADD COLUMN` in the
 * same file. psql variables (`:"app_role"`, `:'x'`) and meta-commands (`\set …`) are tolerated.
 *
 * @example
 * const findings = await checkMigrationSql(await readFile('migrations/002_recordings.sql', 'utf8'), { globalTables: ['plans'] });
 */
export async function checkMigrationSql(sql: string, options: MigrationCheckOptions = {}): Promise<MigrationFinding[]> {
  await loadSqlParser();
  return checkMigrationSqlSync(sql, options);
}

/** {@link checkMigrationSql} once {@link loadSqlParser} has resolved (throws before that). */
export function checkMigrationSqlSync(sql: string, options: MigrationCheckOptions = {}): MigrationFinding[] {
  const columns = new Set(options.columns ?? ['tenant_id']);
  const text = neutralisePsql(sql);
  const bytes = Buffer.from(text, 'utf8');
  const position = (byteOffset: number) => lineColumn(bytes, byteOffset);

  let tree: { stmts?: Array<{ stmt?: Record<string, unknown>; stmt_location?: number }> };
  try {
    tree = parseSync(text) as typeof tree;
  } catch (error) {
    // cursorPosition is 1-based, in bytes
    const cursor = (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails?.cursorPosition;
    const at = position(Math.max(0, (cursor ?? 1) - 1));
    return [{ code: 'SQL_PARSE_ERROR', message: `The migration does not parse: ${(error as Error).message}`, ...at }];
  }

  const statements = (tree.stmts ?? []).map((s) => s.stmt ?? {});
  const registeredGlobal: string[] = [];
  const addedColumns = new Map<string, Set<string>>();
  for (const stmt of statements) {
    walk(stmt, (key, node) => {
      if (key !== 'FuncCall') return;
      const call = node as {
        funcname?: Array<{ String?: { sval?: string } }>;
        args?: Array<{ A_Const?: { sval?: { sval?: string } } }>;
      };
      const name = call.funcname?.[call.funcname.length - 1]?.String?.sval;
      const arg = call.args?.[0]?.A_Const?.sval?.sval;
      if (name === 'register_global_table' && arg) registeredGlobal.push(arg, bareName(arg));
    });
    const alter = stmt.AlterTableStmt as
      | {
          relation?: RangeVar;
          cmds?: Array<{ AlterTableCmd?: { subtype?: string; def?: { ColumnDef?: { colname?: string } } } }>;
        }
      | undefined;
    if (alter?.relation) {
      const table = bareName(qualifiedName(alter.relation));
      for (const cmd of alter.cmds ?? []) {
        const colname =
          cmd.AlterTableCmd?.subtype === 'AT_AddColumn' ? cmd.AlterTableCmd.def?.ColumnDef?.colname : undefined;
        if (colname) addedColumns.set(table, (addedColumns.get(table) ?? new Set()).add(colname));
      }
    }
  }

  const findings: MigrationFinding[] = [];
  const globals = [...(options.globalTables ?? []), ...registeredGlobal];
  const judge = (relation: RangeVar, names: string[] | undefined) => {
    if (names === undefined || relation.relpersistence === 't') return;
    const table = qualifiedName(relation);
    if (names.some((n) => columns.has(n)) || isGlobalTable(table, globals)) return;
    if ([...(addedColumns.get(bareName(table)) ?? [])].some((n) => columns.has(n))) return;
    findings.push({
      code: 'MISSING_TENANT_COLUMN',
      table,
      message: `Table "${table}" has no tenant column (${[...columns].join(' or ')}): add it (and register the table with tenantry.register_tenant_table), or, if all tenants share the table, register it with tenantry.register_global_table or list it in globalTables.`,
      ...position(relation.location ?? 0),
    });
  };
  for (const stmt of statements) {
    if (stmt.CreateStmt) judge(...createStmtColumns(stmt.CreateStmt as CreateStmt));
    const ctas = stmt.CreateTableAsStmt as CreateTableAs | undefined;
    if (ctas?.objtype === 'OBJECT_TABLE' && ctas.into?.rel) judge(ctas.into.rel, ctasColumns(ctas));
  }
  return findings;
}

/** Runs {@link checkMigrationSql} on files; each finding names its file. */
export async function checkMigrationFiles(
  files: readonly string[],
  options: MigrationCheckOptions = {},
): Promise<Array<MigrationFinding & { file: string }>> {
  const out: Array<MigrationFinding & { file: string }> = [];
  for (const file of files) {
    for (const finding of await checkMigrationSql(await readFile(file, 'utf8'), options))
      out.push({ file, ...finding });
  }
  return out;
}

interface RangeVar {
  schemaname?: string;
  relname?: string;
  relpersistence?: string;
  location?: number;
}

interface CreateStmt {
  relation: RangeVar;
  tableElts?: Array<{ ColumnDef?: { colname?: string }; TableLikeClause?: unknown }>;
  inhRelations?: unknown[];
  partbound?: unknown;
  ofTypename?: unknown;
}

interface CreateTableAs {
  objtype?: string;
  into?: { rel?: RangeVar; colNames?: Array<{ String?: { sval?: string } }> };
  query?: {
    SelectStmt?: {
      targetList?: Array<{
        ResTarget?: {
          name?: string;
          val?: { ColumnRef?: { fields?: Array<{ String?: { sval?: string }; A_Star?: unknown }> } };
        };
      }>;
    };
  };
}

// The columns a CREATE TABLE declares itself; undefined when some come from elsewhere.
function createStmtColumns(stmt: CreateStmt): [RangeVar, string[] | undefined] {
  if (stmt.partbound || stmt.ofTypename || (stmt.inhRelations?.length ?? 0) > 0) return [stmt.relation, undefined];
  const elements = stmt.tableElts ?? [];
  if (elements.some((e) => e.TableLikeClause)) return [stmt.relation, undefined];
  return [stmt.relation, elements.flatMap((e) => (e.ColumnDef?.colname ? [e.ColumnDef.colname] : []))];
}

// CREATE TABLE … AS SELECT: explicit column names, else the select list's names
function ctasColumns(stmt: CreateTableAs): string[] | undefined {
  if (stmt.into?.colNames?.length) return stmt.into.colNames.flatMap((c) => (c.String?.sval ? [c.String.sval] : []));
  const targets = stmt.query?.SelectStmt?.targetList;
  if (!targets) return undefined;
  const names: string[] = [];
  for (const t of targets) {
    const r = t.ResTarget;
    if (r?.name) names.push(r.name);
    else {
      const fields = r?.val?.ColumnRef?.fields ?? [];
      const last = fields[fields.length - 1];
      if (!last || last.A_Star) return undefined;
      if (last.String?.sval) names.push(last.String.sval);
    }
  }
  return names;
}

function qualifiedName(r: RangeVar): string {
  return r.schemaname ? `${r.schemaname}.${r.relname ?? ''}` : (r.relname ?? '');
}

function bareName(table: string): string {
  return table.slice(table.lastIndexOf('.') + 1);
}

function walk(node: unknown, visit: (key: string, value: unknown) => void): void {
  if (Array.isArray(node)) {
    for (const n of node) walk(n, visit);
  } else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      visit(key, value);
      walk(value, visit);
    }
  }
}

// psql syntax the server never sees: `:"var"` / `:'var'` become the quoted name (same length,
// so positions hold), meta-command lines (`\set x 1`) become blank.
function neutralisePsql(sql: string): string {
  return sql
    .replace(/(?<!:):(["'])([A-Za-z_][A-Za-z0-9_]*)\1/g, (_, q: string, name: string) => ` ${q}${name}${q}`)
    .replace(/^[ \t]*\\.*$/gm, (line) => ' '.repeat(line.length));
}

function lineColumn(bytes: Buffer, byteOffset: number): { line: number; column: number } {
  const before = bytes.subarray(0, Math.min(byteOffset, bytes.length)).toString('utf8');
  const lines = before.split('\n');
  return { line: lines.length, column: [...lines[lines.length - 1]!].length + 1 };
}
