import type { Finding } from './finding.js';
import { scopedRows, type DoctorScope } from './doctor-scope.js';

/**
 * The shape of tenant tables, where one tenant's work costs the others: a foreign key none of
 * whose columns leads an index (a delete or key update of the referenced row scans the
 * referencing table, every tenant's rows, under lock), two indexes with the same definition (every tenant's
 * writes pay twice), and no primary key (rows a tenant export, a move or logical replication
 * cannot identify). Warnings.
 */
export async function checkTableShape(scope: DoctorScope): Promise<Finding[]> {
  return [...(await unindexedForeignKeys(scope)), ...(await duplicateIndexes(scope)), ...(await noPrimaryKey(scope))];
}

async function unindexedForeignKeys(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<{ table_name: string; constraint_sql: string; columns: string[] }>(
    scope,
    `SELECT t.name AS table_name, quote_ident(con.conname) AS constraint_sql,
            ARRAY(SELECT quote_ident(a.attname) FROM unnest(con.conkey) WITH ORDINALITY k(attnum, i)
                    JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.i) AS columns
       FROM tenant_table t
       JOIN pg_constraint con ON con.conrelid = t.oid AND con.contype = 'f'
      WHERE NOT EXISTS (
        -- an index led by one of the foreign key's columns narrows the lookup: for a key that pairs
        -- the tenant columns, the tenant index every registered table has confines it to the rows
        -- of the tenant whose delete causes it, so its cost stays with that tenant
        SELECT FROM pg_index i
         WHERE i.indrelid = t.oid AND i.indisvalid AND i.indpred IS NULL AND i.indkey[0] = ANY (con.conkey))
      ORDER BY 1, 2`,
  );
  return rows.map((r) => ({
    code: 'FOREIGN_KEY_UNINDEXED',
    severity: 'warning',
    object: `${r.constraint_sql} on ${r.table_name}`,
    message: `No index on ${r.table_name} starts with a column of foreign key ${r.constraint_sql} (${r.columns.join(', ')}): deleting or re-keying a referenced row scans ${r.table_name} across every tenant while holding its locks, so one tenant's delete slows the others.`,
    fix: `CREATE INDEX ON ${r.table_name} (${r.columns.join(', ')});`,
  }));
}

async function duplicateIndexes(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<{
    table_name: string;
    index_name: string;
    kept: string;
    constraint_sql: string | null;
    dependents: { table: string; name: string; definition: string }[];
  }>(
    scope,
    `, idx AS (
       SELECT t.name AS table_name, i.indexrelid, format('%I.%I', n.nspname, ic.relname) AS index_name,
              (SELECT quote_ident(con.conname) FROM pg_constraint con WHERE con.conindid = i.indexrelid AND con.conrelid = t.oid AND con.contype IN ('p', 'u', 'x') LIMIT 1) AS constraint_sql,
              i.indisprimary AS is_primary,
              -- foreign keys of other tables stand on the index of the referenced key
              (SELECT coalesce(jsonb_agg(jsonb_build_object('table', f.conrelid::regclass::text, 'name', quote_ident(f.conname),
                                                            'definition', pg_get_constraintdef(f.oid)) ORDER BY f.conname), '[]')
                 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = i.indexrelid) AS dependents,
              -- two indexes are the same when key, included columns, operator classes, collations,
              -- expressions, predicate, access method and uniqueness all are
              concat_ws('|', i.indkey::text, i.indnkeyatts, i.indclass::text, i.indcollation::text, i.indoption::text,
                        pg_get_expr(i.indexprs, i.indrelid), pg_get_expr(i.indpred, i.indrelid), ic.relam, i.indisunique,
                        to_jsonb(i) ->> 'indnullsnotdistinct') AS shape
         FROM tenant_table t
         JOIN pg_index i ON i.indrelid = t.oid AND i.indisvalid
         JOIN pg_class ic ON ic.oid = i.indexrelid
         JOIN pg_namespace n ON n.oid = ic.relnamespace
     ), ranked AS (
       -- keep the primary key, else one a constraint stands on, else the oldest
       SELECT idx.*, first_value(index_name) OVER w AS kept, row_number() OVER w AS rank
         FROM idx WINDOW w AS (PARTITION BY table_name, shape ORDER BY is_primary DESC, constraint_sql IS NULL, indexrelid)
     )
     SELECT table_name, index_name, kept, constraint_sql, dependents FROM ranked WHERE rank > 1 ORDER BY 1, 2`,
  );
  return rows.map((r) => {
    const drop =
      r.constraint_sql === null
        ? `DROP INDEX ${r.index_name};`
        : `ALTER TABLE ${r.table_name} DROP CONSTRAINT ${r.constraint_sql};`;
    // a foreign key holds on to the index it was created against: drop it, then add it back against the index kept
    const fix = [
      ...r.dependents.map((f) => `ALTER TABLE ${f.table} DROP CONSTRAINT ${f.name};`),
      drop,
      ...r.dependents.map((f) => `ALTER TABLE ${f.table} ADD CONSTRAINT ${f.name} ${f.definition};`),
    ].join(' ');
    return {
      code: 'DUPLICATE_INDEX',
      severity: 'warning',
      object: r.index_name,
      message: `Index ${r.index_name} on ${r.table_name} has the same definition as ${r.kept}: every write of every tenant maintains both.${r.constraint_sql === null ? '' : ` Constraint ${r.constraint_sql} stands on it: dropping the constraint drops the index, ${r.kept} keeps enforcing the same.`}${r.dependents.length === 0 ? '' : ` Foreign key${r.dependents.length === 1 ? '' : 's'} ${r.dependents.map((f) => `${f.name} on ${f.table}`).join(', ')} stand${r.dependents.length === 1 ? 's' : ''} on it and ${r.dependents.length === 1 ? 'is' : 'are'} re-created.`}`,
      fix,
    } satisfies Finding;
  });
}

async function noPrimaryKey(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<{ name: string; tenant_sql: string }>(
    scope,
    // a replica identity (FULL, or a unique index) identifies rows for moves and exports as well
    `SELECT t.name, t.tenant_sql FROM tenant_table t JOIN pg_class c ON c.oid = t.oid
      WHERE NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = t.oid AND (i.indisprimary OR (c.relreplident = 'i' AND i.indisreplident)))
        AND c.relreplident <> 'f'
      ORDER BY 1`,
  );
  return rows.map((r) => ({
    code: 'TENANT_TABLE_NO_PRIMARY_KEY',
    severity: 'warning',
    object: r.name,
    message: `Tenant table ${r.name} has no primary key: a tenant's rows cannot be told apart by key when they are exported, moved to another placement (logical replication needs a replica identity) or compared after a move.`,
    fix: `ALTER TABLE ${r.name} ADD PRIMARY KEY (${r.tenant_sql}, <key columns>); -- or, when no columns identify a row: ALTER TABLE ${r.name} REPLICA IDENTITY FULL;`,
  }));
}
