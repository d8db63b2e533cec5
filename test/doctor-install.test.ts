import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDoctor, type DoctorReport } from '../src/policy/doctor.js';
import { installDigest, installSql } from '../src/policy/install-sql.js';
import { install } from '../src/policy/installer.js';
import { ROLE_PASSWORD, type TestDatabase } from './support/test-database.js';
import { createDoctorTestDatabase, findingOf } from './support/doctor-findings.js';
import { hasFunction, storedDigest } from './support/install-probes.js';

// INSTALL_OUTDATED: a database whose last install ran another Tenantry version's install SQL
// (tenantry.meta install_digest missing or different from this library's installDigest()).

const outdated = (report: DoctorReport) => report.findings.filter((f) => f.code === 'INSTALL_OUTDATED');

describe('install digest', () => {
  it('is the SHA-256 of the install SQL, the same whatever the options and secrets', () => {
    const digest = installDigest();
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    const rendered = [
      installSql(),
      installSql({
        appRole: 'my_app',
        ownerRole: 'my_owner',
        supportRole: 'my_support',
        appPassword: 'secret-1',
        ownerPassword: 'secret-2',
        supportPassword: 'secret-3',
      }),
      installSql({ contextMode: 'unsigned', dataSchemas: ['public', 'app'], eventTrigger: false }),
    ];
    for (const sql of rendered) {
      expect(sql).toContain(`('install_digest', '${digest}')`);
      // the digest is not taken over what it is stored in (it cannot be), nor over this deployment's SQL
      expect(createHash('sha256').update(sql).digest('hex')).not.toBe(digest);
    }
    // the digest's input: the default install, the unsigned one and one with a support role, each
    // with the digest row left out (a change to any mode's SQL changes it)
    const canonical = [
      installSql(),
      installSql({ contextMode: 'unsigned' }),
      installSql({ supportRole: 'tenantry_support' }),
    ].map((sql) => sql.replace(`,\n  ('install_digest', '${digest}')`, ''));
    for (const sql of canonical) expect(sql).not.toContain('install_digest');
    const hash = createHash('sha256');
    for (const sql of canonical) hash.update(sql).update('\0');
    expect(hash.digest('hex')).toBe(digest);
  });
});

describe('doctor: INSTALL_OUTDATED', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createDoctorTestDatabase();
  });
  afterAll(() => db?.drop());

  it("finds nothing after a fresh install, which records this version's digest", async () => {
    expect(await storedDigest(db)).toBe(installDigest());
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
  });

  it("warns when the recorded digest is another version's", async () => {
    await db.admin.query(`update tenantry.meta set value = 'old' where key = 'install_digest'`);
    const report = await runDoctor(db.adminUrl);
    expect(outdated(report)).toHaveLength(1);
    const finding = findingOf(report, 'INSTALL_OUTDATED', db.name);
    expect(finding.severity).toBe('warning');
    expect(report.ok).toBe(true);
    expect(finding.message).toContain('installed by another Tenantry version');
    expect(finding.message).toContain(`this version's is ${installDigest().slice(0, 12)}`);
    expect(finding.fix).toContain(`install --app-role ${db.appRole} --owner-role ${db.ownerRole} (`);
    expect(finding.fix).toContain('tenantry install --everywhere');
  });

  it('warns when no digest is recorded (an older install); install again restores what it lacked and clears the finding', async () => {
    await db.admin.query(`delete from tenantry.meta where key = 'install_digest'`);
    // an install from before these functions existed (tenantry_self goes with home_tenant_id)
    await db.admin.query(`drop function tenantry.home_tenant_id() cascade; drop function tenantry.is_moving()`);
    const report = await runDoctor(db.adminUrl);
    expect(outdated(report).map((f) => f.object)).toEqual([db.name]);
    expect(findingOf(report, 'INSTALL_OUTDATED', db.name).message).toContain('records no install digest');

    await install(db.adminUrl, { appRole: db.appRole, ownerRole: db.ownerRole });
    expect(await hasFunction(db, 'tenantry.home_tenant_id()')).toBe(true);
    expect(await hasFunction(db, 'tenantry.is_moving()')).toBe(true);
    expect(await storedDigest(db)).toBe(installDigest());
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
  });

  it('names the recorded support role, data schemas and unsigned mode in the fix', async () => {
    const other = await createDoctorTestDatabase({
      contextMode: 'unsigned',
      dataSchemas: ['public', 'app'],
      supportRole: `s_${Date.now().toString(36)}`,
    });
    try {
      expect(outdated(await runDoctor(other.adminUrl))).toEqual([]);
      await other.admin.query(`update tenantry.meta set value = 'old' where key = 'install_digest'`);
      const finding = findingOf(await runDoctor(other.adminUrl), 'INSTALL_OUTDATED', other.name);
      const { rows } = await other.admin.query<{ value: string }>(
        `select value from tenantry.meta where key = 'support_role'`,
      );
      expect(finding.fix).toContain(
        `install --app-role ${other.appRole} --owner-role ${other.ownerRole} --support-role ${rows[0]!.value} --schema public app --unsigned (`,
      );
      await install(other.adminUrl, {
        appRole: other.appRole,
        ownerRole: other.ownerRole,
        supportRole: rows[0]!.value,
        supportPassword: ROLE_PASSWORD,
        contextMode: 'unsigned',
        dataSchemas: ['public', 'app'],
      });
      expect(outdated(await runDoctor(other.adminUrl))).toEqual([]);
    } finally {
      await other.drop();
    }
  });
});
