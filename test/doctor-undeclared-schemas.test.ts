// A schema the app role can use but that install did not record as a data schema is audited like
// one: a tenant table there with row level security off is no longer invisible. A schema the app
// cannot use is not the app's reach.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDoctor, type DoctorReport } from '../src/policy/doctor.js';
import type { TestDatabase } from './support/test-database.js';
import { applyFixes, createDoctorTestDatabase, findingOf } from './support/doctor-findings.js';

function inSchema(report: DoctorReport, schema: string): string[] {
  return report.findings.filter((f) => f.object.startsWith(`${schema}.`)).map((f) => `${f.code} ${f.object}`);
}

describe('doctor on schemas the app role can use that are not data schemas', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createDoctorTestDatabase();
    await db.owner.query(`
      create schema reports;
      create table reports.notes (tenant_id uuid not null, id uuid not null default gen_random_uuid(), body text, primary key (tenant_id, id));
      create view reports.all_notes as select tenant_id, body from reports.notes;
      create schema sealed;
      create table sealed.notes (tenant_id uuid not null, body text);
      create schema tidy;
      create table tidy.notes (tenant_id uuid not null, id uuid not null default gen_random_uuid(), body text, primary key (tenant_id, id));
      select tenantry.register_tenant_table('tidy.notes');
    `);
    await db.admin.query(`
      alter table reports.notes disable row level security;
      grant usage on schema reports, tidy to ${db.appRole};
      grant select on reports.notes, reports.all_notes to ${db.appRole};
      -- sealed: the app has no USAGE, so nothing in it is reachable
      alter table sealed.notes disable row level security;
    `);
  });
  afterAll(() => db?.drop());

  it('audits them like data schemas: the unregistered tenant table with RLS off and the owner-rights view are flagged', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(inSchema(report, 'reports').sort()).toEqual([
      'TENANT_TABLE_RLS_DISABLED reports.notes',
      'TENANT_TABLE_UNREGISTERED reports.notes',
      'VIEW_NOT_SECURITY_INVOKER reports.all_notes',
    ]);
    expect(findingOf(report, 'TENANT_TABLE_UNREGISTERED', 'reports.notes').message).toContain(
      `the app role can already reach it (granted to ${db.appRole})`,
    );
    // a schema the app cannot use is out of its reach; a registered table in a usable schema is clean
    expect(inSchema(report, 'sealed')).toEqual([]);
    expect(inSchema(report, 'tidy')).toEqual([]);
    expect(report.ok).toBe(false);
  });

  it('the fixes clear them', async () => {
    const report = await runDoctor(db.adminUrl);
    await applyFixes(db, report, [
      'TENANT_TABLE_UNREGISTERED',
      'TENANT_TABLE_RLS_DISABLED',
      'TENANT_TABLE_RLS_NOT_FORCED',
      'VIEW_NOT_SECURITY_INVOKER',
    ]);
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
  });
});
