import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { Queryable } from '../../catalog/tenant-catalog.js';
import { ident } from '../../tiers/move/move-tables.js';
import { StreamDigest, type StreamFacts } from './row-digest.js';

/** A registered tenant table of one database, as export and import see it. */
export interface TenantTable {
  oid: number;
  schema: string;
  name: string;
  /** Quoted, schema-qualified. */
  qualified: string;
  tenantColumn: string;
  pinned: boolean;
  /** Primary key columns in key order (empty: none). */
  key: string[];
  /** Columns in order, generated ones excepted, with their types (`format_type`). */
  columns: Array<{ name: string; type: string }>;
}

/** A foreign key of a table of the list: its columns and the columns it references. */
interface ForeignKey {
  child: number;
  childColumns: string[];
  parent: number;
  parentColumns: string[];
}

/**
 * The select-list items that describe a table `c` (pg_class) for export and import: its primary
 * key's columns in order (`key`) and its stored columns with their types (`columns`).
 */
export const TABLE_SHAPE_COLUMNS = `(select array_agg(a.attname::text order by k.ord) from pg_index i
               cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
               join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
              where i.indrelid = c.oid and i.indisprimary) as key,
            (select json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod)) order by a.attnum)
               from pg_attribute a
              where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = '') as columns`;

/** Every registered tenant table in `schemas` of the database `db` is connected to (pinned ones included). */
export async function registeredTenantTables(db: Queryable, schemas: string[]): Promise<TenantTable[]> {
  const { rows } = await db.query<Omit<TenantTable, 'qualified'> & { key: string[] | null }>(
    `select c.oid::int as oid, n.nspname as schema, c.relname as name, r.tenant_column::text as "tenantColumn",
            coalesce((to_jsonb(r) ->> 'pinned')::boolean, false) as pinned,
            ${TABLE_SHAPE_COLUMNS}
       from tenantry.registered_tables r join pg_class c on c.oid = r.relid join pg_namespace n on n.oid = c.relnamespace
      where r.kind = 'tenant' and n.nspname = any($1)
      order by c.relname`,
    [schemas],
  );
  return rows.map((r) => ({ ...r, key: r.key ?? [], qualified: `${ident(r.schema)}.${ident(r.name)}` }));
}

async function foreignKeys(db: Queryable, tables: TenantTable[]): Promise<ForeignKey[]> {
  const { rows } = await db.query<ForeignKey>(
    `select c.conrelid::int as child, c.confrelid::int as parent,
            (select array_agg(a.attname::text order by k.ord) from unnest(c.conkey) with ordinality k(n, ord)
               join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n) as "childColumns",
            (select array_agg(a.attname::text order by k.ord) from unnest(c.confkey) with ordinality k(n, ord)
               join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n) as "parentColumns"
       from pg_constraint c where c.contype = 'f' and c.conrelid = any($1::oid[])`,
    [tables.map((t) => t.oid)],
  );
  return rows;
}

/** The tables of one database in foreign-key order (parents first), each with the columns a restore-as-new remaps. */
export async function planTables(
  db: Queryable,
  tables: TenantTable[],
): Promise<Array<TenantTable & { remap: string[] }>> {
  const fks = await foreignKeys(db, tables);
  const byOid = new Map(tables.map((t) => [t.oid, t]));
  // parents first; a cycle keeps the order it has (its rows must then load in one statement's order)
  const ordered: TenantTable[] = [];
  const seen = new Set<number>();
  const visit = (oid: number, path: Set<number>): void => {
    if (seen.has(oid) || path.has(oid)) return;
    path.add(oid);
    for (const fk of fks) if (fk.child === oid && fk.parent !== oid && byOid.has(fk.parent)) visit(fk.parent, path);
    seen.add(oid);
    ordered.push(byOid.get(oid)!);
  };
  for (const t of tables) visit(t.oid, new Set());
  return ordered.map((t) => ({ ...t, remap: [...remapPlan(tables, fks).get(t.oid)!] }));
}

/**
 * Which columns hold ids that are global (unique across tenants) and so get fresh values in a
 * restore-as-new: uuid primary key columns other than the tenant column, unless the column
 * references a table outside the archive (someone else's id: a user, kept as it is); then, until
 * nothing changes, every uuid column of a foreign key whose referenced column is remapped.
 */
function remapPlan(tables: TenantTable[], fks: ForeignKey[]): Map<number, Set<string>> {
  const inArchive = new Set(tables.map((t) => t.oid));
  const plan = new Map(tables.map((t) => [t.oid, new Set<string>()]));
  const isUuid = (t: TenantTable, c: string) => t.columns.find((x) => x.name === c)?.type === 'uuid';
  const referencesOutside = (oid: number, column: string) =>
    fks.some((fk) => fk.child === oid && !inArchive.has(fk.parent) && fk.childColumns.includes(column));
  for (const t of tables)
    for (const c of t.key)
      if (c !== t.tenantColumn && isUuid(t, c) && !referencesOutside(t.oid, c)) plan.get(t.oid)!.add(c);
  for (let changed = true; changed;) {
    changed = false;
    for (const fk of fks) {
      if (!inArchive.has(fk.parent)) continue;
      const child = tables.find((t) => t.oid === fk.child)!;
      fk.parentColumns.forEach((p, i) => {
        const c = fk.childColumns[i]!;
        if (plan.get(fk.parent)!.has(p) && c !== child.tenantColumn && !plan.get(fk.child)!.has(c)) {
          plan.get(fk.child)!.add(c);
          changed = true;
        }
      });
    }
  }
  return plan;
}

/** The statement that streams a tenant's rows of a table (COPY takes no parameters: the id is a validated uuid literal). */
export function copyOutSql(table: TenantTable, columns: string[], tenantId: string, ordered: boolean): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(tenantId))
    throw new Error('tenantry: a tenant id in COPY must be a canonical uuid');
  const list = columns.map(ident).join(', ');
  const order = ordered && table.key.length ? ` order by ${table.key.map(ident).join(', ')}` : '';
  return `copy (select ${list} from ${table.qualified} where ${ident(table.tenantColumn)} = '${tenantId}'::uuid${order}) to stdout`;
}

/**
 * Streams a tenant's rows of one table into a gzip file of the work folder, hashing and counting
 * them on the way (progress as rows pass, and once more with the total): what the archive records
 * of the table. The file is written with mode 0600.
 */
export async function copyTableToFile(input: {
  client: pg.PoolClient;
  table: TenantTable;
  columns: string[];
  tenantId: string;
  path: string;
  compressionLevel: number;
  progress: (rows: number) => void;
}): Promise<StreamFacts> {
  const digest = new StreamDigest(({ rows }) => input.progress(rows));
  await pipeline(
    input.client.query(copyTo(copyOutSql(input.table, input.columns, input.tenantId, true))),
    digest,
    createGzip({ level: input.compressionLevel }),
    createWriteStream(input.path, { mode: 0o600 }),
  );
  const facts = digest.facts();
  input.progress(facts.rows);
  return facts;
}

/**
 * Session settings that fix how values print in COPY text (time zone, dates, intervals, floats,
 * bytea): the export and the import's check read rows the same way on any server configuration.
 */
export const COPY_SETTINGS = `select set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, YMD', true),
  set_config('IntervalStyle', 'postgres', true), set_config('extra_float_digits', '3', true),
  set_config('bytea_output', 'hex', true)`;
