import type { Finding } from './finding.js';
import { scopedRows, type DoctorScope } from './doctor-scope.js';

interface UniqueRow {
  table_name: string;
  tenant_sql: string;
  primary: boolean;
  constraint_sql: string | null;
  index_name: string;
  key_columns: string[];
  index_def: string;
}

interface ForeignKeyRow {
  table_name: string;
  ref_name: string;
  constraint_name: string;
  constraint_sql: string;
  columns: string[];
  ref_columns: string[];
  tenant_sql: string;
  ref_tenant_sql: string;
  definition: string;
}

/**
 * Keys on tenant tables that ignore the tenant: a UNIQUE constraint or unique index without the
 * tenant column (error: a duplicate-key error tells one tenant that another tenant's value
 * exists), a primary key without it (warning: same oracle for client-chosen keys), and a foreign
 * key between tenant tables that does not pair the tenant columns (warning: FK checks ignore RLS,
 * so a row can point at, and probe for, another tenant's row).
 */
export async function checkKeys(scope: DoctorScope): Promise<Finding[]> {
  return [...(await uniqueKeys(scope)), ...(await foreignKeys(scope))];
}

async function uniqueKeys(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<UniqueRow>(
    scope,
    `SELECT t.name AS table_name, t.tenant_sql, i.indisprimary AS primary, quote_ident(con.conname) AS constraint_sql,
            format('%I.%I', n.nspname, ic.relname) AS index_name,
            ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) k ORDER BY k) AS key_columns,
            pg_get_indexdef(i.indexrelid) AS index_def
       FROM tenant_table t
       JOIN pg_index i ON i.indrelid = t.oid AND i.indisunique
       JOIN pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_namespace n ON n.oid = ic.relnamespace
       LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = t.oid AND con.contype IN ('p', 'u')
      WHERE t.tenant_attnum IS NOT NULL
        AND NOT EXISTS (SELECT FROM generate_series(0, i.indnkeyatts - 1) k WHERE i.indkey[k] = t.tenant_attnum)
      ORDER BY t.name, index_name`,
  );
  return rows.map((r) => {
    const columns = [r.tenant_sql, ...r.key_columns].join(', ');
    if (r.primary) {
      return {
        code: 'PRIMARY_KEY_WITHOUT_TENANT',
        severity: 'warning',
        object: `${r.constraint_sql ?? r.index_name} on ${r.table_name}`,
        message: `The primary key of ${r.table_name} (${r.key_columns.join(', ')}) does not include the tenant column: where clients choose key values, a duplicate-key error reveals another tenant's row. Foreign keys referencing it must be redefined too.`,
        fix: `ALTER TABLE ${r.table_name} DROP CONSTRAINT ${r.constraint_sql}, ADD PRIMARY KEY (${columns});`,
      } satisfies Finding;
    }
    const fix = r.constraint_sql
      ? `ALTER TABLE ${r.table_name} DROP CONSTRAINT ${r.constraint_sql}, ADD CONSTRAINT ${r.constraint_sql} UNIQUE (${columns});`
      : `DROP INDEX ${r.index_name}; ${r.index_def.replace(/ USING (\w+) \(/, ` USING $1 (${r.tenant_sql}, `)};`;
    return {
      code: 'UNIQUE_WITHOUT_TENANT',
      severity: 'error',
      object: r.constraint_sql ? `${r.constraint_sql} on ${r.table_name}` : r.index_name,
      message: `${r.constraint_sql ? 'Unique constraint' : 'Unique index'} ${r.constraint_sql ?? r.index_name} on ${r.table_name} (${r.key_columns.join(', ')}) does not include the tenant column: uniqueness is checked across all tenants, so a duplicate-key error tells one tenant that another tenant has that value.`,
      fix,
    } satisfies Finding;
  });
}

async function foreignKeys(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<ForeignKeyRow>(
    scope,
    `SELECT t.name AS table_name, r.name AS ref_name, con.conname AS constraint_name, quote_ident(con.conname) AS constraint_sql,
            ARRAY(SELECT quote_ident(a.attname) FROM unnest(con.conkey) WITH ORDINALITY k(attnum, i)
                    JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.i) AS columns,
            ARRAY(SELECT quote_ident(a.attname) FROM unnest(con.confkey) WITH ORDINALITY k(attnum, i)
                    JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.i) AS ref_columns,
            t.tenant_sql, r.tenant_sql AS ref_tenant_sql, pg_get_constraintdef(con.oid) AS definition
       FROM tenant_table t
       JOIN pg_constraint con ON con.conrelid = t.oid AND con.contype = 'f'
       JOIN tenant_table r ON r.oid = con.confrelid
      WHERE t.tenant_attnum IS NOT NULL AND r.tenant_attnum IS NOT NULL
        AND NOT EXISTS (SELECT FROM generate_subscripts(con.conkey, 1) s
                         WHERE con.conkey[s] = t.tenant_attnum AND con.confkey[s] = r.tenant_attnum)
      ORDER BY t.name, con.conname`,
  );
  return rows.map((r) => {
    const pairs = r.columns
      .map((c, i) => [c, r.ref_columns[i]!] as const)
      .filter(([c, rc]) => c !== r.tenant_sql && rc !== r.ref_tenant_sql);
    const columns = [r.tenant_sql, ...pairs.map(([c]) => c)].join(', ');
    const refColumns = [r.ref_tenant_sql, ...pairs.map(([, rc]) => rc)].join(', ');
    // keep ON DELETE / ON UPDATE / MATCH / DEFERRABLE clauses as they are
    const tail = /^FOREIGN KEY \(.*?\) REFERENCES .*?\(.*?\)(.*)$/s.exec(r.definition)?.[1] ?? '';
    return {
      code: 'FOREIGN_KEY_WITHOUT_TENANT',
      severity: 'warning',
      object: `${r.constraint_sql} on ${r.table_name}`,
      message: `Foreign key ${r.constraint_name} from ${r.table_name} to ${r.ref_name} does not pair the tenant columns: foreign key checks ignore row level security, so a row can reference, and probe for, another tenant's row. The fix needs a unique key on ${r.ref_name} (${refColumns}).`,
      fix: `ALTER TABLE ${r.table_name} DROP CONSTRAINT ${r.constraint_sql}, ADD CONSTRAINT ${r.constraint_sql} FOREIGN KEY (${columns}) REFERENCES ${r.ref_name} (${refColumns})${tail};`,
    } satisfies Finding;
  });
}
