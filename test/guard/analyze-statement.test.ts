import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeStatement, analyzeUncached } from '../../src/guard/analyze-statement.js';
import { loadSqlParser } from '../../src/guard/sql-parser.js';
import { TenantTableMap } from '../../src/guard/tenant-table-map.js';

const tables = TenantTableMap.from(['public.notes', 'public.comments', { table: 'billing.invoices', column: 'org_id' }], { searchPath: ['public', 'billing'] });

beforeAll(() => loadSqlParser());

const scoped: string[] = [
  'select * from notes where tenant_id = $1',
  'select * from notes n where n.tenant_id = $1 and n.id = $2',
  "select * from public.notes where public.notes.tenant_id = 'a7c1a1c2-0000-4000-8000-000000000001'",
  'select * from notes where tenant_id = $1::uuid',
  'select * from notes where tenant_id = tenantry.current_tenant_id()',
  'select * from notes where tenant_id = (select tenantry.current_tenant_id())',
  'select * from notes where tenant_id in ($1)',
  'select * from notes where tenant_id is not distinct from $1',
  'select * from notes n join comments c on c.note_id = n.id and c.tenant_id = n.tenant_id where n.tenant_id = $1',
  'select * from notes n join comments c on c.tenant_id = n.tenant_id and c.note_id = n.id where $1 = n.tenant_id',
  'select * from notes n left join comments c on c.note_id = n.id and c.tenant_id = n.tenant_id where n.tenant_id = $1',
  'select * from notes join comments using (tenant_id) where tenant_id = $1',
  'select * from invoices where org_id = $1',
  'select * from billing.invoices i where i.org_id = $1',
  'select * from users where id = $1',
  'with mine as (select * from notes where tenant_id = $1) select * from mine',
  'select * from notes n where n.tenant_id = $1 and exists (select 1 from comments c where c.note_id = n.id and c.tenant_id = n.tenant_id)',
  'select id, (select count(*) from comments c where c.tenant_id = $1 and c.note_id = n.id) from notes n where n.tenant_id = $1',
  'select * from (select * from notes where tenant_id = $1) x',
  'select id from notes where tenant_id = $1 union all select id from comments where tenant_id = $1',
  'insert into notes (tenant_id, body) values ($1, $2)',
  'insert into notes (tenant_id, body) values ($1, $2) on conflict (id) do update set body = excluded.body',
  'insert into notes (tenant_id, body) select tenant_id, body from comments where tenant_id = $1',
  'update notes set body = $2 where tenant_id = $1 and id = $3',
  'update notes n set body = c.body from comments c where c.note_id = n.id and n.tenant_id = $1 and c.tenant_id = n.tenant_id',
  'delete from notes where id = $1 and tenant_id = $2',
  'delete from notes n using comments c where c.note_id = n.id and c.tenant_id = $1 and n.tenant_id = c.tenant_id',
  'merge into notes n using (values ($2::int, $3::text)) s(id, body) on n.tenant_id = $1 and n.id = s.id when matched then update set body = s.body',
  'copy (select * from notes where tenant_id = $1) to stdout',
  'explain select * from notes where tenant_id = $1',
  "select set_config('application_name', 'x', false)",
  'set statement_timeout = 1000',
  'begin',
  'commit',
];

const unscoped: Array<[string, string[], RegExp?]> = [
  ['select * from notes', ['public.notes'], /select has no tenant_id predicate/],
  ['select * from notes where id = $1', ['public.notes']],
  ['select * from notes where tenant_id = $1 or id = $2', ['public.notes']],
  ['select * from notes where tenant_id = any($1)', ['public.notes']],
  ['select * from notes where tenant_id is null', ['public.notes']],
  ['select * from notes n where tenant_id = n.tenant_id', ['public.notes']],
  ['select * from billing.invoices', ['billing.invoices']],
  ['select * from invoices where tenant_id = $1', ['billing.invoices']],
  ['with all_notes as (select * from notes) select * from all_notes', ['public.notes'], /in a CTE/],
  ['select * from (select * from notes) x where x.tenant_id = $1', ['public.notes'], /in a subquery/],
  ['select * from comments c where c.tenant_id = $1 and c.note_id in (select id from notes)', ['public.notes'], /in a subquery/],
  ['select id, (select count(*) from comments where note_id = n.id) from notes n where n.tenant_id = $1', ['public.comments']],
  ['select * from notes n join comments c on c.note_id = n.id where n.tenant_id = $1', ['public.comments']],
  ['select * from notes n join comments c on c.tenant_id = n.tenant_id', ['public.notes', 'public.comments']],
  // documented false positive: c is in fact limited to $1 through n, which itself is not scoped
  ['select * from notes n left join comments c on n.tenant_id = $1 and c.tenant_id = n.tenant_id', ['public.notes', 'public.comments']],
  ['select * from notes n full join comments c on c.tenant_id = n.tenant_id where n.tenant_id = $1', ['public.comments']],
  ['select * from notes n join users u on u.tenant_id = n.tenant_id where u.tenant_id = $1', ['public.notes']],
  ['select id from notes where tenant_id = $1 union select id from comments', ['public.comments']],
  ['insert into notes (body) values ($1)', ['public.notes'], /insert does not set tenant_id/],
  ['insert into notes values ($1, $2)', ['public.notes']],
  ['insert into notes (tenant_id, body) select tenant_id, body from comments', ['public.comments']],
  ['insert into notes (body) select body from comments where tenant_id = $1', ['public.notes']],
  ['update notes set body = $1 where id = $2', ['public.notes'], /update has no tenant_id predicate/],
  ['update notes n set body = c.body from comments c where c.note_id = n.id and c.tenant_id = $1', ['public.notes']],
  ['update notes n set body = c.body from comments c where c.note_id = n.id and n.tenant_id = $1', ['public.comments']],
  ['delete from notes where id = $1', ['public.notes'], /delete has no tenant_id predicate/],
  ['delete from notes n using comments c where c.note_id = n.id and c.tenant_id = $1', ['public.notes']],
  ['merge into notes n using comments c on n.id = c.note_id when matched then delete', ['public.notes', 'public.comments'], /merge has no tenant_id predicate/],
  ['copy notes to stdout', ['public.notes'], /copy of a whole tenant table/],
  ['copy notes from stdin', ['public.notes'], /copy into a whole tenant table/],
  ['copy (select * from notes) to stdout', ['public.notes'], /in a copy query/],
  ['truncate notes', ['public.notes'], /truncate/],
  ['explain analyze select * from notes', ['public.notes']],
  ['with d as (delete from notes where id = $1 returning *) select * from d', ['public.notes'], /delete has no tenant_id predicate \(in a CTE\)/],
  ['select * from notes where tenant_id = $1; select * from comments', ['public.comments']],
];

