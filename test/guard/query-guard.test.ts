import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TenantryError } from '../../src/errors/tenantry-error.js';
import {
  acceptFingerprint,
  readAcceptedFile,
  writeAcceptedFile,
  type AcceptedFile,
} from '../../src/guard/accepted-file.js';
import { analyzeStatement } from '../../src/guard/analyze-statement.js';
import { mergeGuardEntries, readGuardReport } from '../../src/guard/guard-report.js';
import { queryText } from '../../src/guard/query-text.js';
import { QueryGuard, type GuardReportEntry } from '../../src/guard/index.js';
import { TenantTableMap } from '../../src/guard/tenant-table-map.js';
import { UnscopedStatementError } from '../../src/guard/unscoped-statement-error.js';

const tables = TenantTableMap.from(['public.notes', 'public.comments']);
const SECRET = 'very-secret-body-text';
const unscopedSql = `select * from notes where body = '${SECRET}'`;

beforeAll(() => QueryGuard.ready());

function thrown(fn: () => void): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('QueryGuard', () => {
  it('off: checks nothing, records nothing', () => {
    const guard = new QueryGuard({ mode: 'off', tables });
    expect(() => guard.check('select * from notes')).not.toThrow();
    expect(() => guard.check("select set_config('tenantry.context', '', false)")).not.toThrow();
    expect(guard.report()).toEqual([]);
    expect(guard.stats().checked).toBe(0);
  });

  it('report: records each distinct unscoped fingerprint once, with count, first/last seen, sample and call site', () => {
    const seen: GuardReportEntry[] = [];
    const warnings: object[] = [];
    const guard = new QueryGuard({
      mode: 'report',
      tables,
      onReport: (e) => seen.push(e),
      logger: { warn: (d) => warnings.push(d) },
    });
    guard.check(unscopedSql);
    guard.check("select * from notes where body = 'other'");
    guard.check('select * from notes where body = $1');
    guard.check('delete from comments where id = $1');
    guard.check('select * from notes where tenant_id = $1');
    const report = guard.report();
    // constants and parameters fingerprint alike: the first three are one entry
    expect(report).toHaveLength(2);
    const literal = report.find((e) => e.fingerprint === analyzeStatement(unscopedSql, tables).fingerprint)!;
    expect(literal.count).toBe(3);
    expect(literal.tables).toEqual(['public.notes']);
    expect(literal.reasons).toEqual(['select has no tenant_id predicate']);
    expect(literal.sample).toBe('select * from notes where body = $1');
    expect(literal.callSite).toMatch(/test\/guard\/query-guard\.test\.ts:\d+:\d+/);
    expect(Date.parse(literal.lastSeen)).toBeGreaterThanOrEqual(Date.parse(literal.firstSeen));
    expect(literal.accepted).toBe(false);
    expect(report.find((e) => e.tables[0] === 'public.comments')!.reasons).toEqual([
      'delete has no tenant_id predicate',
    ]);
    expect(seen).toHaveLength(2);
    expect(warnings).toHaveLength(2);
    expect(JSON.stringify([report, seen, warnings])).not.toContain(SECRET);
    expect(guard.stats()).toEqual({ checked: 5, skipped: 0, unscoped: 4, refused: 0 });
  });

  it('report: never throws, even for statements that set the context, unparsable text or a failing callback', () => {
    const guard = new QueryGuard({
      mode: 'report',
      tables,
      onReport: () => {
        throw new Error('callback bug');
      },
      logger: { warn: () => undefined },
    });
    expect(() => guard.check("set tenantry.context = 'x'")).not.toThrow();
    expect(() => guard.check('selec broken')).not.toThrow();
    expect(() => guard.check('select * from notes')).not.toThrow();
    expect(
      guard
        .report()
        .map((e) => e.setsContext)
        .sort(),
    ).toEqual([false, true]);
  });

  it('enforce: refuses unscoped statements with TENANT_SCOPE_MISSING, table names and fingerprint, no values', () => {
    const guard = new QueryGuard({ mode: 'enforce', tables });
    const error = thrown(() => guard.check(unscopedSql));
    expect(error).toBeInstanceOf(UnscopedStatementError);
    expect(error).toBeInstanceOf(TenantryError);
    const e = error as UnscopedStatementError;
    expect(e.code).toBe('TENANT_SCOPE_MISSING');
    expect(e.status).toBe(500);
    expect(e.details).toEqual({
      fingerprint: analyzeStatement(unscopedSql, tables).fingerprint,
      tables: ['public.notes'],
      setsContext: false,
    });
    expect(e.message).toContain('public.notes');
    expect(`${e.message} ${JSON.stringify(e.details)} ${e.stack}`).not.toContain(SECRET);
    expect(() => guard.check(`select * from notes where tenant_id = $1 and body = '${SECRET}'`)).not.toThrow();
    expect(() => guard.check('insert into notes (tenant_id, body) values ($1, $2)')).not.toThrow();
    expect(() => guard.check('selec broken')).not.toThrow();
    expect(guard.report()).toHaveLength(1);
    expect(guard.stats().refused).toBe(1);
  });

  it('enforce: lets accepted fingerprints through, but never a statement that sets the context', () => {
    const setter = "select set_config('tenantry.context', $1, false)";
    let accepted: AcceptedFile = { accepted: [] };
    for (const sql of ['select count(*) from notes', setter]) {
      accepted = acceptFingerprint(accepted, {
        fingerprint: analyzeStatement(sql, tables).fingerprint,
        reason: 'reviewed: admin report',
      }).file;
    }
    const guard = new QueryGuard({ mode: 'enforce', tables, accepted });
    expect(() => guard.check('select count(*) from notes')).not.toThrow();
    expect(() => guard.check('select count(*) from comments')).toThrow(UnscopedStatementError);
    const error = thrown(() => guard.check(setter)) as UnscopedStatementError;
    expect(error.code).toBe('TENANT_SCOPE_MISSING');
    expect(error.setsContext).toBe(true);
    expect(guard.report().find((e) => e.tables.includes('public.notes'))!.accepted).toBe(true);
  });

  it('sampling: report mode inspects only the configured fraction; enforce ignores it', () => {
    let n = 0;
    const random = () => (n++ % 4) / 4; // 0, .25, .5, .75, …
    const guard = new QueryGuard({ mode: 'report', tables, sampleRate: 0.5, random });
    for (let i = 0; i < 8; i++) guard.check('select * from notes');
    expect(guard.stats()).toMatchObject({ checked: 4, skipped: 4 });
    expect(guard.report()[0]!.count).toBe(4);
    const enforce = new QueryGuard({ mode: 'enforce', tables, sampleRate: 0, random: () => 0.99 });
    expect(() => enforce.check('select * from notes')).toThrow(UnscopedStatementError);
    expect(() => new QueryGuard({ mode: 'report', tables, sampleRate: 2 })).toThrow(/sampleRate/);
    expect(() => new QueryGuard({ mode: 'strict' as 'off', tables })).toThrow(/mode/);
  });

  it('takes the call site from an origin captured where the statement was issued', async () => {
    const guard = new QueryGuard({ mode: 'report', tables });
    expect(guard.wantsCallSite).toBe(true);
    const origin = issuedHere();
    await new Promise((r) => setImmediate(r)); // checked later, from another stack
    guard.check('select * from comments', origin);
    expect(guard.report()[0]!.callSite).toMatch(/^issuedHere \(test\/guard\/query-guard\.test\.ts:\d+:\d+\)$/);
    expect(new QueryGuard({ mode: 'report', tables, callSite: false }).wantsCallSite).toBe(false);
    expect(new QueryGuard({ mode: 'off', tables }).wantsCallSite).toBe(false);
  });

  it('callSite: false records no call site', () => {
    const guard = new QueryGuard({ mode: 'report', tables, callSite: false });
    guard.check('select * from notes');
    expect(guard.report()[0]!.callSite).toBeUndefined();
  });

  it('writes a report file the CLI can read', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-guard-'));
    try {
      const guard = new QueryGuard({ mode: 'report', tables });
      guard.check(unscopedSql);
      const file = path.join(dir, 'nested', 'guard-report.json');
      await guard.writeReport(file);
      const report = await readGuardReport(file);
      expect(report.version).toBe(1);
      expect(report.entries).toEqual(guard.report());
      expect(await readFile(file, 'utf8')).not.toContain(SECRET);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('accepted file', () => {
  it('reads a missing file as empty, writes sorted and validated, accepts idempotently', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-accepted-'));
    try {
      const file = path.join(dir, 'tenantry.guard.json');
      expect(await readAcceptedFile(file)).toEqual({ accepted: [] });
      const now = new Date('2026-01-02T03:04:05Z');
      const first = acceptFingerprint(
        { accepted: [] },
        { fingerprint: 'ffffffffffffffff', reason: ' nightly job ', sample: 'select 1', now },
      );
      expect(first.added).toBe(true);
      const second = acceptFingerprint(first.file, { fingerprint: '0000000000000000', reason: 'admin', now });
      const again = acceptFingerprint(second.file, { fingerprint: 'ffffffffffffffff', reason: 'other reason' });
      expect(again.added).toBe(false);
      expect(again.file).toBe(second.file);
      await writeAcceptedFile(file, again.file);
      const read = await readAcceptedFile(file);
      expect(read.accepted.map((a) => a.fingerprint)).toEqual(['0000000000000000', 'ffffffffffffffff']);
      expect(read.accepted[1]).toEqual({
        fingerprint: 'ffffffffffffffff',
        reason: 'nightly job',
        sample: 'select 1',
        acceptedAt: '2026-01-02T03:04:05.000Z',
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses an empty reason, a bad fingerprint and a malformed file', async () => {
    expect(() => acceptFingerprint({ accepted: [] }, { fingerprint: 'ffffffffffffffff', reason: '   ' })).toThrow(
      /reason/,
    );
    expect(() => acceptFingerprint({ accepted: [] }, { fingerprint: 'nope', reason: 'x' })).toThrow(/fingerprint/);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-accepted-'));
    try {
      const file = path.join(dir, 'tenantry.guard.json');
      await writeFile(
        file,
        JSON.stringify({ accepted: [{ fingerprint: 'ffffffffffffffff', reason: '', sample: '', acceptedAt: 'x' }] }),
      );
      await expect(readAcceptedFile(file)).rejects.toMatchObject({
        code: 'CONFIGURATION_ERROR',
        message: expect.stringMatching(/accepted\.0\.reason/),
      });
      await writeFile(file, '{ not json');
      await expect(readAcceptedFile(file)).rejects.toMatchObject({ code: 'CONFIGURATION_ERROR' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('helpers for wiring and review', () => {
  it('queryText reads the text of every form pg.query accepts', () => {
    expect(queryText('select 1')).toBe('select 1');
    expect(queryText({ text: 'select 2', values: [] })).toBe('select 2');
    expect(queryText({ submit() {}, text: 'select 3' })).toBe('select 3');
    expect(queryText({ name: 'x' })).toBeUndefined();
    expect(queryText(undefined)).toBeUndefined();
  });

  it('mergeGuardEntries adds counts and widens first/last seen across instances', () => {
    const base = { tables: ['public.notes'], reasons: ['r'], setsContext: false, accepted: false };
    const merged = mergeGuardEntries([
      [
        {
          ...base,
          fingerprint: 'aaaaaaaaaaaaaaaa',
          count: 2,
          firstSeen: '2026-01-02T00:00:00Z',
          lastSeen: '2026-01-03T00:00:00Z',
          sample: 'late',
          callSite: 'b.ts:1',
        },
      ],
      [
        {
          ...base,
          fingerprint: 'aaaaaaaaaaaaaaaa',
          count: 3,
          firstSeen: '2026-01-01T00:00:00Z',
          lastSeen: '2026-01-02T00:00:00Z',
          sample: 'early',
          callSite: 'a.ts:1',
        },
        {
          ...base,
          fingerprint: 'bbbbbbbbbbbbbbbb',
          count: 1,
          firstSeen: '2026-01-01T00:00:00Z',
          lastSeen: '2026-01-01T00:00:00Z',
          sample: 's',
        },
      ],
    ]);
    expect(merged.map((e) => [e.fingerprint, e.count])).toEqual([
      ['aaaaaaaaaaaaaaaa', 5],
      ['bbbbbbbbbbbbbbbb', 1],
    ]);
    expect(merged[0]).toMatchObject({
      firstSeen: '2026-01-01T00:00:00Z',
      lastSeen: '2026-01-03T00:00:00Z',
      sample: 'early',
      callSite: 'a.ts:1',
    });
  });
});

function issuedHere(): Error {
  return new Error();
}
