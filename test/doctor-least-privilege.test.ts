// What the app role can do to other tenants without reading a row: create large objects, cancel
// or terminate its sibling sessions. Doctor reports each with a fix that works, checked here as
// the app role. (Locks without a timeout: APP_ROLE_TIMEOUTS_MISSING, with the install checks.)
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { runDoctor, type DoctorReport } from '../src/policy/doctor.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { applyFixes, findingOf } from './support/doctor-findings.js';

const CODES = ['APP_CAN_CREATE_LARGE_OBJECTS', 'APP_CAN_SIGNAL_SESSIONS'] as const;

function leastPrivilege(report: DoctorReport): string[] {
  return report.findings.filter((f) => (CODES as readonly string[]).includes(f.code)).map((f) => f.code);
}

async function asApp<T>(db: TestDatabase, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: db.directAppUrl ?? db.appUrl });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

describe('doctor on what the app role can do beside reading rows', () => {
  let db: TestDatabase;
  let signaller: string;
  beforeAll(async () => {
    // a plain install: whatever it leaves open, doctor must see
    db = await createTestDatabase();
    signaller = `${db.name}_signal`;
    await db.admin.query(`
      GRANT EXECUTE ON FUNCTION pg_catalog.lo_create(oid), pg_catalog.lo_creat(integer), pg_catalog.lo_from_bytea(oid, bytea) TO PUBLIC;
      GRANT EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer), pg_catalog.pg_terminate_backend(integer, bigint) TO PUBLIC;
      CREATE ROLE ${signaller} NOLOGIN;
      GRANT pg_signal_backend TO ${signaller};
      GRANT ${signaller} TO ${db.appRole};`);
  });
  afterAll(async () => {
    await db?.drop();
    const root = new pg.Client({ connectionString: inject('adminUrl') });
    await root.connect();
    await root.query(`drop role if exists ${signaller}`).catch(() => undefined);
    await root.end();
  });

  it('reports large objects and signalling sibling sessions, as warnings with fixes', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(leastPrivilege(report).sort()).toEqual([...CODES]);
    const lo = findingOf(report, 'APP_CAN_CREATE_LARGE_OBJECTS', db.name);
    expect(lo.severity).toBe('warning');
    expect(lo.fix).toContain('REVOKE EXECUTE ON FUNCTION pg_catalog.lo_create(oid) FROM PUBLIC;');
    const signal = findingOf(report, 'APP_CAN_SIGNAL_SESSIONS', db.appRole);
    expect(signal.message).toContain('membership of pg_signal_backend');
    // held through another role: the fix revokes it where it was granted
    expect(signal.fix).toContain(`REVOKE pg_signal_backend FROM ${signaller};`);
  });

  it('the app role really can: it creates a large object and cancels a sibling session', async () => {
    await asApp(db, async (app) => {
      const { rows } = await app.query<{ oid: number }>('select lo_create(0) as oid');
      expect(rows[0]!.oid).toBeGreaterThan(0);
      await app.query('select lo_unlink($1)', [rows[0]!.oid]);
      await asApp(db, async (sibling) => {
        const pid = (await sibling.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
        expect((await app.query('select pg_cancel_backend($1) as ok', [pid])).rows).toEqual([{ ok: true }]);
      });
    });
  });

  it('after the fixes the app role cannot, and doctor reports none of it', async () => {
    const before = await runDoctor(db.adminUrl);
    await applyFixes(db, before, [...CODES]);
    await asApp(db, async (app) => {
      await expect(app.query('select lo_create(0)')).rejects.toMatchObject({ code: '42501' });
      await expect(app.query('select lo_from_bytea(0, $1)', [Buffer.from('x')])).rejects.toMatchObject({
        code: '42501',
      });
      await expect(app.query('select pg_terminate_backend(pg_backend_pid())')).rejects.toMatchObject({ code: '42501' });
      await expect(app.query('select pg_cancel_backend(pg_backend_pid())')).rejects.toMatchObject({ code: '42501' });
    });
    expect(leastPrivilege(await runDoctor(db.adminUrl))).toEqual([]);
  });
});
