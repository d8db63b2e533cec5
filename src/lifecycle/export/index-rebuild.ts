import type pg from 'pg';
import { SqlState, sqlStateOf } from '../../errors/sqlstate.js';
import { ArchiveError } from './archive-error.js';
import type { TenantTable } from './tenant-tables.js';

/**
 * The pg_restore way of loading a tenant's tables that are its own and empty (a new tenant's
 * schema or database): in the load's transaction the tables' indexes and their PRIMARY KEY,
 * UNIQUE, EXCLUDE and FOREIGN KEY constraints between them are read from the catalog
 * (`pg_get_indexdef`, `pg_get_constraintdef`) and dropped, the rows are copied in, and everything
 * is created again from those definitions ({@link finishIndexRebuild}): each index built once from
 * sorted rows instead of one btree insert per row on random keys, and each foreign key checked by
 * one set-based query (ADD CONSTRAINT's validation) instead of a trigger per row. All of it inside
 * the load's transaction: a refusal or a crash rolls the DDL back with the rows, the tables as they
 * were. The definitions are read again afterwards and must be the same (names and text).
 *
 * Taken only when it is provably the tables' own business ({@link beginIndexRebuild} says why
 * not otherwise, and the load goes on the per-row way):
 *   - the caller passes only a new tenant's tables in its own schema or database (a target the
 *     import's guards proved is no other tenant's), never the shared tier's or pinned tables;
 *   - every table, locked ACCESS EXCLUSIVE first, holds no row (row-level security off, so a
 *     policy cannot hide one: a role that would be filtered gets an error, and the per-row path);
 *   - the importing role owns them; none is partitioned, a partition or in an inheritance tree;
 *   - no foreign key from a table outside the set references them, and nothing else depends on an
 *     index or constraint to drop (a view grouping by the key, a clustered or replica-identity
 *     index, a comment or security label, a non-default tablespace, a per-column statistics
 *     target, an invalid index, a NOT VALID constraint): what could not be recreated the same.
 * Foreign keys from the set to tables outside it (a global `users`) stay in place and are checked
 * as before (per row, or set-based in replica mode).
 */
export interface IndexRebuild {
  /** The tables rebuilt (oids). */
  readonly tables: number[];
  /** Foreign keys of those tables left in place (they reference a table outside the set). */
  readonly keptForeignKeys: number;
  readonly definitions: Definition[];
}

/** Why the rebuild was not taken. */
export type IndexRebuildSkip =
  | 'no_tables'
  | 'not_empty'
  | 'row_security'
  | 'not_owner'
  | 'partitioned'
  | 'referenced_from_outside'
  | 'dependent_objects'
  | 'not_recreatable';

interface Definition {
  kind: 'index' | 'constraint';
  /** For a constraint: p, u, x or f. */
  type: string;
  table: number;
  /** Quoted, schema-qualified (an index) or the constraint's quoted name. */
  name: string;
  definition: string;
}

/** Target size of `maintenance_work_mem` while the indexes are built (never lowered). */
const BUILD_MEMORY_MB = 256;

const SKIP_SQL = `
  with t as (select c.* from pg_class c where c.oid = any($1::oid[])),
       ix as (select i.*, ic.reltablespace as space from pg_index i join pg_class ic on ic.oid = i.indexrelid
               where i.indrelid = any($1::oid[])),
       dropped as (select k.* from pg_constraint k where k.conrelid = any($1::oid[])
                    and (k.contype in ('p', 'u', 'x') or (k.contype = 'f' and k.confrelid = any($1::oid[]))))
  select case
    when exists (select from t where not pg_has_role(t.relowner, 'usage')) then 'not_owner'
    when exists (select from t where t.relkind <> 'r' or t.relispartition)
      or exists (select from pg_inherits h where h.inhrelid = any($1::oid[]) or h.inhparent = any($1::oid[]))
      then 'partitioned'
    when exists (select from pg_constraint k where k.contype = 'f' and k.confrelid = any($1::oid[])
                  and not k.conrelid = any($1::oid[])) then 'referenced_from_outside'
    when exists (select from t where t.relreplident = 'i')
      or exists (select from ix where not ix.indisvalid or not ix.indisready or not ix.indislive
                   or ix.indisclustered or ix.indisreplident or ix.space <> 0)
      or exists (select from dropped where not dropped.convalidated)
      or exists (select from pg_attribute a join ix on a.attrelid = ix.indexrelid
                  where a.attstattarget is not null and a.attstattarget >= 0)
      then 'not_recreatable'
    when exists (select from pg_description d where (d.classoid = 'pg_class'::regclass and d.objoid in (select indexrelid from ix))
                    or (d.classoid = 'pg_constraint'::regclass and d.objoid in (select oid from dropped)))
      or exists (select from pg_seclabel s where (s.classoid = 'pg_class'::regclass and s.objoid in (select indexrelid from ix))
                    or (s.classoid = 'pg_constraint'::regclass and s.objoid in (select oid from dropped)))
      then 'dependent_objects'
    -- anything else that depends on an index or a constraint to drop, but those dropped with them:
    -- the indexes and constraints themselves, and the foreign keys' own triggers
    when exists (select from pg_depend d
                  where ((d.refclassid = 'pg_class'::regclass and d.refobjid in (select indexrelid from ix))
                      or (d.refclassid = 'pg_constraint'::regclass and d.refobjid in (select oid from dropped)))
                    and not (d.classid = 'pg_class'::regclass and d.objid in (select indexrelid from ix))
                    and not (d.classid = 'pg_constraint'::regclass and d.objid in (select oid from dropped))
                    and not (d.classid = 'pg_trigger'::regclass
                             and exists (select from pg_trigger g where g.oid = d.objid and g.tgconstraint in (select oid from dropped))))
      then 'dependent_objects'
  end as skip,
  (select count(*)::int from pg_constraint k where k.contype = 'f' and k.conrelid = any($1::oid[])
     and not k.confrelid = any($1::oid[])) as kept`;

