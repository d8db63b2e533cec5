import type { SqlQueryable } from './isolation-context.js';
import type { ResolvedTable } from './table-spec.js';

/** Every row of a table outside one tenant, read through the privileged connection. */
export interface RowSnapshot {
  /** Canonical JSON text (rows sorted): equal text, equal data. */
  readonly text: string;
  readonly rows: ReadonlyArray<Record<string, unknown>>;
}

/**
 * The rows of `table` that do not belong to `exceptTenant` (all rows when it is undefined),
 * every column, as the privileged connection sees them. An attempt must leave this unchanged:
 * the intruder may change its own rows, never anyone else's.
 */
export async function snapshotRows(
  privileged: SqlQueryable,
  table: ResolvedTable,
  exceptTenant: string | undefined,
): Promise<RowSnapshot> {
  const { rows } = await privileged.query(
    `select coalesce(jsonb_agg(to_jsonb(x) order by to_jsonb(x)::text), '[]'::jsonb)::text as rows
       from ${table.sql} x where x.${table.tenantSql}::text is distinct from $1::text`,
    [exceptTenant ?? null],
  );
  const text = String((rows[0] as { rows: string }).rows);
  return { text, rows: JSON.parse(text) as Record<string, unknown>[] };
}

/**
 * What changed between two snapshots, by row identity (tenant + id columns), or undefined.
 * Counts only: the message names no data.
 */
export function diffSnapshots(table: ResolvedTable, before: RowSnapshot, after: RowSnapshot): string | undefined {
  if (before.text === after.text) return undefined;
  const identity = (row: Record<string, unknown>) =>
    JSON.stringify([row[table.tenantColumn], ...table.idColumns.map((c) => row[c])]);
  const index = (rows: ReadonlyArray<Record<string, unknown>>) =>
    new Map(rows.map((r) => [identity(r), JSON.stringify(r)]));
  const old = index(before.rows);
  const now = index(after.rows);
  let added = 0;
  let removed = 0;
  let changed = 0;
  for (const [id, row] of now) {
    const was = old.get(id);
    if (was === undefined) added++;
    else if (was !== row) changed++;
  }
  for (const id of old.keys()) if (!now.has(id)) removed++;
  return `rows of other tenants in ${table.name} changed: ${added} added, ${removed} removed, ${changed} modified`;
}
