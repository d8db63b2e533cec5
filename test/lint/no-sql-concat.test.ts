import { describe, expect, it } from 'vitest';
import { looksLikeSql, noSqlConcat } from '../../src/lint/rules/no-sql-concat.js';
import { runRule } from './rule-tester.js';

describe('looksLikeSql', () => {
  it('recognises statements and fragments, not prose', () => {
    expect(looksLikeSql('select * from t where id = ?')).toBe(true);
    expect(looksLikeSql('  (with x as (select 1) select * from x)')).toBe(true);
    expect(looksLikeSql('-- comment\nDELETE FROM t')).toBe(true);
    expect(looksLikeSql('? where id = ?')).toBe(true);
    expect(looksLikeSql('hello ?, welcome')).toBe(false);
    expect(looksLikeSql('selection of ?')).toBe(false);
  });
});

runRule('no-sql-concat', noSqlConcat, {
  valid: [
    `pool.query('select * from recordings where id = $1', [id]);`,
    `pool.query(\`select * from recordings where id = $1\`, [id]);`,
    // constants spliced in stay constant, through const chains
    `const COLUMNS = \`id, title\`; pool.query(\`select \${COLUMNS} from recordings where id = $1\`, [id]);`,
    `const T = 'recordings'; const Q = 'select * from ' + T; pool.query(Q);`,
    `const A = 'id'; pool.query(\`select \${A}, \${A} from t\`);`,
    // quoting helpers and number conversions are safe
    `pool.query(\`set role \${quoteIdent(role)}\`);`,
    `client.query(\`select * from t limit \${Number(limit)}\`);`,
    `client.query('drop schema ' + client.escapeIdentifier(name));`,
    // tagged templates parameterise
    'db.execute(sql`select * from recordings where id = ${id}`);',
    'await sql`select * from t where id = ${id}`.execute(db);',
    'const q = sql`select ${sql.id(column)} from t`;',
    // not SQL; not a SQL method
    'logger.query(`hello ${name}, welcome`);',
    'console.log(`select ${x} from t`);',
    // a value the rule cannot see into is not judged
    'pool.query(text, values);',
    'pool.query({ text: queryText, values });',
    // a let built from constants only, and one the rule cannot see into
    `let q = 'select * from t'; if (desc) q += ' order by id desc'; pool.query(q);`,
    'let q = text; pool.query(q);',
    'let q; q = load(); pool.query(q);',
    // raw with constants
    `sql.raw('now()');`,
    `const ORDER = 'created_at desc'; db.select().from(t).orderBy(sql.raw(ORDER));`,
    `sql.lit(42);`,
    'String.raw({ raw: parts }, ...values);',
    { code: 'pool.run(`select * from t where id = ${id}`);', options: [{ methods: ['query'] }] },
  ],
  invalid: [
    {
      code: `pool.query('select * from recordings where id = ' + id);`,
      errors: [{ messageId: 'concat', data: { sink: 'pool.query', how: 'concatenation' } }],
    },
    {
      code: "await this.db.query(`select * from recordings where title = '${title}'`);",
      errors: [{ messageId: 'concat', data: { sink: 'this.db.query', how: 'template interpolation' } }],
    },
    {
      code: 'const q = `delete from recordings where id = ${id}`; await client.query(q);',
      errors: [{ messageId: 'concat', column: 73 }],
    },
    {
      code: `const where = ' where owner_id = ' + owner; pool.query('select * from t' + where);`,
      errors: [{ messageId: 'concat' }],
    },
    { code: 'pool.query(`${base} where id = ${id}`);', errors: [{ messageId: 'concat' }] },
    {
      code: 'pool.query({ text: `select * from t where id = ${id}`, values: [] });',
      errors: [{ messageId: 'concat' }],
    },
    {
      code: 'kysely.executeQuery; conn.execute(`update t set a = ${a}`);',
      errors: [{ messageId: 'concat', data: { sink: 'conn.execute', how: 'template interpolation' } }],
    },
    // a mutable variable is not a constant
    { code: `let T = 'recordings'; pool.query('select * from ' + T);`, errors: [{ messageId: 'concat' }] },
    // a let accumulating values
    {
      code: "let q = 'select * from recordings where true'; if (title) q += ` and title = '${title}'`; await pool.query(q);",
      errors: [{ messageId: 'concat', data: { sink: 'pool.query', how: 'concatenation' } }],
    },
    {
      code: "let q = 'select * from t'; q = q + ' where id = ' + id; pool.query(q);",
      errors: [{ messageId: 'concat' }],
    },
    // raw splicing of non-constants
    { code: 'sql.raw(`select * from t where id = ${id}`);', errors: [{ messageId: 'raw', data: { sink: 'sql.raw' } }] },
    {
      code: 'db.select().from(t).orderBy(sql.raw(sortColumn));',
      errors: [{ messageId: 'raw', data: { sink: 'sql.raw' } }],
    },
    { code: 'sql.lit(userInput);', errors: [{ messageId: 'raw', data: { sink: 'sql.lit' } }] },
    {
      code: "await sql.unsafe(`select * from t where name = '${name}'`);",
      errors: [{ messageId: 'raw', data: { sink: 'sql.unsafe' } }],
    },
    { code: 'sql`select * from t order by ${sql.raw(req.query.sort)}`;', errors: [{ messageId: 'raw' }] },
    {
      code: 'pool.run(`select * from t where id = ${id}`);',
      options: [{ methods: ['run'] }],
      errors: [{ messageId: 'concat' }],
    },
    {
      code: 'pool.query(`set role ${quoteIdent(role)}`);',
      options: [{ safeFunctions: [] }],
      errors: [{ messageId: 'concat' }],
    },
  ],
});
