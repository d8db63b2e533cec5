import { randomBytes, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { runDoctor } from '../../src/policy/doctor.js';
import { Placements } from '../../src/tiers/placements.js';
import { installEverywhere } from '../../src/tiers/install-everywhere.js';
import { rotateContextSecretEverywhere } from '../../src/tiers/rotate-everywhere.js';
import { doctorEverywhere, type PlacementsAudit } from '../../src/tiers/migrate/doctor-everywhere.js';
import { useTestClusters, type ClusterDatabase } from '../support/clusters.js';
import { ALL_MIGRATIONS, appliedLabels, hasFunction } from '../support/install-probes.js';
import { ROLE_PASSWORD } from '../support/test-database.js';

// Two real PostgreSQL servers: `home` (c1: the catalog's database and a tenant database) and `eu`
// (c2: its shared database and a tenant database), plus a tenant database on c1 dropped after it
// was placed. Databases installed by an "older version" (library migrations pending, or no version table and a function
// missing) are found by doctor in every placement and brought up to date by installEverywhere.

const exec = promisify(execFile);
const TSX = path.resolve('node_modules/.bin/tsx');
const CLI = path.resolve('src/cli/main.ts');

const fleet = useTestClusters(2);
let home: ClusterDatabase;
let homeTenantDb: ClusterDatabase;
let eu: ClusterDatabase;
let euTenantDb: ClusterDatabase;
let goneDb: string;
let placements: Placements;
let dir: string;
const tenants: Record<string, string> = {};

async function tenant(slug: string): Promise<string> {
  const id = randomUUID();
  await home.owner.query(`insert into tenantry.tenants (id, slug, name) values ($1, $2, $2)`, [id, slug]);
  tenants[slug] = id;
  return id;
}

/** `cluster/database` of every audited database with an INSTALL_OUTDATED finding, sorted. */
function outdated(audit: PlacementsAudit): string[] {
  return audit.databases
    .filter((d) => d.report?.findings.some((f) => f.code === 'INSTALL_OUTDATED'))
    .map((d) => `${d.cluster}/${d.database}`)
    .sort();
}

const clusters = () => ({ home: home.adminUrl, eu: eu.adminUrl });
/** installEverywhere over both clusters, with the fleet's passwords and context secret. */
const reinstall = (concurrency: number) =>
  installEverywhere({
    catalog: home.owner,
    clusters: clusters(),
    appPassword: ROLE_PASSWORD,
    ownerPassword: ROLE_PASSWORD,
    contextSecret: fleet().contextSecret,
    concurrency,
  });

/** Runs the CLI as a subprocess against the home database; never throws. */
async function tenantry(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(TSX, [CLI, '--database-url', home.adminUrl, '--dir', dir, ...args], {
      env: {
        ...process.env,
        TENANTRY_APP_PASSWORD: ROLE_PASSWORD,
        TENANTRY_OWNER_PASSWORD: ROLE_PASSWORD,
        TENANTRY_CONTEXT_SECRET: fleet().contextSecret,
        TENANTRY_CLUSTERS: '',
      },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  const [c1, c2] = fleet().clusters;
  [home, eu] = await Promise.all([c1!.createDatabase(), c2!.createDatabase()]);
  homeTenantDb = await c1!.createDatabase();
  euTenantDb = await c2!.createDatabase();
  const gone = await c1!.createDatabase();
  goneDb = gone.name;
  placements = new Placements({ catalog: home.owner, owners: { home: home.ownerUrl, eu: eu.ownerUrl } });
  await placements.addCluster('eu');
  await placements.assign(await tenant('home-db'), { tier: 'database', cluster: 'home', database: homeTenantDb.name });
  await placements.assign(await tenant('eu-db'), { tier: 'database', cluster: 'eu', database: euTenantDb.name });
  await placements.assign(await tenant('gone-db'), { tier: 'database', cluster: 'home', database: goneDb });
  // dropped after it was placed: the catalog still names it
  await gone.drop();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-install-everywhere-'));
});

afterAll(async () => {
  await placements?.end();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('library migrations in every placement', () => {
  it('a fresh install records every library migration everywhere: doctor finds no INSTALL_OUTDATED', async () => {
    for (const db of [home, homeTenantDb, eu, euTenantDb]) expect(await appliedLabels(db)).toEqual(ALL_MIGRATIONS);
    const audit = await doctorEverywhere({ catalog: home.owner, clusters: clusters() });
    expect(audit.databases.map((d) => `${d.cluster}/${d.database}`).sort()).toEqual(
      [
        `eu/${eu.name}`,
        `eu/${euTenantDb.name}`,
        `home/${goneDb}`,
        `home/${home.name}`,
        `home/${homeTenantDb.name}`,
      ].sort(),
    );
    expect(outdated(audit)).toEqual([]);
    expect(audit.databases.find((d) => d.database === goneDb)?.error).toMatch(/does not exist/);
  });

  it('doctor --placements reports each database with pending library migrations', async () => {
    await euTenantDb.admin.query(`delete from tenantry.library_migrations where feature = 'core' and version = 2`);
    await eu.admin.query(`delete from tenantry.library_migrations where feature = 'identity'`);
    // an install from before home_tenant_id() and is_moving() existed (tenantry_self and tenantry_own_audit go with the first)
    await homeTenantDb.admin.query(
      `drop table tenantry.library_migrations; drop function tenantry.home_tenant_id() cascade; drop function tenantry.is_moving()`,
    );
    const audit = await doctorEverywhere({ catalog: home.owner, clusters: clusters() });
    expect(outdated(audit)).toEqual([`eu/${eu.name}`, `eu/${euTenantDb.name}`, `home/${homeTenantDb.name}`].sort());
    const finding = audit.databases
      .find((d) => d.database === euTenantDb.name)!
      .report!.findings.find((f) => f.code === 'INSTALL_OUTDATED')!;
    expect(finding).toMatchObject({ severity: 'warning', object: euTenantDb.name });
    expect(finding.message).toContain('Pending library migrations: core/002_context_key_rotation.');
    expect(finding.fix).toContain('tenantry install --everywhere');
  });

  it('installEverywhere re-installs every database; a cluster without a URL fails alone', async () => {
    const partial = await installEverywhere({
      catalog: home.owner,
      clusters: { home: home.adminUrl },
      contextSecret: fleet().contextSecret,
    });
    expect(partial.ok).toBe(false);
    const rows = partial.databases.map((d) => [`${d.cluster}/${d.database}`, d.kind, d.ok, d.error]);
    expect(rows).toEqual(
      expect.arrayContaining([
        [`eu/?`, 'shared', false, 'No connection is configured for cluster eu'],
        [`eu/${euTenantDb.name}`, 'database', false, 'No connection is configured for cluster eu'],
        [`home/${home.name}`, 'shared', true, null],
        [`home/${homeTenantDb.name}`, 'database', true, null],
      ]),
    );
    expect(await hasFunction(homeTenantDb, 'tenantry.home_tenant_id()')).toBe(true);
    expect(await appliedLabels(euTenantDb)).not.toContain('core/002_context_key_rotation');
  });

  it('installEverywhere fixes every placement; a database dropped after it was placed is reported while the others succeed; doctor is clean after', async () => {
    await homeTenantDb.admin.query(
      `drop table tenantry.library_migrations; drop function tenantry.home_tenant_id() cascade`,
    );
    const report = await reinstall(3);
    expect(report.ok).toBe(false);
    expect(report.databases.find((d) => d.database === homeTenantDb.name)!.applied).toEqual(ALL_MIGRATIONS);
    expect(report.databases.find((d) => d.database === home.name)!.applied).toEqual([]);
    expect(report.roles).toEqual({
      appRole: fleet().roles.app,
      ownerRole: fleet().roles.owner,
      supportRole: undefined,
      contextMode: 'signed',
    });
    const byName = (rows: Array<[string, ...unknown[]]>) => [...rows].sort((a, b) => a[0].localeCompare(b[0]));
    expect(byName(report.databases.map((d) => [`${d.cluster}/${d.database}`, d.kind, d.ok]))).toEqual(
      byName([
        [`eu/${eu.name}`, 'shared', true],
        [`eu/${euTenantDb.name}`, 'database', true],
        [`home/${goneDb}`, 'database', false],
        [`home/${home.name}`, 'shared', true],
        [`home/${homeTenantDb.name}`, 'database', true],
      ]),
    );
    expect(report.databases.find((d) => d.database === goneDb)!.error).toMatch(/database "[a-z0-9_]+" does not exist/);

    for (const db of [home, homeTenantDb, eu, euTenantDb]) {
      expect(await appliedLabels(db)).toEqual(ALL_MIGRATIONS);
      expect(await hasFunction(db, 'tenantry.home_tenant_id()')).toBe(true);
      expect(await hasFunction(db, 'tenantry.is_moving()')).toBe(true);
      expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
    }
    const audit = await doctorEverywhere({ catalog: home.owner, clusters: clusters() });
    expect(outdated(audit)).toEqual([]);
    expect(audit.databases.filter((d) => d.error === null).every((d) => d.report!.findings.length === 0)).toBe(true);

    // the same context secret: a context signed for the deployment still verifies in the re-installed database
    const pool = homeTenantDb.appPool();
    const { rows } = await runAs(tenants['home-db']!, () =>
      pool.query<{ id: string }>('select tenantry.home_tenant_id() as id'),
    );
    expect(rows).toEqual([{ id: tenants['home-db'] }]);
  });

  it('tenantry install --everywhere prints a line per database and exits 1 when one failed', async () => {
    await euTenantDb.admin.query(`delete from tenantry.library_migrations where feature = 'core' and version = 2`);
    const r = await tenantry(
      'install',
      '--everywhere',
      '--clusters',
      JSON.stringify({ eu: { adminUrl: eu.adminUrl } }),
    );
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('ok ')).sort()).toEqual(
      [
        `ok     eu/${eu.name} (shared): current`,
        `ok     eu/${euTenantDb.name} (database): applied core/002_context_key_rotation`,
        `ok     home/${home.name} (shared): current`,
        `ok     home/${homeTenantDb.name} (database): current`,
      ].sort(),
    );
    const failed = lines.filter((l) => l.startsWith('FAILED'));
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatch(
      new RegExp(`^FAILED home/${goneDb} \\(database\\): database "${goneDb}" does not exist$`),
    );
    expect(lines).toHaveLength(6);
    expect(lines.at(-1)).toContain('tenantry install --everywhere: 5 databases, 4 installed, 1 failed (signed context');
    expect(await appliedLabels(euTenantDb)).toEqual(ALL_MIGRATIONS);

    const usage = await tenantry('install', '--everywhere', '--app-role', 'someone_else');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('leave out --app-role');
  });

  it('installs many databases of one cluster at once, passwords given, without racing on the cluster-wide roles', async () => {
    // concurrent ALTER ROLE … PASSWORD from several databases of one server fails with
    // "tuple concurrently updated": each cluster's roles are set by one database's install first
    const c2 = fleet().clusters[1]!;
    const more = await Promise.all(Array.from({ length: 5 }, () => c2.createDatabase()));
    for (const [i, db] of more.entries())
      await placements.assign(await tenant(`eu-more-${i}`), { tier: 'database', cluster: 'eu', database: db.name });
    for (const db of more)
      await db.admin.query(`delete from tenantry.library_migrations where feature = 'core' and version = 2`);
    for (let round = 0; round < 2; round++) {
      const report = await reinstall(8);
      expect(report.databases.filter((d) => !d.ok).map((d) => [d.database, d.error])).toEqual([
        [goneDb, `database "${goneDb}" does not exist`],
      ]);
      expect(report.databases).toHaveLength(10);
    }
    for (const db of more) expect(await appliedLabels(db)).toEqual(ALL_MIGRATIONS);
  });

  it('rotateContextSecretEverywhere rotates the key in every database; the old secret verifies during the overlap', async () => {
    const next = randomBytes(24).toString('base64url');
    const report = await rotateContextSecretEverywhere({
      catalog: home.owner,
      clusters: clusters(),
      secret: next,
      overlapSeconds: 300,
    });
    expect(report.ok).toBe(false);
    expect(report.databases.filter((d) => !d.ok).map((d) => d.database)).toEqual([goneDb]);
    expect(report.databases.filter((d) => d.ok).every((d) => d.rotated)).toBe(true);
    for (const [db, slug] of [
      [homeTenantDb, 'home-db'],
      [euTenantDb, 'eu-db'],
    ] as const)
      for (const secret of [fleet().contextSecret, next]) {
        const pool = db.appPool({ contextSecret: secret });
        const { rows } = await runAs(tenants[slug]!, () =>
          pool.query<{ id: string }>('select tenantry.home_tenant_id() as id'),
        );
        expect(rows).toEqual([{ id: tenants[slug] }]);
      }
  });
});
