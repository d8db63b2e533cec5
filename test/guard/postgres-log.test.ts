import { beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { csvRecords, formatOfFile, statementsOfLog } from '../../src/guard/postgres-log.js';
import { scanLog } from '../../src/guard/scan-log.js';
import { loadSqlParser } from '../../src/guard/sql-parser.js';
import { TenantTableMap } from '../../src/guard/tenant-table-map.js';

const fixture = (name: string) => readFile(path.join(import.meta.dirname, 'fixtures', name), 'utf8');
const tables = TenantTableMap.from(['public.notes', 'public.comments']);

beforeAll(() => loadSqlParser());

describe('PostgreSQL log reading', () => {
  it('stderr: statement, duration and execute lines, tab-continued lines; not parse/bind, errors or parameters', async () => {
    const statements = statementsOfLog(await fixture('postgresql.log'), 'stderr');
    expect(statements.map((s) => s.sql)).toEqual([
      "select * from notes where body = 'secret-one'",
      'select * from notes where tenant_id = $1',
      'select * from comments where id = $1',
      'select * from comments where id = $1',
      'select *\n  from notes\n where id = 7',
      "select set_config('tenantry.context', 'forged', false)",
      "update notes set body = 'x' where tenant_id = $1 and id = 3",
      'with recent as (select * from notes) select count(*) from recent',
      "select * from notes where body = 'secret-two'",
    ]);
    expect(statements[4]!.line).toBe(10);
  });

  it('csvlog: quoted fields with commas, doubled quotes and newlines', async () => {
    const statements = statementsOfLog(await fixture('postgresql.csv'), 'csvlog');
    expect(statements.map((s) => s.sql)).toEqual([
      "select * from notes where body = 'secret-one'",
      'select * from notes where tenant_id = $1',
      'select * from comments where id = $1',
      'select *\n  from notes\n where note = "a, b"',
      'reset all',
    ]);
    expect(statements.map((s) => s.line)).toEqual([1, 2, 3, 4, 8]);
    expect(csvRecords('a,"b\n""c""",\r\nd\n')).toEqual([
      { fields: ['a', 'b\n"c"', ''], line: 1 },
      { fields: ['d'], line: 3 },
    ]);
    // a torn last record (the server is still writing it) is left out, as a torn jsonlog line is
    expect(csvRecords('a,b\n\nc,"d\ne')).toEqual([{ fields: ['a', 'b'], line: 1 }]);
  });

  it('jsonlog: one object per line, message field; skips a torn line', async () => {
    const text = `${await fixture('postgresql.json')}{"timestamp":"2026-11-22 07:46:34 UTC","error_sev`;
    const statements = statementsOfLog(text, 'jsonlog');
    expect(statements.map((s) => s.sql)).toEqual([
      "select * from notes where body = 'secret-one'",
      'select * from notes where tenant_id = $1',
      'delete from comments\n where id = $1',
      "select * from notes where body = 'secret-two'",
    ]);
  });

  it('picks the format from the file name', () => {
    expect([formatOfFile('postgresql-Mon.csv'), formatOfFile('x.json'), formatOfFile('postgresql.log')]).toEqual([
      'csvlog',
      'jsonlog',
      'stderr',
    ]);
  });
});

describe('scanLog', () => {
  it('groups unscoped statements by fingerprint with counts, normalized samples and no values', async () => {
    const result = scanLog(await fixture('postgresql.log'), 'stderr', tables);
    expect(result.statements).toBe(9);
    expect(result.unparsed).toBe(0);
    const byTable = result.findings.map((f) => [f.count, f.tables.join(','), f.setsContext]);
    expect(byTable).toEqual([
      [2, 'public.notes', false], // the two body = '…' selects share a fingerprint
      [2, 'public.comments', false],
      [1, 'public.notes', false],
      [1, '', true],
      [1, 'public.notes', false],
    ]);
    expect(result.findings[0]!.sample).toBe('select * from notes where body = $1');
    expect(result.findings[0]!.firstLine).toBe(2);
    expect(result.findings.find((f) => f.sample.startsWith('with'))!.reasons).toEqual([
      'select has no tenant_id predicate (in a CTE)',
    ]);
    expect(JSON.stringify(result)).not.toMatch(/secret-|forged/);
  });

  it('finds nothing in a log of scoped statements', () => {
    const log = '2026-11-22 07:46:33.124 UTC [1] LOG:  statement: select * from notes where tenant_id = $1\n';
    expect(scanLog(log, 'stderr', tables)).toEqual({ statements: 1, unparsed: 0, findings: [] });
  });
});
