import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../src/embedded/embedded-postgres.js';
import { statementsOfLog, type LogFormat } from '../../src/guard/postgres-log.js';
import { scanLog } from '../../src/guard/scan-log.js';
import { loadSqlParser } from '../../src/guard/sql-parser.js';
import { TenantTableMap } from '../../src/guard/tenant-table-map.js';

// A server of its own, so its logging settings touch no other test. Its stderr is what a
// stderr log file holds. (csvlog and jsonlog need logging_collector, which hides the readiness
// message embedded-postgres waits for: those formats are covered by hand-written fixtures.)
let server: EmbeddedServer | undefined;
const tables = TenantTableMap.from(['public.notes']);
let stderr = '';

beforeAll(async () => {
  await loadSqlParser();
  server = await startEmbeddedPostgres({
    settings: { log_statement: 'all' },
    onLog: (chunk) => {
      stderr += chunk;
    },
  });
  const client = new pg.Client({ connectionString: server.adminUrl });
  await client.connect();
  try {
    await client.query('create table notes (id int, tenant_id uuid, body text)');
    await client.query("insert into notes values (1, '00000000-0000-4000-8000-000000000001', 'secret-row')");
    await client.query('select *\n  from notes\n where id = 1'); // simple Query, multi-line
    await client.query('select * from notes where tenant_id = $1', ['00000000-0000-4000-8000-000000000001']); // execute <unnamed>
    await client.query({ name: 'by_id', text: 'select * from notes where id = $1', values: [1] }); // execute by_id
    await client.query('set log_statement = none');
    await client.query('set log_min_duration_statement = 0'); // superuser, this session only
    await client.query("select * from notes where body = 'secret-body'"); // duration: … statement:
  } finally {
    await client.end();
  }
  for (let i = 0; i < 100 && !stderr.includes('secret-body'); i++) await new Promise((r) => setTimeout(r, 50));
}, 120_000);
afterAll(() => server?.stop());

describe('scan-log on logs written by a real PostgreSQL', () => {
  it('stderr (log_statement = all, log_min_duration_statement = 0)', () => {
    const text = stderr;
    const format: LogFormat = 'stderr';
    expect(text).toContain('\t  from notes'); // PostgreSQL's tab-continued line
    const statements = statementsOfLog(text, format).map((s) => s.sql);
    expect(statements).toContain('select *\n  from notes\n where id = 1');
    expect(statements).toContain('select * from notes where tenant_id = $1');
    expect(statements).toContain('select * from notes where id = $1');
    expect(statements).toContain("select * from notes where body = 'secret-body'");
    const result = scanLog(text, format, tables);
    expect(result.unparsed).toBe(0);
    const unscoped = result.findings.map((f) => [f.sample, f.count]);
    expect(unscoped).toEqual(
      expect.arrayContaining([
        ['insert into notes values ($1, $2, $3)', 1],
        ['select * from notes where id = $1', 2], // the multi-line literal one and the prepared one share a fingerprint
        ['select * from notes where body = $1', 1],
      ]),
    );
    expect(result.findings.some((f) => f.sample.includes('tenant_id = $1'))).toBe(false);
    expect(JSON.stringify(result)).not.toMatch(/secret-/);
  });
});
