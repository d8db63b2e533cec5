import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeStatement, analyzeUncached } from '../../src/guard/analyze-statement.js';
import { loadSqlParser } from '../../src/guard/sql-parser.js';
import { TenantTableMap } from '../../src/guard/tenant-table-map.js';
import { scoped, TABLES, unscoped } from './support/statements.js';

const tables = TenantTableMap.from(TABLES, { searchPath: ['public', 'billing'] });

beforeAll(() => loadSqlParser());

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

  it('flags an INSERT without a column list when the tenant column’s place is not known', () => {
    const unknown = TenantTableMap.from(['public.notes']);
    expect(analyzeStatement('insert into notes values (1, $1, $2)', unknown).unscoped).toEqual([
      { table: 'public.notes', reason: 'insert does not set tenant_id' },
    ]);
    expect(analyzeStatement('insert into notes values (1, $1, $2)', tables).unscoped).toEqual([]);
    expect(() => TenantTableMap.from([{ table: 'notes', position: 0 }])).toThrow(/position/);
  });

  it('resolves unqualified names through the search path, and a CTE shadows a table', () => {
    const other = TenantTableMap.from(['app.notes'], { searchPath: ['app'] });
    expect(analyzeStatement('select * from notes', other).unscoped).toEqual([
      { table: 'app.notes', reason: 'select has no tenant_id predicate' },
    ]);
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
