import { expect } from 'vitest';
import { formatDoctorReport, type DoctorReport } from '../../src/policy/doctor.js';
import type { FindingCode } from '../../src/policy/doctor/finding.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';
import type { InstallRunOptions } from '../../src/policy/installer.js';

/** The finding with `code` on `object`; fails the test, printing the report, when there is none. */
export function findingOf(report: DoctorReport, code: FindingCode, object: string) {
  const found = report.findings.find((f) => f.code === code && f.object === object);
  expect(found, `expected ${code} on ${object} in:\n${formatDoctorReport(report)}`).toBeDefined();
  return found!;
}

/** Runs the fix of every finding with one of `codes`, in that order, as the superuser. */
export async function applyFixes(db: TestDatabase, report: DoctorReport, codes: FindingCode[]): Promise<number> {
  let applied = 0;
  for (const code of codes) {
    for (const f of report.findings.filter((x) => x.code === code)) {
      await db.admin.query(f.fix);
      applied++;
    }
  }
  return applied;
}

/**
 * What the hardened install closes for the app role (issue 16, item 4): large-object creation,
 * signalling sibling sessions, and no default timeouts. Applied by the doctor tests so that a
 * "clean" database is clean whether or not the install they run with closes these yet.
 */
export async function closeLeastPrivilege(db: TestDatabase): Promise<void> {
  await db.admin.query(`
    REVOKE EXECUTE ON FUNCTION pg_catalog.lo_create(oid), pg_catalog.lo_creat(integer),
                               pg_catalog.lo_from_bytea(oid, bytea) FROM PUBLIC;
    REVOKE EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer),
                               pg_catalog.pg_terminate_backend(integer, bigint) FROM PUBLIC;
    ALTER ROLE ${db.appRole} SET statement_timeout = '30s';
    ALTER ROLE ${db.appRole} SET lock_timeout = '5s';
    ALTER ROLE ${db.appRole} SET idle_in_transaction_session_timeout = '60s';`);
}

/** A test database (see createTestDatabase) with {@link closeLeastPrivilege} applied. */
export async function createDoctorTestDatabase(options: InstallRunOptions = {}): Promise<TestDatabase> {
  const db = await createTestDatabase(options);
  await closeLeastPrivilege(db);
  return db;
}
