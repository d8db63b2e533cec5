import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantCatalog } from '../../src/catalog/tenant-catalog.js';
import { createNotesTable } from '../support/notes-table.js';
import { createTestDatabase, ROLE_PASSWORD, type TestDatabase } from '../support/test-database.js';

// `tenantry sql` as a subprocess, from both sides: what acme's support statement sees and does,
// and that globex's rows and audit log stay as they were.
const exec = promisify(execFile);
const CLI = path.resolve('src/cli/main.ts');
const REASON = 'ticket 4711: customer cannot see notes';

let db: TestDatabase;
let dir: string;
const ids: Record<string, string> = {};

async function sql(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(
      process.execPath,
      ['--import', 'tsx', CLI, '--database-url', db.adminUrl, '--dir', dir, 'sql', ...args],
      {
        env: {
          ...process.env,
          TENANTRY_APP_PASSWORD: ROLE_PASSWORD,
          TENANTRY_OWNER_PASSWORD: ROLE_PASSWORD,
          TENANTRY_APP_ROLE: db.appRole,
          TENANTRY_OWNER_ROLE: db.ownerRole,
          TENANTRY_CONTEXT_SECRET: db.contextSecret,
          TENANTRY_ROUTER_ROLE: db.routerRole,
          TENANTRY_ROUTER_PASSWORD: ROLE_PASSWORD,
          TENANTRY_OPERATOR: 'alice',
          ...env,
        },
        timeout: 60_000,
      },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const snapshot = async () =>
  (await db.admin.query('select tenant_id, body from notes order by tenant_id, body')).rows as unknown[];
const auditOf = async (tenant: string) =>
  (
    await db.admin.query<{ action: string; reason: string | null; detail: Record<string, unknown> }>(
      'select action, reason, detail from tenantry.audit_log where tenant_id = $1 order by seq',
      [tenant],
    )
  ).rows;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-sql-'));
  const catalog = new TenantCatalog(db.owner);
  for (const slug of ['acme', 'globex', 'paused', 'gone']) ids[slug] = (await catalog.create({ slug, name: slug })).id;
  await catalog.suspend('paused');
  await catalog.softDelete('gone');
  await createNotesTable(db, [
    [ids.acme!, 'a1'],
    [ids.acme!, 'a2'],
    [ids.globex!, 'g1'],
  ]);
});
afterAll(async () => {
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// each run is a fresh Node process: slow on a loaded machine
describe('tenantry sql', { timeout: 300_000 }, () => {
  it("prints the tenant's rows as a table and writes the statement, operator and outcome to its audit log", async () => {
    const r = await sql([
      '--tenant',
      'acme',
      '--reason',
      REASON,
      'select body, tenant_id = tenantry.home_tenant_id() as own, null as nothing from notes where tenant_id = tenantry.home_tenant_id() order by body',
    ]);
    expect(r.stderr).not.toContain('    at ');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      'BODY  OWN   NOTHING\na1    true  NULL\na2    true  NULL\n(2 rows)\n'.replace(
        'BODY  OWN   NOTHING',
        'body  own   nothing',
      ),
    );
    expect(r.stderr).toMatch(/^audited: entry 1 in acme's audit log \(operator alice\)/);
    const log = await auditOf(ids.acme!);
    expect(log).toEqual([
      {
        action: 'support.sql',
        reason: REASON,
        detail: expect.objectContaining({ operator: 'alice', write: false, guard: 'enforce', truncated: false }),
      },
      { action: 'support.sql.done', reason: null, detail: { entry: '1', command: 'SELECT', rowCount: 2 } },
    ]);
    expect(log[0]!.detail.statement).toContain('from notes where tenant_id = tenantry.home_tenant_id()');
    expect(await auditOf(ids.globex!)).toEqual([]);
  });

  it("never reaches another tenant's rows, even unguarded and naming its id; a write needs --write", async () => {
    const before = await snapshot();
    // the guard refuses an unscoped statement, as in the app
    const unscoped = await sql(['--tenant', 'acme', '--reason', REASON, 'select body from notes order by body']);
    expect(unscoped.code).toBe(1);
    expect(unscoped.stderr).toMatch(/^error TENANT_SCOPE_MISSING: /);
    // unguarded, RLS still shows acme's rows only
    const unguarded = await sql([
      '--tenant',
      'acme',
      '--reason',
      REASON,
      '--guard',
      'off',
      '--json',
      `select body from notes where tenant_id = '${ids.globex}' or true order by body`,
    ]);
    expect(unguarded.code).toBe(0);
    expect(JSON.parse(unguarded.stdout)).toMatchObject({ rowCount: 2, rows: [['a1'], ['a2']] });
    // read-only unless --write
    const readOnly = await sql([
      '--tenant',
      'acme',
      '--reason',
      REASON,
      "update notes set body = 'changed' where tenant_id = tenantry.home_tenant_id()",
    ]);
    expect(readOnly.code).toBe(1);
    expect(readOnly.stderr).toMatch(/^error SQL_FAILED: The statement failed \(SQLSTATE 25006\)/);
    expect(await snapshot()).toEqual(before);
    // a write aimed at globex's rows changes none of them
    const aimed = await sql([
      '--tenant',
      'acme',
      '--reason',
      REASON,
      '--write',
      '--guard',
      'off',
      `update notes set body = 'taken' where tenant_id = '${ids.globex}'`,
    ]);
    expect(aimed.code).toBe(0);
    expect(aimed.stdout).toBe('UPDATE 0\n');
    expect(await snapshot()).toEqual(before);
    const own = await sql([
      '--tenant',
      'acme',
      '--reason',
      REASON,
      '--write',
      "update notes set body = body || '!' where tenant_id = tenantry.home_tenant_id()",
    ]);
    expect(own.stdout).toBe('UPDATE 2\n');
    const after = (await db.admin.query('select body from notes where tenant_id = $1 order by body', [ids.globex]))
      .rows;
    expect(after).toEqual([{ body: 'g1' }]);
    expect(await auditOf(ids.globex!)).toEqual([]);
  });

  it('refuses a missing, suspended or deleted tenant, bad SQL and a missing reason: a code, exit 1, no stack trace', async () => {
    const cases: Array<[string[], RegExp, number]> = [
      [['--tenant', 'nobody', '--reason', REASON, 'select 1'], /^error TENANT_NOT_FOUND: Tenant not found/, 1],
      [['--tenant', 'paused', '--reason', REASON, 'select 1'], /^error TENANT_SUSPENDED: /, 1],
      [['--tenant', 'gone', '--reason', REASON, 'select 1'], /^error TENANT_DELETED: /, 1],
      [
        ['--tenant', 'acme', '--reason', REASON, 'selec 1'],
        /^error SQL_FAILED: The statement failed \(SQLSTATE 42601\)/,
        1,
      ],
      [['--tenant', 'acme', '--reason', REASON, 'select * from no_such_table'], /^error SQL_FAILED: .*42P01/, 1],
      [['--tenant', 'acme', '--reason', REASON, 'select 1; select 2'], /^error INVALID_ARGUMENT: one statement/, 1],
      [['--tenant', 'acme', '--reason', 'because', 'select 1'], /^error REASON_INVALID: --reason: say why/, 1],
      [['--tenant', 'acme', '--reason', 'ticket 1\r\nInjected: yes', 'select 1'], /^error REASON_INVALID: /, 1],
      [['--tenant', 'acme', '--reason', 'ticket 1\u001b[31m red text long', 'select 1'], /^error REASON_INVALID: /, 1],
      [['--tenant', 'acme', 'select 1'], /required option '--reason <text>' not specified/, 2],
      [['--tenant', 'Bad Slug', '--reason', REASON, 'select 1'], /^error INVALID_ARGUMENT: /, 1],
      // statements that hide from the guard or outlive the command's transaction, refused before PostgreSQL
      ...[
        'do $$ declare n int; begin select count(*) into n from notes; raise exception $q$%$q$, n; end $$',
        "select set_config('tenantry.context', 'forged', true)",
        'select pg_advisory_lock(1)',
        "select pg_notify('tenantry_routes', 'x')",
        'begin',
        'commit',
        'listen tenantry_routes',
        'set role postgres',
        'reset all',
        'create table t (id int)',
        "copy notes to '/tmp/x'",
        // SQL text run out of the check's sight, and the session's signed context read out
        "select query_to_xml('select count(*) from notes', true, false, '')",
        "select pg_catalog.QUERY_TO_XML('select 1', true, false, '')",
        "select table_to_xml('notes', true, false, '')",
        "select query_to_xml_and_xmlschema('select 1', true, false, '')",
        "select current_setting('tenantry.context', true)",
        "select setting from pg_settings where name = 'tenantry.context'",
        'select * from pg_catalog.pg_show_all_settings()',
      ].map((statement): [string[], RegExp, number] => [
        ['--tenant', 'acme', '--reason', REASON, '--guard', 'off', statement],
        /^error SQL_STATEMENT_REFUSED: tenantry sql /,
        1,
      ]),
    ];
    for (const [args, message, code] of cases) {
      const r = await sql(args);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr).not.toContain('    at ');
    }
    // nothing was audited for a tenant it refused
    for (const slug of ['paused', 'gone']) expect(await auditOf(ids[slug]!)).toEqual([]);
  });
});
