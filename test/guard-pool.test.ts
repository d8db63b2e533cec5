import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { runAs } from '../src/context/tenant-context.js';
import { QueryGuard } from '../src/guard/query-guard.js';
import { TenantTableMap } from '../src/guard/tenant-table-map.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { createNotesTable } from './support/notes-table.js';

let db: TestDatabase;
const A = randomUUID();
const B = randomUUID();

beforeAll(async () => {
  await QueryGuard.ready();
  db = await createTestDatabase();
  await createNotesTable(db, [
    [A, 'a1'],
    [B, 'b1'],
  ]);
});
afterAll(() => db?.drop());

const tables = () => TenantTableMap.from(['public.notes']);

describe('TenantPool with a query guard', () => {
  it('enforce: refuses an unscoped statement before it reaches PostgreSQL, lets scoped ones through', async () => {
    const guard = new QueryGuard({ mode: 'enforce', tables: tables() });
    const pool = db.appPool({ guard });
    const marker = `guard-${randomUUID()}`;
    await expect(runAs(A, () => pool.query(`update notes set body = '${marker}'`))).rejects.toMatchObject({
      code: 'TENANT_SCOPE_MISSING',
    });
    const seen = await db.admin.query(
      `select count(*)::int as n from pg_stat_activity where query like $1 and query not like '%pg_stat_activity%'`,
      [`%${marker}%`],
    );
    expect(seen.rows[0].n).toBe(0);
    expect((await db.admin.query('select count(*)::int as n from notes where body = $1', [marker])).rows[0].n).toBe(0);
    const ok = await runAs(A, () => pool.query('select body from notes where tenant_id = $1', [A]));
    expect(ok.rows).toEqual([{ body: 'a1' }]);
    await expect(
      runAs(A, () => pool.query(`select set_config('tenantry.context', $1, true)`, [B])),
    ).rejects.toMatchObject({ code: 'TENANT_SCOPE_MISSING' });
    expect(guard.stats().refused).toBe(2);
  });

  it('report: records the unscoped statement once with its count and still runs it (RLS still isolates)', async () => {
    const guard = new QueryGuard({ mode: 'report', tables: tables() });
    const pool = db.appPool({ guard });
    for (let i = 0; i < 3; i++) {
      const r = await runAs(B, () => pool.query('select body from notes'));
      expect(r.rows).toEqual([{ body: 'b1' }]);
    }
    const entries = guard.report();
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ count: 3, tables: ['public.notes'] });
    // the call site is the caller's line, though the statement ran after a pool hand-over
    expect(entries[0]!.callSite).toContain('guard-pool.test.ts');
  });

  it('checks a checked-out client’s statements in its caller’s stack too, and enforce refuses them there', async () => {
    const report = new QueryGuard({ mode: 'report', tables: tables() });
    const reporting = db.appPool({ guard: report, max: 1 });
    const client = await reporting.connect();
    try {
      const busy = runAs(A, () => client.query('select pg_sleep(0.05)'));
      // queued behind the first: sent later, but checked (and its call site read) now
      const queued = runAs(A, () => client.query('select body from notes where id = $1', [randomUUID()]));
      await Promise.all([busy, queued]);
    } finally {
      client.release();
    }
    expect(report.report()).toHaveLength(1);
    expect(report.report()[0]!.callSite).toContain('guard-pool.test.ts');

    const enforce = new QueryGuard({ mode: 'enforce', tables: tables() });
    const enforcing = db.appPool({ guard: enforce, max: 1 });
    const c = await enforcing.connect();
    try {
      await expect(runAs(A, () => c.query('delete from notes'))).rejects.toMatchObject({
        code: 'TENANT_SCOPE_MISSING',
      });
      // the refusal wrote nothing: the connection is still in step
      expect((await runAs(A, () => c.query('select body from notes where tenant_id = $1', [A]))).rows).toEqual([
        { body: 'a1' },
      ]);
    } finally {
      c.release();
    }
    expect((await db.admin.query('select count(*)::int as n from notes')).rows[0].n).toBe(2);
    expect(enforce.stats()).toMatchObject({ refused: 1, unscoped: 1 });
  });
});
