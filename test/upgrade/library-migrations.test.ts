import { randomBytes } from 'node:crypto';
import { hmacPads } from '../../src/data/context-signer.js';
import { afterAll, describe, expect, it } from 'vitest';
import { install, setContextSecret, type InstallRunOptions } from '../../src/policy/installer.js';
import { installSql, migrationStepSql } from '../../src/policy/install-sql.js';
import { libraryMigrations, migrationLabel, renderMigration } from '../../src/policy/library-migrations.js';
import { runDoctor } from '../../src/policy/doctor.js';
import { catalogListing } from '../support/catalog-listing.js';
import { createEmptyDatabase, type EmptyDatabase } from '../support/empty-database.js';
import { ROLE_PASSWORD } from '../support/test-database.js';

// The runner of the library's own migrations, tried as it could break: installs at once, a
// migration failing half-way, installs run again, names that are not identifiers.

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const ALL = libraryMigrations().map(migrationLabel);
const optionsFor = (db: EmptyDatabase): InstallRunOptions => ({
  appRole: db.roles.app,
  ownerRole: db.roles.owner,
  routerRole: db.roles.router,
  appPassword: ROLE_PASSWORD,
  ownerPassword: ROLE_PASSWORD,
  contextSecret: randomBytes(24).toString('base64url'),
});
const recorded = async (db: EmptyDatabase) =>
  (
    await db.admin.query<{ label: string; n: number }>(
      `select feature || '/' || lpad(version::text, 3, '0') || '_' || name as label, count(*) over () as n
         from tenantry.library_migrations`,
    )
  ).rows.map((r) => r.label);
const exists = async (db: EmptyDatabase, sql: string) =>
  (await db.admin.query<{ v: boolean }>(`select (${sql}) is not null as v`)).rows[0]!.v;

