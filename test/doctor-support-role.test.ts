import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../src/context/tenant-context.js';
import { TenantPool } from '../src/data/tenant-pool.js';
import { runDoctor } from '../src/policy/doctor.js';
import type { Finding } from '../src/policy/doctor/finding.js';
import { createNotesTable } from './support/notes-table.js';
import type { TestDatabase } from './support/test-database.js';
import { createDoctorTestDatabase } from './support/doctor-findings.js';

const A = randomUUID();
let db: TestDatabase;
let support: string;
let supportPool: TenantPool;

beforeAll(async () => {
  support = `ts_${randomBytes(5).toString('hex')}_support`;
  db = await createDoctorTestDatabase({ supportRole: support });
  await db.owner.query(`insert into tenantry.tenants (id, slug, name) values ($1, 'support-a', 'A')`, [A]);
  await createNotesTable(db, [
    [A, 'a1'],
    [A, 'a2'],
  ]);
  supportPool = new TenantPool({ connectionString: db.supportUrl!, contextSecret: db.contextSecret, max: 2 });
});

afterAll(async () => {
  // pg-pool's end() resolves before every socket closed: DROP DATABASE … WITH (FORCE) may still terminate one (57P01)
  supportPool?.on('error', () => undefined);
  await supportPool?.end();
  await db?.drop();
});

async function supportFindings(): Promise<Finding[]> {
  return (await runDoctor(db.adminUrl)).findings.filter((f) => f.code.startsWith('SUPPORT_'));
}

/** Plants a defect, expects exactly these findings, applies their fixes, expects a clean report. */
async function plantAndFix(plant: string, expected: Array<[string, string]>): Promise<void> {
  await db.admin.query(plant);
  const found = await supportFindings();
  expect(found.map((f) => [f.code, f.object])).toEqual(expected);
  for (const finding of found) await db.admin.query(finding.fix);
  expect(await supportFindings()).toEqual([]);
}

describe('doctor: the support role', () => {
  it('is clean as installed, and the role really is gated: no grant, no rows', async () => {
    expect((await runDoctor(db.adminUrl)).findings).toEqual([]);
    const seen = await runAs(A, () => supportPool.query('select count(*)::int as n from notes'));
    expect(seen.rows[0].n).toBe(0);
  });

  it('flags a missing grant policy, which really opens the tenant to the support role', async () => {
    await db.admin.query('drop policy tenantry_support_read on notes');
    // the wall is gone: the support role reads the tenant without any staff grant
    const leaked = await runAs(A, () => supportPool.query('select count(*)::int as n from notes'));
    expect(leaked.rows[0].n).toBe(2);
    const found = await supportFindings();
    expect(found.map((f) => [f.code, f.object])).toEqual([['SUPPORT_POLICY_MISSING', 'public.notes']]);
    for (const finding of found) await db.admin.query(`set role ${db.ownerRole}; ${finding.fix} reset role;`);
    expect(await supportFindings()).toEqual([]);
    const closed = await runAs(A, () => supportPool.query('select count(*)::int as n from notes'));
    expect(closed.rows[0].n).toBe(0);
  });

  it('flags BYPASSRLS, memberships, write grants and the private schema, each with a working fix', async () => {
    await plantAndFix(`alter role ${support} bypassrls`, [['SUPPORT_ROLE_UNSAFE', support]]);
    await plantAndFix(`grant ${db.ownerRole} to ${support}`, [['SUPPORT_ROLE_UNSAFE', support]]);
    await plantAndFix(`grant insert, update on notes to ${support}`, [['SUPPORT_ROLE_CAN_WRITE', 'public.notes']]);
    await plantAndFix(`grant usage on schema tenantry_private to ${support}`, [
      ['SUPPORT_ROLE_REACHES_PRIVATE', 'tenantry_private'],
    ]);
  });
});