// the indexes no constraint owns, then the constraints: what is dropped, and made again from the text
const DEFINITIONS_SQL = `
  select 'index' as kind, '' as type, i.indrelid::int as table,
         format('%I.%I', n.nspname, ic.relname) as name, pg_get_indexdef(i.indexrelid) as definition
    from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_namespace n on n.oid = ic.relnamespace
   where i.indrelid = any($1::oid[])
     and not exists (select from pg_constraint k where k.conindid = i.indexrelid and k.conrelid = i.indrelid
                      and k.contype in ('p', 'u', 'x'))
  union all
  select 'constraint', k.contype::text, k.conrelid::int, format('%I', k.conname), pg_get_constraintdef(k.oid)
    from pg_constraint k where k.conrelid = any($1::oid[])
     and (k.contype in ('p', 'u', 'x') or (k.contype = 'f' and k.confrelid = any($1::oid[])))
   order by 1, 2, 3, 4`;

/**
 * Locks `tables` (a new tenant's own, to be loaded), checks that the rebuild is safe, reads their
 * definitions and drops the indexes and constraints. Returns the rebuild to finish after the COPYs,
 * or why it was not taken (nothing changed then, the locks aside).
 */
export async function beginIndexRebuild(
  client: pg.ClientBase,
  tables: TenantTable[],
): Promise<IndexRebuild | { skipped: IndexRebuildSkip }> {
  if (!tables.length) return { skipped: 'no_tables' };
  const oids = tables.map((t) => t.oid);
  // nobody writes them until the import commits: the checks below stay true
  await client.query(`lock table ${tables.map((t) => t.qualified).join(', ')} in access exclusive mode`);
  const { rows } = await client.query<{ skip: IndexRebuildSkip | null; kept: number }>(SKIP_SQL, [oids]);
  if (rows[0]!.skip) return { skipped: rows[0]!.skip };
  const empty = await allEmpty(client, tables);
  if (empty !== true) return { skipped: empty };
  const definitions = await qualifiedNames(
    client,
    async () => (await client.query<Definition>(DEFINITIONS_SQL, [oids])).rows,
  );
  const byOid = new Map(tables.map((t) => [t.oid, t]));
  // foreign keys first (they depend on the referenced keys' indexes), then the keys, then the indexes
  const order = (d: Definition) => (d.kind === 'constraint' ? (d.type === 'f' ? 0 : 1) : 2);
  for (const d of [...definitions].sort((a, b) => order(a) - order(b)))
    await client.query(
      d.kind === 'index'
        ? `drop index ${d.name}`
        : `alter table ${byOid.get(d.table)!.qualified} drop constraint ${d.name}`,
    );
  return { tables: oids, keptForeignKeys: rows[0]!.kept, definitions };
}

/**
 * Builds the indexes and keys again (a larger `maintenance_work_mem` for this transaction), then
 * adds the foreign keys, each validated by one query: IMPORT_CONFLICT for a key two rows share,
 * IMPORT_REFERENCE_MISSING for a reference the archive does not hold. Then reads the definitions
 * again: they must be the ones dropped.
 */
