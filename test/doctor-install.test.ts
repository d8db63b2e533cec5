import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDoctor, type DoctorReport } from '../src/policy/doctor.js';
import { install } from '../src/policy/installer.js';
import { ROLE_PASSWORD, type TestDatabase } from './support/test-database.js';
import { createDoctorTestDatabase, findingOf } from './support/doctor-findings.js';
import { ALL_MIGRATIONS, appliedLabels, hasFunction } from './support/install-probes.js';

// INSTALL_OUTDATED: library migrations pending in a database (an install of an older version, or
// of before the versioned schema); LIBRARY_MIGRATION_CHANGED; APP_ROLE_TIMEOUTS_MISSING.

const outdated = (report: DoctorReport) => report.findings.filter((f) => f.code === 'INSTALL_OUTDATED');

describe('doctor: INSTALL_OUTDATED (pending library migrations)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createDoctorTestDatabase();
  });
  afterAll(() => db?.drop());

  it('finds nothing after a fresh install, which records every library migration', async () => {
    expect(await appliedLabels(db)).toEqual(ALL_MIGRATIONS);
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
  });

  it('names each pending migration; install applies exactly those and clears the finding', async () => {
    await db.admin.query(`delete from tenantry.library_migrations where feature = 'core' and version = 2`);
    const report = await runDoctor(db.adminUrl);
    expect(outdated(report)).toHaveLength(1);
    const finding = findingOf(report, 'INSTALL_OUTDATED', db.name);
    expect(finding.severity).toBe('warning');
    expect(report.ok).toBe(true);
    expect(finding.message).toContain('Pending library migrations: core/002_context_key_rotation.');
    expect(finding.fix).toContain(`install --app-role ${db.appRole} --owner-role ${db.ownerRole} (`);
    expect(finding.fix).toContain('tenantry install --everywhere');

    const done = await install(db.adminUrl, { appRole: db.appRole, ownerRole: db.ownerRole });
    expect(done.applied).toEqual(['core/002_context_key_rotation']);
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
  });

  it('says so for an install of before the versioned schema; install restores what it lacked', async () => {
    // such an install: no version table, and (older still) no home_tenant_id() nor is_moving()
    await db.admin.query(
      `drop table tenantry.library_migrations; drop function tenantry.home_tenant_id() cascade; drop function tenantry.is_moving()`,
    );
    const report = await runDoctor(db.adminUrl);
    expect(outdated(report).map((f) => f.object)).toEqual([db.name]);
    const message = findingOf(report, 'INSTALL_OUTDATED', db.name).message;
    expect(message).toContain(ALL_MIGRATIONS.join(', '));
    expect(message).toContain('before the versioned schema');

    const done = await install(db.adminUrl, { appRole: db.appRole, ownerRole: db.ownerRole });
    expect(done.baselined).toBe(true);
    expect(done.applied).toEqual(ALL_MIGRATIONS);
    expect(await hasFunction(db, 'tenantry.home_tenant_id()')).toBe(true);
    expect(await hasFunction(db, 'tenantry.is_moving()')).toBe(true);
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
  });

  it('reports an applied migration whose file changed since (LIBRARY_MIGRATION_CHANGED)', async () => {
    await db.admin.query(
      `update tenantry.library_migrations set checksum = 'edited' where feature = 'tiers' and version = 1`,
    );
    try {
      const report = await runDoctor(db.adminUrl);
      expect(
        findingOf(report, 'LIBRARY_MIGRATION_CHANGED', 'tenantry.library_migrations tiers/001_placements').severity,
      ).toBe('warning');
      expect(outdated(report)).toEqual([]);
    } finally {
      await db.admin.query(`delete from tenantry.library_migrations where feature = 'tiers' and version = 1`);
      await install(db.adminUrl, { appRole: db.appRole, ownerRole: db.ownerRole });
    }
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
  });

  it('reports migrations this version does not know (a newer Tenantry installed the database)', async () => {
    await db.admin.query(
      `insert into tenantry.library_migrations (feature, version, name, checksum) values ('core', 999, 'future', 'x')`,
    );
    try {
      const finding = findingOf(await runDoctor(db.adminUrl), 'LIBRARY_MIGRATION_UNKNOWN', db.name);
      expect(finding.message).toContain('core/999');
      // install of this version refuses to run over it (it would downgrade what it re-creates):
      // test/upgrade/older-install.test.ts
      await expect(install(db.adminUrl, { appRole: db.appRole, ownerRole: db.ownerRole })).rejects.toMatchObject({
        code: 'SCHEMA_NEWER_THAN_LIBRARY',
      });
    } finally {
      await db.admin.query(`delete from tenantry.library_migrations where version = 999`);
    }
  });

  it('names the recorded support role, data schemas and unsigned mode in the fix', async () => {
    const other = await createDoctorTestDatabase({
      contextMode: 'unsigned',
      dataSchemas: ['public', 'app'],
      supportRole: `s_${Date.now().toString(36)}`,
    });
    try {
      expect(outdated(await runDoctor(other.adminUrl))).toEqual([]);
      await other.admin.query(`delete from tenantry.library_migrations where feature = 'identity'`);
      const finding = findingOf(await runDoctor(other.adminUrl), 'INSTALL_OUTDATED', other.name);
      expect(finding.message).toContain('identity/001_identity');
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

describe('doctor: APP_ROLE_TIMEOUTS_MISSING', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createDoctorTestDatabase();
  });
  afterAll(() => db?.drop());

  const settings = async () =>
    (
      await db.admin.query<{ c: string }>(
        `select unnest(s.setconfig) as c from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
          where r.rolname = $1 and s.setdatabase = 0 order by 1`,
        [db.appRole],
      )
    ).rows.map((r) => r.c);

  it('install gives the app role bounded statements, lock waits and idle transactions', async () => {
    expect(await settings()).toEqual([
      'idle_in_transaction_session_timeout=60s',
      'lock_timeout=5s',
      'statement_timeout=30s',
    ]);
    // and they hold: a lock wait of the app role ends on its own
    const app = db.appPool();
    const holder = await db.owner.connect();
    try {
      await db.owner.query('create table if not exists public.locked (id int)');
      await db.owner.query(`grant select on public.locked to ${db.appRole}`);
      await holder.query('begin; lock table public.locked in access exclusive mode');
      const started = Date.now();
      const error = await app.query('select * from public.locked').catch((e: unknown) => e);
      // the pool reports PostgreSQL's lock_not_available (55P03) as LOCK_TIMEOUT, pg's error as its cause
      const { code, cause } = error as { code?: string; cause?: { code?: string } };
      expect([code, cause?.code]).toEqual(['LOCK_TIMEOUT', '55P03']);
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      await holder.query('rollback');
      holder.release();
    }
  });

  it("reports an owner role that cannot read the app role's activity; install (as a superuser) grants pg_read_all_stats", async () => {
    await db.admin.query(`revoke pg_read_all_stats from ${db.ownerRole}`);
    const finding = findingOf(await runDoctor(db.adminUrl), 'OWNER_CANNOT_READ_ACTIVITY', db.ownerRole);
    expect(finding.fix).toContain(`GRANT pg_read_all_stats TO ${db.ownerRole}`);
    await install(db.adminUrl, { appRole: db.appRole, ownerRole: db.ownerRole });
    const { rows } = await db.admin.query<{ member: boolean }>(
      `select pg_has_role($1, 'pg_read_all_stats', 'USAGE') as member`,
      [db.ownerRole],
    );
    expect(rows[0]!.member).toBe(true);
    expect((await runDoctor(db.adminUrl)).findings.map((f) => f.code)).not.toContain('OWNER_CANNOT_READ_ACTIVITY');
  });

  it('reports a missing timeout; install sets the default back and keeps a value an operator chose', async () => {
    await db.admin.query(`alter role ${db.appRole} reset lock_timeout`);
    await db.admin.query(`alter role ${db.appRole} set statement_timeout = '2min'`);
    const finding = findingOf(await runDoctor(db.adminUrl), 'APP_ROLE_TIMEOUTS_MISSING', db.appRole);
    expect(finding.message).toContain('lock_timeout');
    expect(finding.message).not.toContain('statement_timeout');

    await install(db.adminUrl, { appRole: db.appRole, ownerRole: db.ownerRole });
    expect(await settings()).toEqual([
      'idle_in_transaction_session_timeout=60s',
      'lock_timeout=5s',
      'statement_timeout=2min',
    ]);
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });

    // given explicitly, a timeout is set whatever was there
    await install(db.adminUrl, {
      appRole: db.appRole,
      ownerRole: db.ownerRole,
      appRoleTimeouts: { statementTimeout: '45s' },
    });
    expect(await settings()).toContain('statement_timeout=45s');
  });
});
