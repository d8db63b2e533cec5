import type pg from 'pg';
import { ident } from '../../tiers/move/move-tables.js';
import { ArchiveError } from './archive-error.js';
import type { TenantTable } from './tenant-tables.js';

/**
 * The faster load path of an import: the tables' rows go in with `session_replication_role =
 * replica` (set locally, in the load's transaction), so PostgreSQL skips the foreign-key check it
 * would run per row (a trigger per inserted row, queued and fired at the end of each COPY), and
 * every foreign key of the loaded tables is then checked once, set-based, in the same transaction
 * ({@link checkForeignKeys}): the same refusal (IMPORT_REFERENCE_MISSING) before anything commits.
 *
 * Taken only when nothing else changes:
 *   - the role may set the parameter (a superuser, or `GRANT SET ON PARAMETER
 *     session_replication_role TO <owner>` on PostgreSQL 15+): probed in a savepoint;
 *   - the loaded tables have no trigger other than their foreign keys' and the library's row
 *     metering (which skips an import's writes anyway: `tenantry.moving` is on). A table with any
 *     other trigger (an application's, the library's next one) is loaded as before, triggers firing;
 *   - every table the foreign keys reference can be read whole by the importing role (SELECT, and
 *     no row-level security filtering it): otherwise the set-based check could miss rows.
 * Otherwise the load runs as before (the per-row checks). Deletes (a replace, an earlier attempt's
 * leftovers) always run before the switch, with every trigger and ON DELETE action firing.
 * Nothing is changed on the tables themselves (no ALTER TABLE … DISABLE TRIGGER): other tenants'
 * writers keep every check.
 */
export interface ReplicaLoad {
  /** The setting's value before: restored by {@link ReplicaLoad.end}. */
  readonly previous: string;
}

/** Switches the transaction of `client` to replica mode for loading `tables`, or returns undefined (the per-row path). */
export async function beginReplicaLoad(client: pg.ClientBase, tables: TenantTable[]): Promise<ReplicaLoad | undefined> {
  if (!tables.length) return undefined;
  const oids = tables.map((t) => t.oid);
  const { rows } = await client.query<{ triggers: number; unreadable: number; previous: string }>(
    `select (select count(*)::int from pg_trigger t
              where t.tgrelid = any($1::oid[]) and t.tgenabled <> 'D'
                and not (t.tgisinternal and exists (select from pg_constraint c where c.oid = t.tgconstraint and c.contype = 'f'))
                and t.tgname not in ('tenantry_meter_insert', 'tenantry_meter_update', 'tenantry_meter_delete')) as triggers,
            (select count(*)::int from pg_constraint c join pg_class p on p.oid = c.confrelid
              where c.contype = 'f' and c.conrelid = any($1::oid[])
                and (not has_table_privilege(p.oid, 'select')
                     or (p.relrowsecurity
                         and not (select r.rolsuper or r.rolbypassrls from pg_roles r where r.rolname = current_user)
                         and (p.relforcerowsecurity or not pg_has_role(p.relowner, 'usage'))))) as unreadable,
            current_setting('session_replication_role') as previous`,
    [oids],
  );
  const facts = rows[0]!;
  if (facts.triggers > 0 || facts.unreadable > 0) return undefined;
  // a role that may not set it: the savepoint undoes the failed SET, the transaction goes on
  await client.query('savepoint tenantry_replica_probe');
  try {
    await client.query(`set local session_replication_role = replica`);
    await client.query('release savepoint tenantry_replica_probe');
    return { previous: facts.previous };
  } catch {
    await client.query('rollback to savepoint tenantry_replica_probe');
    await client.query('release savepoint tenantry_replica_probe');
    return undefined;
  }
}

/** Leaves replica mode (every trigger fires again for the rest of the transaction), then checks the foreign keys. */
export async function endReplicaLoad(
  client: pg.ClientBase,
  load: ReplicaLoad,
  tables: TenantTable[],
  tenantId: string,
): Promise<void> {
  await client.query(`select set_config('session_replication_role', $1, true)`, [load.previous]);
  await checkForeignKeys(client, tables, tenantId);
}

/**
 * Every foreign key of `tables`, checked set-based for the tenant's rows (one anti-join per key):
 * a row whose key columns are all set (MATCH SIMPLE; MATCH FULL: any set) must find its referenced
 * row, as the per-row check would. IMPORT_REFERENCE_MISSING names the table, never a value.
 *
 * As the per-row check does, the referenced rows are first locked FOR KEY SHARE (until the import's
 * transaction ends): a referenced row deleted by another session between this check and the commit
 * would otherwise leave the imported rows pointing at nothing. Keys are compared with the
 * constraint's own equality operators (pg_constraint.conpfeqop: citext, ltree… compare as the
 * constraint does, not as text).
 */
