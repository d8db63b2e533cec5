import { expect } from 'vitest';
import { formatDoctorReport, type DoctorReport } from '../../src/policy/doctor.js';
import type { FindingCode } from '../../src/policy/doctor/finding.js';
import type { TestDatabase } from './test-database.js';

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