describe('library migrations', () => {
  it('concurrent installs of one database apply each migration once, in order, and all succeed', async () => {
    const db = await createEmptyDatabase(cleanups);
    const options = optionsFor(db);
    // each with its own secret (deploy jobs that disagree): exactly one is stored, the others kept out
    const secrets = Array.from({ length: 4 }, () => randomBytes(24).toString('base64url'));
    const reports = await Promise.all(
      secrets.map((contextSecret) => install(db.adminUrl, { ...options, contextSecret })),
    );
    expect(reports.map((r) => r.contextSecret).sort()).toEqual(['kept', 'kept', 'kept', 'set']);
    const winner = secrets[reports.findIndex((r) => r.contextSecret === 'set')]!;
    const { rows: key } = await db.admin.query<{ ipad: Buffer }>('select ipad from tenantry_private.context_key');
    expect(key[0]!.ipad.equals(hmacPads(winner).ipad)).toBe(true);
    const applied = reports.flatMap((r) => r.applied);
    expect([...applied].sort()).toEqual([...ALL].sort());
    // each install applied a run of consecutive migrations, in the library's order
    for (const r of reports) expect(r.applied).toEqual(ALL.filter((l) => r.applied.includes(l)));
    expect((await recorded(db)).sort()).toEqual([...ALL].sort());
    expect((await runDoctor(db.adminUrl)).ok).toBe(true);
  });

  it('a migration that fails leaves nothing of itself; the next install applies it and what follows', async () => {
    const db = await createEmptyDatabase(cleanups);
    // identity/001 creates tenantry_private.sessions IF NOT EXISTS, then an index on it: with a
    // view of that name there, the migration fails half-way through
    // (the owner's: what the owner may not touch fails earlier, for other reasons)
    await db.admin.query(
      `create role ${db.roles.owner} login bypassrls; create schema tenantry_private authorization ${db.roles.owner};
       create view tenantry_private.sessions as select 1 as x; alter view tenantry_private.sessions owner to ${db.roles.owner}`,
    );
    const options = optionsFor(db);
    await expect(install(db.adminUrl, options)).rejects.toThrow(/view|cannot create index/i);

    // identity/001 fails: it and every migration after it (features in order) are pending
    const failedAt = ALL.indexOf('identity/001_identity');
    const before = ALL.slice(0, failedAt);
    expect((await recorded(db)).sort()).toEqual([...before].sort());
    // nothing of identity/001: neither its first tables, nor its functions, nor its grants
    expect(await exists(db, `to_regclass('tenantry_private.one_time_codes')`)).toBe(false);
    expect(await exists(db, `to_regclass('tenantry.audit_log')`)).toBe(false);
    expect(await exists(db, `to_regprocedure('tenantry.authorize_request(uuid, uuid)')`)).toBe(false);
    // the migrations before it are whole (the context functions work)
    expect(await exists(db, `to_regprocedure('tenantry.current_tenant_id()')`)).toBe(true);

    await db.admin.query(`drop view tenantry_private.sessions`);
    const retry = await install(db.adminUrl, options);
    expect(retry.applied).toEqual(ALL.slice(failedAt));
    expect((await recorded(db)).sort()).toEqual([...ALL].sort());
    const report = await runDoctor(db.adminUrl);
    expect(report.findings.filter((f) => f.severity === 'error' || f.code === 'INSTALL_OUTDATED')).toEqual([]);
  });

  it('an install run again applies nothing and leaves every catalog object as it was', async () => {
    const db = await createEmptyDatabase(cleanups);
    const options = optionsFor(db);
    await install(db.adminUrl, options);
    const before = await catalogListing(db.admin, db.roles);
    const again = await install(db.adminUrl, options);
    expect(again).toEqual({
      applied: [],
      baselined: false,
      passwords: [
        { role: db.roles.app, action: 'kept', matches: true },
        { role: db.roles.owner, action: 'kept', matches: true },
      ],
      contextSecret: 'unchanged',
    });
    expect(await catalogListing(db.admin, db.roles)).toEqual(before);
  });

  it('every migration is idempotent: run again over itself, it changes no catalog object', async () => {
    const db = await createEmptyDatabase(cleanups);
    await install(db.adminUrl, optionsFor(db));
    const before = await catalogListing(db.admin, db.roles);
    const client = await db.admin.connect();
    try {
      for (const m of libraryMigrations()) {
        await client.query('begin');
        await client.query(migrationStepSql(m, { appRole: db.roles.app, ownerRole: db.roles.owner }));
        await client.query('commit');
      }
    } finally {
      client.release();
    }
    expect(await catalogListing(db.admin, db.roles)).toEqual(before);
  });

  it('installSql() is the whole first install as one script: run by hand, it ends like install()', async () => {
    const [byScript, byInstall] = [await createEmptyDatabase(cleanups), await createEmptyDatabase(cleanups)];
    const secret = randomBytes(24).toString('base64url');
    await byScript.admin.query(
      installSql({
        appRole: byScript.roles.app,
        ownerRole: byScript.roles.owner,
        routerRole: byScript.roles.router,
        appPassword: ROLE_PASSWORD,
      }),
    );
    await setContextSecret(byScript.admin, secret);
    await install(byInstall.adminUrl, {
      appRole: byInstall.roles.app,
      ownerRole: byInstall.roles.owner,
      routerRole: byInstall.roles.router,
      appPassword: ROLE_PASSWORD,
      contextSecret: secret,
    });
    expect(await catalogListing(byScript.admin, byScript.roles)).toEqual(
      await catalogListing(byInstall.admin, byInstall.roles),
    );
    expect(await runDoctor(byScript.adminUrl)).toEqual({ ok: true, findings: [] });
  });

  it('renders only validated, quoted role names into the placeholders', () => {
    const m = libraryMigrations()[0]!;
    expect(m.template).toContain(':TENANTRY_APP_ROLE');
    const sql = renderMigration(m, { appRole: 'my_app', ownerRole: 'my_owner' });
    expect(sql).not.toMatch(/:TENANTRY_[A-Z]+_ROLE/);
    expect(sql).toContain('"my_app"');
    expect(() => renderMigration(m, { appRole: 'x"; drop table y; --', ownerRole: 'o' })).toThrow(/Invalid app role/);
    // numbered from 001 per feature, features in dependency order
    expect(ALL[0]).toBe('core/001_core');
    expect(ALL.indexOf('identity/001_identity')).toBeGreaterThan(ALL.indexOf('tiers/001_placements'));
    expect(ALL.indexOf('onboard/001_onboardings')).toBeGreaterThan(ALL.indexOf('core/001_core'));
    expect(ALL.indexOf('metering/001_usage')).toBeGreaterThan(ALL.indexOf('jobs/001_jobs'));
    expect(ALL.indexOf('limits/001_rate_limits')).toBeGreaterThan(ALL.indexOf('core/001_core'));
  });
});