export async function checkForeignKeys(client: pg.ClientBase, tables: TenantTable[], tenantId: string): Promise<void> {
  if (!tables.length) return;
  const { rows: before } = await client.query<{ nestloop: string; mergejoin: string }>(
    `select current_setting('enable_nestloop') as nestloop, current_setting('enable_mergejoin') as mergejoin`,
  );
  const { nestloop, mergejoin } = before[0]!;
  // one hash anti-join per key, whatever the statistics say: they do not know the new tenant's rows
  // yet (no ANALYZE in the transaction), and a nested loop on such estimates scans all of a row's
  // parents for each row (minutes at a million rows instead of a second). Planner settings only,
  // for this transaction, restored below.
  await client.query(`select set_config('enable_nestloop', 'off', true), set_config('enable_mergejoin', 'off', true)`);
  // restored only after a check that ran: a failed statement aborted the transaction, and a restore
  // sent then would fail too and hide the failure's own error (the import rolls back either way)
  await checkEachKey(client, tables, tenantId);
  await client.query(`select set_config('enable_nestloop', $1, true), set_config('enable_mergejoin', $2, true)`, [
    nestloop,
    mergejoin,
  ]);
}

async function checkEachKey(client: pg.ClientBase, tables: TenantTable[], tenantId: string): Promise<void> {
  const { rows } = await client.query<{
    table: number;
    parent: string;
    match: string;
    columns: string[];
    parentColumns: string[];
    operators: string[];
    inArchive: boolean;
  }>(
    `select c.conrelid::int as table, c.confrelid::regclass::text as parent, c.confmatchtype::text as match,
            (select array_agg(a.attname::text order by k.ord) from unnest(c.conkey) with ordinality k(n, ord)
               join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n) as columns,
            (select array_agg(a.attname::text order by k.ord) from unnest(c.confkey) with ordinality k(n, ord)
               join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n) as "parentColumns",
            -- the constraint's own PK = FK operators, schema-qualified (quote_ident: the schema's name)
            (select array_agg(format('operator(%s.%s)', quote_ident(n.nspname), o.oprname) order by k.ord)
               from unnest(c.conpfeqop) with ordinality k(op, ord)
               join pg_operator o on o.oid = k.op join pg_namespace n on n.oid = o.oprnamespace) as operators,
            c.confrelid = any($1::oid[]) as "inArchive"
       from pg_constraint c where c.contype = 'f' and c.conrelid = any($1::oid[]) order by c.conname`,
    [tables.map((t) => t.oid)],
  );
  for (const fk of rows) {
    const table = tables.find((t) => t.oid === fk.table)!;
    const set = fk.columns.map((c) => `c.${ident(c)} is not null`).join(' and ');
    const join = fk.columns
      .map((c, i) => `p.${ident(fk.parentColumns[i]!)} ${fk.operators[i]!} c.${ident(c)}`)
      .join(' and ');
    // MATCH FULL: a key partly null is refused outright
    const partly =
      fk.match === 'f' && fk.columns.length > 1
        ? ` or (num_nulls(${fk.columns.map((c) => `c.${ident(c)}`).join(', ')}) between 1 and ${fk.columns.length - 1})`
        : '';
    // fk.parent is regclass text: already quoted and qualified as needed. First the referenced rows
    // locked, as the per-row check locks each (a delete of one now waits for the import's end)
    await client.query(
      `select from ${fk.parent} p where exists (select from ${table.qualified} c
          where c.${ident(table.tenantColumn)} = $1 and ${set} and ${join}) for key share of p`,
      [tenantId],
    );
    const { rows: missing } = await client.query(
      `select from ${table.qualified} c where c.${ident(table.tenantColumn)} = $1
          and ((${set} and not exists (select from ${fk.parent} p where ${join}))${partly}) limit 1`,
      [tenantId],
    );
    if (missing.length)
      throw new ArchiveError(
        'IMPORT_REFERENCE_MISSING',
        fk.inArchive
          ? `A row of ${table.name} references a row the archive does not have`
          : `A row of ${table.name} references a row the target does not have (a table outside the archive, e.g. users)`,
        { details: { table: table.name } },
      );
  }
}