describe('analyzeStatement', () => {
  it.each(scoped)('passes a scoped statement: %s', (sql) => {
    const a = analyzeStatement(sql, tables);
    expect(a.parseError).toBeUndefined();
    expect(a.unscoped).toEqual([]);
    expect(a.setsContext).toBe(false);
  });

  it.each(unscoped)('flags %s', (sql, expected, reason) => {
    const a = analyzeStatement(sql, tables);
    expect(a.parseError).toBeUndefined();
    expect([...new Set(a.unscoped.map((u) => u.table))].sort()).toEqual([...expected].sort());
    if (reason) expect(a.unscoped.map((u) => u.reason).join('\n')).toMatch(reason);
  });

  const contextSetters = [
    "set tenantry.context = 'x'",
    "set local tenantry.context to 'x'",
    'set session tenantry.context = default',
    'reset tenantry.context',
    'reset all',
    'discard all',
    "select set_config('tenantry.context', $1, false)",
    "select pg_catalog.set_config('TENANTRY.CONTEXT', $1, true)",
    'select set_config($1, $2, false)',
    "select * from notes where tenant_id = $1 and set_config('tenantry.context', '', true) is not null",
    "with x as (select set_config('tenantry.context', $1, true)) select * from x",
    "alter role app set tenantry.context = 'x'",
  ];
  it.each(contextSetters)('flags a statement that sets the tenant setting: %s', (sql) => {
    expect(analyzeStatement(sql, tables).setsContext).toBe(true);
  });

  it('fingerprints like libpg-query: constants do not change it, structure does', () => {
    const a = analyzeStatement('select * from notes where id = 1', tables);
    const b = analyzeStatement('select * from notes where id = 2', tables);
    const c = analyzeStatement('select * from notes where tenant_id = $1', tables);
    expect(a.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(a.fingerprint).not.toBe(c.fingerprint);
  });

  it('reports a parse error instead of throwing', () => {
    const a = analyzeStatement('selec * form notes', tables);
    expect(a.parseError).toMatch(/syntax error/);
    expect(a.fingerprint).toMatch(/^unparsed-[0-9a-f]{16}$/);
    expect(a.unscoped).toEqual([]);
  });

  it('resolves unqualified names through the search path, and a CTE shadows a table', () => {
    const other = TenantTableMap.from(['app.notes'], { searchPath: ['app'] });
    expect(analyzeStatement('select * from notes', other).unscoped).toEqual([{ table: 'app.notes', reason: 'select has no tenant_id predicate' }]);
    expect(analyzeStatement('select * from public.notes', other).unscoped).toEqual([]);
    expect(analyzeStatement('with notes as (select 1 as id) select * from notes', other).unscoped).toEqual([]);
    expect(analyzeStatement('with notes as (select 1 as id) select * from app.notes', other).unscoped).toHaveLength(1);
  });

  it('caches by statement text, per table map', () => {
    const sql = 'select * from notes where body = $1';
    expect(analyzeStatement(sql, tables)).toBe(analyzeStatement(sql, tables));
    expect(analyzeUncached(sql, tables)).not.toBe(analyzeStatement(sql, tables));
    const none = new TenantTableMap([]);
    expect(analyzeStatement(sql, none).unscoped).toEqual([]);
  });
});
