import type { Queryable } from '../../catalog/tenant-catalog.js';
import { quoteLiteral } from '../../policy/identifiers.js';
import { ident, type MoveTable } from './move-tables.js';

/** The name of a move's capture triggers on each source table (one set per move). */
function triggerName(moveId: string, op: 'i' | 'u' | 'd'): string {
  return `tenantry_move_${moveId.replaceAll('-', '')}_${op}`;
}

/**
 * Installs (idempotently) the move's capture triggers on the source tables: AFTER each insert,
 * update and delete of the moving tenant's rows (a WHEN clause: other tenants' writes do not call
 * the function), `tenantry_private.capture_move_change()` records the primary key.
 */
export async function installCaptureTriggers(source: Queryable, moveId: string, tenantId: string, tables: MoveTable[]): Promise<void> {
  for (const t of tables) {
    const col = ident(t.tenantColumn);
    const tenant = `${quoteLiteral(tenantId)}::uuid`;
    const args = `${quoteLiteral(moveId)}, ${quoteLiteral(tenantId)}, ${quoteLiteral(`{${t.key.map((k) => `"${k.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`)}`;
    const fn = `EXECUTE FUNCTION tenantry_private.capture_move_change(${args})`;
    await source.query(
      `create or replace trigger ${triggerName(moveId, 'i')} after insert on ${t.source} for each row when (new.${col} = ${tenant}) ${fn};
       create or replace trigger ${triggerName(moveId, 'u')} after update on ${t.source} for each row when (old.${col} = ${tenant} or new.${col} = ${tenant}) ${fn};
       create or replace trigger ${triggerName(moveId, 'd')} after delete on ${t.source} for each row when (old.${col} = ${tenant}) ${fn};`,
    );
  }
}

/** Drops the move's capture triggers wherever they are, and its recorded changes (idempotent). */
export async function dropCaptureTriggers(source: Queryable, moveId: string): Promise<void> {
  const { rows } = await source.query<{ name: string; tbl: string }>(
    `select t.tgname::text as name, format('%I.%I', n.nspname, c.relname) as tbl
       from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
      where t.tgname::text = any($1)`,
    [(['i', 'u', 'd'] as const).map((op) => triggerName(moveId, op))],
  );
  for (const r of rows) await source.query(`drop trigger if exists ${ident(r.name)} on ${r.tbl}`);
  await source.query('delete from tenantry_private.move_changes where move_id = $1', [moveId]);
}