export async function finishIndexRebuild(
  client: pg.ClientBase,
  rebuild: IndexRebuild,
  tables: TenantTable[],
): Promise<void> {
  const byOid = new Map(tables.map((t) => [t.oid, t]));
  const { rows } = await client.query<{ memory: string; nestloop: string; mergejoin: string }>(
    `select current_setting('maintenance_work_mem') as memory, current_setting('enable_nestloop') as nestloop,
            current_setting('enable_mergejoin') as mergejoin`,
  );
  const before = rows[0]!;
  await client.query(
    `select set_config('maintenance_work_mem', case when pg_size_bytes(current_setting('maintenance_work_mem'))
              < $1::bigint * 1024 * 1024 then $1 || 'MB' else current_setting('maintenance_work_mem') end, true)`,
    [BUILD_MEMORY_MB],
  );
  // the keys and indexes first (a foreign key needs its referenced key), the foreign keys last
  const order = (d: Definition) => (d.kind === 'index' ? 1 : d.type === 'f' ? 2 : 0);
  const after = await qualifiedNames(client, async () => {
    for (const d of [...rebuild.definitions].sort((a, b) => order(a) - order(b))) {
      const table = byOid.get(d.table)!;
      // a foreign key's validation is one query: a hash anti-join, whatever the new rows' statistics say
      if (d.type === 'f')
        await client.query(
          `select set_config('enable_nestloop', 'off', true), set_config('enable_mergejoin', 'off', true)`,
        );
      try {
        await client.query(
          d.kind === 'index' ? d.definition : `alter table ${table.qualified} add constraint ${d.name} ${d.definition}`,
        );
      } catch (error) {
        throw rebuildFailure(error, table.name);
      }
    }
    return (await client.query<Definition>(DEFINITIONS_SQL, [rebuild.tables])).rows;
  });
  if (JSON.stringify(comparable(after)) !== JSON.stringify(comparable(rebuild.definitions)))
    throw new ArchiveError(
      'IMPORT_VERIFICATION_FAILED',
      'The indexes or constraints made again after the load differ from the ones dropped',
      { details: { tables: tables.filter((t) => rebuild.tables.includes(t.oid)).map((t) => t.name) } },
    );
  await client.query(
    `select set_config('maintenance_work_mem', $1, true), set_config('enable_nestloop', $2, true),
            set_config('enable_mergejoin', $3, true)`,
    [before.memory, before.nestloop, before.mergejoin],
  );
}

/**
 * Runs `fn` with only pg_catalog on the search_path: the definitions read then name every table,
 * type, function and operator schema-qualified, and replay the same way whatever the session's
 * search_path is. Restored after (a failure aborts the transaction anyway).
 */
async function qualifiedNames<T>(client: pg.ClientBase, fn: () => Promise<T>): Promise<T> {
  const { rows } = await client.query<{ previous: string }>(`select current_setting('search_path') as previous`);
  await client.query(`select set_config('search_path', 'pg_catalog', true)`);
  const result = await fn();
  await client.query(`select set_config('search_path', $1, true)`, [rows[0]!.previous]);
  return result;
}

const comparable = (ds: Definition[]) =>
  ds.map((d) => [d.kind, d.type, d.table, d.name, d.definition].join('\u0000')).sort();

/**
 * True when no table holds a row; otherwise why not. Read with row-level security off in a
 * savepoint: a policy that would hide a row from the role raises an error instead (42501).
 */
async function allEmpty(client: pg.ClientBase, tables: TenantTable[]): Promise<true | IndexRebuildSkip> {
  await client.query('savepoint tenantry_rebuild_probe');
  try {
    await client.query(`set local row_security = off`);
    const { rows } = await client.query<{ any: boolean }>(
      `select ${tables.map((t) => `exists (select from ${t.qualified})`).join(' or ')} as any`,
    );
    return rows[0]!.any ? 'not_empty' : true;
  } catch (error) {
    if (sqlStateOf(error) !== SqlState.insufficientPrivilege) throw error;
    return 'row_security';
  } finally {
    // undoes the SET (and a failed statement); the locks were taken before the savepoint
    await client.query('rollback to savepoint tenantry_rebuild_probe');
    await client.query('release savepoint tenantry_rebuild_probe');
  }
}

function rebuildFailure(error: unknown, table: string): unknown {
  const state = sqlStateOf(error);
  if (state === SqlState.uniqueViolation || state === '23P01')
    return new ArchiveError('IMPORT_CONFLICT', `Two rows of ${table} have the same key`, {
      details: { table },
      cause: error,
    });
  if (state === SqlState.foreignKeyViolation)
    return new ArchiveError(
      'IMPORT_REFERENCE_MISSING',
      `A row of ${table} references a row the archive does not have`,
      {
        details: { table },
        cause: error,
      },
    );
  if (state && /^(22|23)/.test(state))
    return new ArchiveError('IMPORT_SCHEMA_MISMATCH', `The rows of ${table} do not fit the target table (${state})`, {
      details: { table, sqlstate: state },
      cause: error,
    });
  return error;
}
