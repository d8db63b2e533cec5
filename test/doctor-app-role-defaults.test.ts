// Defaults stored for the app role reach every tenant's new sessions, and PostgreSQL lets a role
// change its own: a tenant's injected DO block can run ALTER ROLE current_user SET … (a TenantPool
// refuses a plain ALTER ROLE before sending it; a DO block runs, and only quarantines its
// session). Doctor reports defaults other than install's timeouts, by name, with a fix that works.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../src/index.js';
import { runDoctor } from '../src/policy/doctor.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { applyFixes } from './support/doctor-findings.js';

let db: TestDatabase;
const defaultsFinding = async () =>
  (await runDoctor(db.adminUrl)).findings.find((f) => f.code === 'APP_ROLE_SESSION_DEFAULTS');
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.admin.query(`alter role ${db.appRole} reset all`).catch(() => undefined);
  await db?.drop();
});

describe('APP_ROLE_SESSION_DEFAULTS', () => {
  it("a clean install has none; a tenant's DO block planting one is reported by name and fixed", async () => {
    expect(await defaultsFinding()).toBeUndefined();
    const pool = db.appPool({ max: 1 });
    try {
      await expect(
        runAs(randomUUID(), () => pool.query('alter role current_user set extra_float_digits = -15')),
      ).rejects.toMatchObject({ code: 'UNSUPPORTED' });
      await runAs(randomUUID(), () =>
        pool.query(`do $$ begin execute 'alter role current_user set extra_float_digits = -15'; end $$`),
      );
    } finally {
      await pool.end();
    }
    await db.admin.query(`alter role ${db.appRole} in database ${db.name} set default_transaction_read_only = on`);
    // one name stored in both places: the fix resets both
    await db.admin.query(`alter role ${db.appRole} in database ${db.name} set extra_float_digits = 1`);
    const report = await runDoctor(db.adminUrl);
    const finding = report.findings.find((f) => f.code === 'APP_ROLE_SESSION_DEFAULTS');
    expect(finding).toMatchObject({ severity: 'warning', object: db.appRole });
    expect(finding!.message).toContain('default_transaction_read_only, extra_float_digits');
    expect(finding!.message).not.toContain('-15');
    expect(await applyFixes(db, report, ['APP_ROLE_SESSION_DEFAULTS'])).toBe(1);
    expect(await defaultsFinding()).toBeUndefined();
    // install's own timeouts stay, and are not reported
    const { rows } = await db.admin.query(
      `select count(*)::int as n from pg_db_role_setting s, unnest(s.setconfig) c
        where s.setrole = (select oid from pg_roles where rolname = $1) and c like 'idle_in_transaction_session_timeout=%'`,
      [db.appRole],
    );
    expect(rows[0].n).toBe(1);
  });
});
