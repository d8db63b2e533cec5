import type { Queryable } from '../../catalog/tenant-catalog.js';
import { MoveError } from './move-error.js';

/** One registered tenant table as a move sees it, at the source and at the target. */
export interface MoveTable {
  /** The table's name without schema: how source and target tables are paired. */
  name: string;
  /** Quoted, schema-qualified names. */
  source: string;
  target: string;
  /** The source table's oid (what the capture trigger records). */
  sourceOid: number;
  tenantColumn: string;
  /** Primary key columns, in key order. */
  key: string[];
  /** Columns copied: those of the target that the source has too, generated ones excepted. */
  columns: string[];
  /** Target columns fed by a sequence (serial or identity): bumped before the switch. */
  sequences: Array<{ column: string; sequence: string }>;
}

interface TableRow {
  oid: number;
  schema: string;
  name: string;
  tenant_column: string;
  pinned: boolean;
  key: string[] | null;
  columns: string[];
}

/** Quotes a name read from the system catalogs (any spelling PostgreSQL accepted). */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

// Every registered tenant table in `schemas`, pinned ones included (the caller decides).
async function tablesIn(db: Queryable, schemas: string[]): Promise<TableRow[]> {
  const { rows } = await db.query<TableRow>(
    `select c.oid::int as oid, n.nspname as schema, c.relname as name, r.tenant_column::text as tenant_column,
            -- a registry installed before the flag existed (a tenant database not re-installed since) has no pinned column
            coalesce((to_jsonb(r) ->> 'pinned')::boolean, false) as pinned,
            (select array_agg(a.attname::text order by k.ord) from pg_index i
               cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
               join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
              where i.indrelid = c.oid and i.indisprimary) as key,
            (select array_agg(a.attname::text order by a.attnum) from pg_attribute a
              where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = '') as columns
       from tenantry.registered_tables r join pg_class c on c.oid = r.relid join pg_namespace n on n.oid = c.relnamespace
      where r.kind = 'tenant' and n.nspname = any($1)`,
    [schemas],
  );
  return rows;
}

/**
 * Pairs the registered tenant tables of the source (in `sourceSchemas`) with the target's, by
 * name, parents before children (foreign keys among them). Every source table must exist at the
 * target with a primary key. Tables pinned at the source (`tenantry.pin_tenant_table`) stay where
 * they are: they are not in the list, so nothing of the move (capture, copy, verification,
 * cleanup, rollback) touches them, and the target need not have them. A source table that is
 * pinned at the target is refused: copying into it, or deleting "leftovers" from it, would
 * change rows that live there.
 */
export async function moveTables(
  source: Queryable,
  sourceSchemas: string[],
  target: Queryable,
  targetSchemas: string[],
): Promise<MoveTable[]> {
  const [from, to] = await Promise.all([tablesIn(source, sourceSchemas), tablesIn(target, targetSchemas)]);
  const byName = new Map(to.map((t) => [t.name, t]));
  const tables: MoveTable[] = [];
  for (const s of from) {
    if (s.pinned) continue;
    const t = byName.get(s.name);
    if (!t)
      throw new MoveError(
        'MOVE_TARGET_NOT_READY',
        `The target has no registered tenant table ${s.name}: create the tenant tables there first`,
        { details: { table: s.name } },
      );
    if (t.pinned) {
      throw new MoveError(
        'MOVE_TARGET_NOT_READY',
        `Table ${s.name} is pinned at the target but not at the source: pin it at the source too (it then stays there), or drop it from the source`,
        { details: { table: s.name } },
      );
    }
    if (!s.key || !t.key || s.key.join() !== t.key.join()) {
      throw new MoveError(
        'MOVE_TARGET_NOT_READY',
        `Table ${s.name} needs the same primary key at the source and the target`,
        { details: { table: s.name } },
      );
    }
    const sourceColumns = new Set(s.columns);
    tables.push({
      name: s.name,
      source: `${ident(s.schema)}.${ident(s.name)}`,
      target: `${ident(t.schema)}.${ident(t.name)}`,
      sourceOid: s.oid,
      tenantColumn: s.tenant_column,
      key: s.key,
      columns: t.columns.filter((c) => sourceColumns.has(c)),
      sequences: [],
    });
  }
  for (const table of tables) {
    const { rows } = await target.query<{ column: string; sequence: string | null }>(
      `select c as column, pg_get_serial_sequence($1, c) as sequence from unnest($2::text[]) as c`,
      [table.target, table.columns],
    );
    table.sequences = rows.filter((r): r is { column: string; sequence: string } => r.sequence !== null);
  }
  await refusePinnedReferences(source, from, tables, 'source');
  await refusePinnedReferences(
    target,
    to,
    tables.map((t) => ({ ...t, sourceOid: byName.get(t.name)!.oid })),
    'target',
  );
  return orderByForeignKeys(source, tables);
}

// A pinned table that references a table the move carries: deleting the moved rows (cleanup at
// the source, the leftover sweep at the target) would cascade into the pinned rows, or be stuck
// on the foreign key. Refused before anything starts.
async function refusePinnedReferences(
  db: Queryable,
  all: TableRow[],
  moving: MoveTable[],
  side: 'source' | 'target',
): Promise<void> {
  const pinned = all.filter((t) => t.pinned);
  if (pinned.length === 0 || moving.length === 0) return;
  const { rows } = await db.query<{ child: string; parent: string }>(
    `select conrelid::regclass::text as child, confrelid::regclass::text as parent from pg_constraint
      where contype = 'f' and conrelid = any($1::oid[]) and confrelid = any($2::oid[])`,
    [pinned.map((t) => t.oid), moving.map((t) => t.sourceOid)],
  );
  const first = rows[0];
  if (first) {
    throw new MoveError(
      'MOVE_TARGET_NOT_READY',
      `Pinned table ${first.child} at the ${side} references ${first.parent}, which the move carries: its rows would be deleted or orphaned when the moved rows are removed. Drop the foreign key, or pin ${first.parent} too`,
      {
        details: { table: first.child, references: first.parent, side },
      },
    );
  }
}

// Parents first: a child's rows are copied after the rows they reference.
async function orderByForeignKeys(source: Queryable, tables: MoveTable[]): Promise<MoveTable[]> {
  const oids = tables.map((t) => t.sourceOid);
  const { rows } = await source.query<{ child: number; parent: number }>(
    `select conrelid::int as child, confrelid::int as parent from pg_constraint
      where contype = 'f' and conrelid = any($1::oid[]) and confrelid = any($1::oid[]) and conrelid <> confrelid`,
    [oids],
  );
  const parents = new Map<number, number[]>();
  for (const r of rows) parents.set(r.child, [...(parents.get(r.child) ?? []), r.parent]);
  const byOid = new Map(tables.map((t) => [t.sourceOid, t]));
  const ordered: MoveTable[] = [];
  const seen = new Set<number>();
  const visit = (oid: number, path: Set<number>): void => {
    if (seen.has(oid) || path.has(oid)) return; // a cycle: keep the order we have
    path.add(oid);
    for (const p of parents.get(oid) ?? []) visit(p, path);
    seen.add(oid);
    ordered.push(byOid.get(oid)!);
  };
  for (const t of [...tables].sort((a, b) => a.name.localeCompare(b.name))) visit(t.sourceOid, new Set());
  return ordered;
}
