// Tenant tables where one tenant's work costs the others: a foreign key no index narrows, two
// identical indexes, no primary key. Warnings, with the close variants that are fine left alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDoctor, type DoctorReport } from '../src/policy/doctor.js';
import type { TestDatabase } from './support/test-database.js';
import { applyFixes, createDoctorTestDatabase, findingOf } from './support/doctor-findings.js';

function shape(report: DoctorReport): string[] {
  return report.findings
    .filter((f) => ['FOREIGN_KEY_UNINDEXED', 'DUPLICATE_INDEX', 'TENANT_TABLE_NO_PRIMARY_KEY'].includes(f.code))
    .map((f) => `${f.code} ${f.object}`);
}

describe('doctor on the shape of tenant tables', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createDoctorTestDatabase();
    await db.owner.query(`
      create table plans (id text primary key);
      select tenantry.register_global_table('plans');
      create table accounts (tenant_id uuid not null, id uuid not null default gen_random_uuid(), plan text references plans (id),
                             primary key (tenant_id, id));
      -- paired with the tenant: the tenant index every registered table has confines the lookup
      create table notes (tenant_id uuid not null, id uuid not null default gen_random_uuid(), account_id uuid,
                          primary key (tenant_id, id), foreign key (tenant_id, account_id) references accounts (tenant_id, id));
      create index notes_body_a on notes (tenant_id, id) where account_id is null;
      create index notes_account on notes (account_id);
      create index notes_account_again on notes (account_id);
      create index notes_account_desc on notes (account_id desc);
      create table audit_lines (tenant_id uuid not null, line text);
      create table logged (tenant_id uuid not null, line text);
      alter table logged replica identity full;
      select tenantry.register_tenant_table('accounts');
      select tenantry.register_tenant_table('notes');
      select tenantry.register_tenant_table('audit_lines');
      select tenantry.register_tenant_table('logged');
    `);
  });
  afterAll(() => db?.drop());

  it('warns about an unindexed foreign key, a duplicate index and a table without a primary key, and nothing else', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(shape(report)).toEqual([
      'DUPLICATE_INDEX public.notes_account_again',
      'FOREIGN_KEY_UNINDEXED accounts_plan_fkey on public.accounts',
      'TENANT_TABLE_NO_PRIMARY_KEY public.audit_lines',
    ]);
    expect(report.findings.every((f) => f.severity === 'warning')).toBe(true);
    expect(findingOf(report, 'FOREIGN_KEY_UNINDEXED', 'accounts_plan_fkey on public.accounts').fix).toBe(
      'CREATE INDEX ON public.accounts (plan);',
    );
    expect(findingOf(report, 'DUPLICATE_INDEX', 'public.notes_account_again').message).toContain(
      'same definition as public.notes_account',
    );
    expect(report.ok).toBe(true);
  });

  it('the fixes clear them (the primary key needs its columns chosen)', async () => {
    await applyFixes(db, await runDoctor(db.adminUrl), ['FOREIGN_KEY_UNINDEXED', 'DUPLICATE_INDEX']);
    await db.owner.query(
      'alter table audit_lines add column id bigint generated always as identity, add primary key (tenant_id, id)',
    );
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
  });
});
