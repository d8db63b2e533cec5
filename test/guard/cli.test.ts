import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { guardCommand } from '../../src/cli/guard-command.js';
import { scanLogCommand } from '../../src/cli/scan-log-command.js';
import { analyzeStatement } from '../../src/guard/analyze-statement.js';
import { QueryGuard } from '../../src/guard/query-guard.js';
import { TenantTableMap } from '../../src/guard/tenant-table-map.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

const exec = promisify(execFile);
const TSX = path.resolve('node_modules/.bin/tsx');
const CLI = path.resolve('src/cli/main.ts');
const FIXTURES = path.resolve('test/guard/fixtures');
const tables = TenantTableMap.from(['public.notes', 'public.comments']);

let dir: string;
let db: TestDatabase;

/** Runs the commands as a subprocess; never throws, returns code and output. */
async function tenantry(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(TSX, [CLI, ...args], { cwd: dir });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Runs a command builder in-process, capturing what it prints and the exit code it sets. */
async function run(
  command: ReturnType<typeof guardCommand>,
  args: string[],
): Promise<{ code: number; stdout: string }> {
  const out: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((line: unknown) => void out.push(String(line)));
  const before = process.exitCode;
  try {
    await command.exitOverride().parseAsync(args, { from: 'user' });
    return { code: Number(process.exitCode ?? 0), stdout: out.join('\n') };
  } finally {
    process.exitCode = before;
    log.mockRestore();
  }
}

beforeAll(async () => {
  await QueryGuard.ready();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-guard-cli-'));
  db = await createTestDatabase();
  await db.owner.query(`
    create table notes (id serial primary key, tenant_id uuid not null, body text);
    create table comments (id serial primary key, tenant_id uuid not null, note_id int);
    select tenantry.register_tenant_table('notes');
    select tenantry.register_tenant_table('comments');`);
});
afterAll(async () => {
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

describe('tenantry guard report / accept', () => {
  it('walks report → accept → enforce, as a subprocess', async () => {
    const guard = new QueryGuard({ mode: 'report', tables });
    guard.check("select * from notes where body = 'secret-body'");
    guard.check('delete from comments where id = $1');
    guard.check('select * from notes where tenant_id = $1');
    await guard.writeReport(path.join(dir, '.tenantry/guard-report.json'));
    const fingerprint = analyzeStatement('select * from notes where body = $1', tables).fingerprint;

    const report = await tenantry('guard', 'report');
    expect(report.code).toBe(0);
    expect(report.stdout).toContain('2 unscoped statements');
    expect(report.stdout).toContain(`REVIEW    ${fingerprint}  ×1  public.notes`);
    expect(report.stdout).toContain('select * from notes where body = $1');
    expect(report.stdout).not.toContain('secret-body');

    expect((await tenantry('guard', 'accept', fingerprint)).code).toBe(2); // --reason is required
    const blank = await tenantry('guard', 'accept', fingerprint, '--reason', '  ');
    expect(blank.code).toBe(1);
    expect(blank.stderr).toContain('INVALID_ARGUMENT');
    const accepted = await tenantry('guard', 'accept', fingerprint, '--reason', 'admin export, reviewed');
    expect(accepted.code).toBe(0);
    const again = await tenantry('guard', 'accept', fingerprint, '--reason', 'twice');
    expect(again.stdout).toContain('already accepted');
    const file = JSON.parse(await readFile(path.join(dir, 'tenantry.guard.json'), 'utf8'));
    expect(file.accepted).toEqual([
      {
        fingerprint,
        reason: 'admin export, reviewed',
        sample: 'select * from notes where body = $1',
        acceptedAt: expect.any(String),
      },
    ]);

    const json = JSON.parse((await tenantry('guard', 'report', '--json')).stdout) as Array<{
      fingerprint: string;
      accepted: boolean;
    }>;
    expect(json.find((e) => e.fingerprint === fingerprint)!.accepted).toBe(true);
    expect(json.filter((e) => !e.accepted)).toHaveLength(1);

    const enforce = new QueryGuard({ mode: 'enforce', tables, accepted: file });
    expect(() => enforce.check("select * from notes where body = 'other'")).not.toThrow();
    expect(() => enforce.check('delete from comments where id = $1')).toThrow(
      expect.objectContaining({ code: 'TENANT_SCOPE_MISSING' }),
    );
  });

  it('merges several report files (in-process)', async () => {
    const files = [path.join(dir, 'r1.json'), path.join(dir, 'r2.json')];
    for (const [i, file] of files.entries()) {
      const guard = new QueryGuard({ mode: 'report', tables });
      for (let n = 0; n <= i; n++) guard.check('select * from comments');
      await guard.writeReport(file);
    }
    const r = await run(
      guardCommand(() => ({})),
      ['report', '--file', ...files, '--accepted', path.join(dir, 'none.json'), '--json'],
    );
    const entries = JSON.parse(r.stdout) as Array<{ count: number; tables: string[] }>;
    expect(entries.map((e) => [e.count, e.tables])).toEqual([[3, ['public.comments']]]);
  });

  it('fails clearly without a report, and refuses to accept a context setter (in-process)', async () => {
    const missing = run(
      guardCommand(() => ({})),
      ['report', '--file', path.join(dir, 'nope.json')],
    );
    await expect(missing).rejects.toMatchObject({ code: 'CONFIGURATION_ERROR' });
    const guard = new QueryGuard({ mode: 'report', tables });
    guard.check("set tenantry.context = 'x'");
    const reportFile = path.join(dir, 'setter-report.json');
    await guard.writeReport(reportFile);
    const setter = guard.report()[0]!.fingerprint;
    await expect(
      run(
        guardCommand(() => ({})),
        ['accept', setter, '--reason', 'x', '--report', reportFile, '--file', path.join(dir, 'g.json')],
      ),
    ).rejects.toThrow(/cannot be accepted/);
  });
});

describe('the tenantry binary', () => {
  it('has the guard and scan-log commands', async () => {
    const main = path.resolve('src/cli/main.ts');
    const log = path.join(FIXTURES, 'postgresql.log');
    const scan = await exec(TSX, [main, 'scan-log', log, '--tables', 'notes,comments'], { cwd: dir }).then(
      () => ({ code: 0, stdout: '' }),
      (e: { code: number; stdout: string }) => e,
    );
    expect(scan.code).toBe(1);
    expect(scan.stdout).toContain('9 statements scanned, 5 unscoped on tenant tables');
    const help = await exec(TSX, [main, 'guard', '--help'], { cwd: dir });
    expect(help.stdout).toMatch(/report \[options\][\s\S]*accept \[options\] <fingerprint>/);
  });
});

describe('tenantry scan-log', () => {
  it('reports unscoped statements by fingerprint and exits 1, for each format (subprocess)', async () => {
    // the body = '…' select: how often, and where first, in each fixture
    const notes: Record<string, [number, number]> = {
      'postgresql.log': [2, 2],
      'postgresql.csv': [1, 1],
      'postgresql.json': [2, 1],
    };
    for (const [name, [count, line]] of Object.entries(notes)) {
      await copyFile(path.join(FIXTURES, name), path.join(dir, name));
      const r = await tenantry('scan-log', name, '--tables', 'public.notes,comments');
      expect(r.code, name).toBe(1);
      expect(r.stdout).toContain(`×${count}  public.notes  (first at line ${line})`);
      expect(r.stdout).toContain('public.comments');
      expect(r.stdout).not.toMatch(/secret-|forged/);
    }
  });

  it('exits 0 on a clean log; --json; --format overrides the extension (in-process)', async () => {
    const clean = path.join(dir, 'clean.txt');
    await writeFile(
      clean,
      '2026-11-22 07:46:33.124 UTC [1] LOG:  statement: select * from notes where tenant_id = $1\n',
    );
    const ok = await run(
      scanLogCommand(() => ({})),
      [clean, '--tables', 'notes'],
    );
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('1 statement scanned, 0 unscoped on tenant tables');
    const jsonlog = path.join(dir, 'log.txt');
    await copyFile(path.join(FIXTURES, 'postgresql.json'), jsonlog);
    const r = await run(
      scanLogCommand(() => ({})),
      [jsonlog, '--format', 'jsonlog', '--tables', 'notes,comments', '--json'],
    );
    expect(r.code).toBe(1);
    const result = JSON.parse(r.stdout) as { statements: number; findings: Array<{ count: number; tables: string[] }> };
    expect(result.statements).toBe(4);
    expect(result.findings.map((f) => [f.count, f.tables])).toEqual([
      [2, ['public.notes']],
      [1, ['public.comments']],
    ]);
  });

  it('says plainly that a log file is missing: exit 1, one line, no stack (subprocess)', async () => {
    const r = await tenantry('scan-log', 'no-such.log', '--tables', 'notes');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).toBe('error INVALID_ARGUMENT: Cannot read the log file no-such.log: no such file');
  });

  it('reads the tenant tables from the registry with --database-url', async () => {
    const r = await tenantry(
      '--database-url',
      db.adminUrl,
      'scan-log',
      path.join(FIXTURES, 'postgresql.log'),
      '--json',
    );
    expect(r.code).toBe(1);
    const result = JSON.parse(r.stdout) as { findings: Array<{ tables: string[] }> };
    expect(new Set(result.findings.flatMap((f) => f.tables))).toEqual(new Set(['public.notes', 'public.comments']));
  });
});
