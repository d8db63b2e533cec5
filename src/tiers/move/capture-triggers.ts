import type { Queryable } from '../../catalog/tenant-catalog.js';
import { quoteLiteral } from '../../policy/identifiers.js';
import { MoveError } from './move-error.js';
import { ident, type MoveTable } from './move-tables.js';

const OPS = ['i', 'u', 'd', 't'] as const;

/** The name of a move's capture triggers on each source table (one set per move; `t`: the TRUNCATE guard). */
function triggerName(moveId: string, op: (typeof OPS)[number]): string {
  return `tenantry_move_${moveId.replaceAll('-', '')}_${op}`;
}

/**
 * Installs (idempotently) the move's capture triggers on the source tables: AFTER each insert,
 * update and delete of the moving tenant's rows (a WHEN clause: other tenants' writes do not call
 * the function), `tenantry_private.capture_move_change()` records the primary key; BEFORE a
 * TRUNCATE (which row triggers do not see), `tenantry_private.refuse_move_truncate()` refuses it.
 * All of them `ENABLE ALWAYS`: they fire under `session_replication_role = replica` too, so no
 * write of the tenant at the source escapes the capture but one made with the trigger disabled
 * by its owner.
 */
export async function installCaptureTriggers(
  source: Queryable,
  moveId: string,
  tenantId: string,
  tables: MoveTable[],
): Promise<void> {
  const { rows } = await source.query<{ ok: boolean }>(
    `select to_regprocedure('tenantry_private.refuse_move_truncate()') is not null as ok`,
  );
  if (!rows[0]!.ok) {
    throw new MoveError(
      'MOVE_CAPTURE_UNSUPPORTED',
      "The source database's Tenantry install predates the move's TRUNCATE guard: run tenantry install there (or tenantry install --everywhere), then the move again",
      { moveId },
    );
  }
  for (const t of tables) {
    const col = ident(t.tenantColumn);
    const tenant = `${quoteLiteral(tenantId)}::uuid`;
    const args = `${quoteLiteral(moveId)}, ${quoteLiteral(tenantId)}, ${quoteLiteral(`{${t.key.map((k) => `"${k.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`)}`;
    const fn = `EXECUTE FUNCTION tenantry_private.capture_move_change(${args})`;
    await source.query(
      `create or replace trigger ${triggerName(moveId, 'i')} after insert on ${t.source} for each row when (new.${col} = ${tenant}) ${fn};
       create or replace trigger ${triggerName(moveId, 'u')} after update on ${t.source} for each row when (old.${col} = ${tenant} or new.${col} = ${tenant}) ${fn};
       create or replace trigger ${triggerName(moveId, 'd')} after delete on ${t.source} for each row when (old.${col} = ${tenant}) ${fn};
       create or replace trigger ${triggerName(moveId, 't')} before truncate on ${t.source} for each statement execute function tenantry_private.refuse_move_truncate(${quoteLiteral(moveId)});
       ${OPS.map((op) => `alter table ${t.source} enable always trigger ${triggerName(moveId, op)};`).join('\n       ')}`,
    );
  }
}

/** Drops the move's capture triggers wherever they are, and its recorded changes (idempotent). */
export async function dropCaptureTriggers(source: Queryable, moveId: string): Promise<void> {
  const { rows } = await source.query<{ name: string; tbl: string }>(
    `select t.tgname::text as name, format('%I.%I', n.nspname, c.relname) as tbl
       from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
      where t.tgname::text = any($1)`,
    [OPS.map((op) => triggerName(moveId, op))],
  );
  for (const r of rows) await source.query(`drop trigger if exists ${ident(r.name)} on ${r.tbl}`);
  await source.query('delete from tenantry_private.move_changes where move_id = $1', [moveId]);
}
