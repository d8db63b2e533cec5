import { InvalidArgumentError } from '../errors/tenantry-error.js';

/** One registered tenant table: its schema-qualified name and its tenant column. */
export interface TenantTable {
  schema: string;
  name: string;
  column: string;
  /**
   * 1-based place of the tenant column among the table's columns (dropped ones skipped), for an
   * INSERT without a column list. Unknown (such inserts are flagged) unless given or loaded.
   */
  position?: number;
}

/** Something that can run a query (a pg.Pool, pg.Client or TenantPool). */
export interface Queryable {
  query(text: string): Promise<{ rows: unknown[] }>;
}

/**
 * The tenant tables the guard knows, with their tenant column, and the search path used to
 * resolve unqualified names (`notes` → `public.notes`). Names are as PostgreSQL stores them
 * (unquoted identifiers are lower case).
 *
 * @example
 * const tables = TenantTableMap.from(['public.notes', { table: 'billing.invoices', column: 'org_id' }]);
 */
export class TenantTableMap {
  readonly #byQualified = new Map<string, TenantTable>();
  readonly searchPath: readonly string[];

  constructor(tables: Iterable<TenantTable>, options: { searchPath?: readonly string[] } = {}) {
    for (const t of tables) this.#byQualified.set(`${t.schema}.${t.name}`, t);
    this.searchPath = options.searchPath ?? ['public'];
  }

  /**
   * Builds a map from a static list: `'schema.table'`, `'table'` (in the first schema of the
   * search path) or `{ table, column, position }` (column default `tenant_id`; position: see
   * {@link TenantTable.position}). For the app role, which cannot read the registry.
   */
  static from(
    list: ReadonlyArray<string | { table: string; column?: string; position?: number }>,
    options: { searchPath?: readonly string[] } = {},
  ): TenantTableMap {
    const searchPath = options.searchPath ?? ['public'];
    const tables = list.map((item) => {
      const { table, column = 'tenant_id', position } = typeof item === 'string' ? { table: item } : item;
      const parts = table.trim().split('.');
      if (parts.length > 2 || parts.some((p) => p === ''))
        throw new InvalidArgumentError(`Not a table name: ${table}`, 'tables');
      if (position !== undefined && !(Number.isInteger(position) && position >= 1))
        throw new InvalidArgumentError(`Not a column position: ${position}`, 'tables');
      const [schema, name] = parts.length === 2 ? [parts[0]!, parts[1]!] : [searchPath[0] ?? 'public', parts[0]!];
      return position === undefined ? { schema, name, column } : { schema, name, column, position };
    });
    return new TenantTableMap(tables, { searchPath });
  }

  /** Every table in the map. */
  get tables(): TenantTable[] {
    return [...this.#byQualified.values()];
  }

  /** Resolves a reference as PostgreSQL would through the search path; undefined when not a tenant table. */
  resolve(schema: string | undefined, name: string): TenantTable | undefined {
    if (schema !== undefined) return this.#byQualified.get(`${schema}.${name}`);
    for (const s of this.searchPath) {
      const hit = this.#byQualified.get(`${s}.${name}`);
      if (hit) return hit;
    }
    return undefined;
  }
}

/**
 * Reads the registry (`tenantry.registered_tables`, kind `tenant`), where each tenant column sits
 * among its table's columns, and the connection's search path. Needs the owner or an admin role:
 * the app role cannot read the registry (use {@link TenantTableMap.from} there).
 *
 * A position read now stays safe when columns change later: added columns go last, and a column
 * dropped before the tenant column only makes the guard ask for more values than needed.
 */
export async function loadTenantTables(db: Queryable): Promise<TenantTableMap> {
  const { rows } = await db.query(`
    select n.nspname as schema, c.relname as name, r.tenant_column::text as column,
           (select count(*)::int from pg_catalog.pg_attribute b
             where b.attrelid = c.oid and b.attnum > 0 and not b.attisdropped and b.attnum <= a.attnum) as position
      from tenantry.registered_tables r
      join pg_catalog.pg_class c on c.oid = r.relid
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      left join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attname = r.tenant_column and not a.attisdropped
     where r.kind = 'tenant'
     order by 1, 2`);
  const path = await db.query('select current_schemas(false) as path');
  const searchPath = (path.rows[0] as { path: string[] | string } | undefined)?.path;
  const tables = (rows as Array<TenantTable & { position: number | null }>).map(({ position, ...t }) =>
    position ? { ...t, position } : t,
  );
  return new TenantTableMap(tables, { searchPath: Array.isArray(searchPath) ? searchPath : parseArray(searchPath) });
}

// pg returns name[] as a string when no type parser is registered for it
function parseArray(text: string | undefined): string[] {
  if (!text) return ['public'];
  return text
    .replace(/^\{|\}$/g, '')
    .split(',')
    .filter(Boolean)
    .map((s) => s.replace(/^"|"$/g, ''));
}
