import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { hmacPads } from '../../src/data/context-signer.js';
import { TenantPool } from '../../src/data/tenant-pool.js';
import { runAs } from '../../src/context/tenant-context.js';
import { runDoctor, formatDoctorReport } from '../../src/policy/doctor.js';
import { install } from '../../src/policy/installer.js';
import { libraryMigrations, migrationLabel } from '../../src/policy/library-migrations.js';
import { catalogListing } from '../support/catalog-listing.js';
import { ROLE_PASSWORD } from '../support/test-database.js';
import { createEmptyDatabase, type EmptyDatabase as Fresh } from '../support/empty-database.js';

// A database installed by Tenantry's main before the library schema was versioned (the frozen
// install SQL in test/fixtures/main-install-*.sql), with data in it, upgraded by this version's
// install: every migration recorded, doctor clean, every row intact, the app still working, and
// the same catalog objects as a fresh install.

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});
const emptyDatabase = () => createEmptyDatabase(cleanups);

/** Runs the old main's install SQL with this database's roles, then what the old install did next (passwords, context key). */
async function oldInstall(db: Fresh, mode: 'signed' | 'unsigned', secret: string): Promise<void> {
  const fixture = await readFile(new URL(`../fixtures/main-install-${mode}.sql`, import.meta.url), 'utf8');
  const sql = fixture.replace(/fixture_(app|owner|support)/g, (_, r: 'app' | 'owner' | 'support') => db.roles[r]);
  await db.admin.query(sql);
  // the roles the old install made (the router role came later: the upgrade's install makes it)
  for (const role of [db.roles.app, db.roles.owner, db.roles.support])
    await db.admin.query(`alter role ${role} password '${ROLE_PASSWORD}'`);
  const { ipad, opad } = hmacPads(secret);
  await db.admin.query(`insert into tenantry_private.context_key (id, ipad, opad) values (true, $1, $2)`, [ipad, opad]);
}

/** Tenants, a tenant table with rows, a placement, an API key and audit entries, as the old layout holds them. */
async function seed(db: Fresh): Promise<{ a: string; b: string }> {
  const owner = new pg.Client({ connectionString: db.url(db.roles.owner) });
  await owner.connect();
  try {
    const a = randomUUID();
    const b = randomUUID();
    await owner.query(
      `insert into tenantry.tenants (id, slug, name) values ($1, 'acme', 'Acme'), ($2, 'globex', 'Globex')`,
      [a, b],
    );
    await owner.query(`create table public.notes (
      id bigint generated always as identity primary key,
      tenant_id uuid not null default tenantry.current_tenant_id(),
      body text not null)`);
    await owner.query(`select tenantry.register_tenant_table('public.notes')`);
    await owner.query(`insert into public.notes (tenant_id, body) select $1, 'a' || g from generate_series(1, 20) g`, [
      a,
    ]);
    await owner.query(`insert into public.notes (tenant_id, body) select $1, 'b' || g from generate_series(1, 7) g`, [
      b,
    ]);
    await owner.query(`insert into tenantry.clusters (name) values ('eu')`);
    await owner.query(`insert into tenantry_private.api_keys (tenant_id, name, secret_hash) values ($1, 'ci', $2)`, [
      a,
      randomBytes(32),
    ]);
    await owner.query(
      `insert into tenantry.audit_log (tenant_id, actor_kind, action) values ($1, 'system', 'tenant.created')`,
      [a],
    );
    return { a, b };
  } finally {
    await owner.end();
  }
}

/** A digest of every row of the seeded tables, read as the superuser. */
async function rows(db: Fresh): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  // the columns the old layout had (a migration may add columns: identity/002 numbers the audit log)
  for (const [table, columns] of [
    ['tenantry.tenants', 't.*'],
    ['public.notes', 't.*'],
    ['tenantry.clusters', 't.*'],
    ['tenantry_private.api_keys', 't.*'],
    ['tenantry.audit_log', 't.id, t.tenant_id, t.occurred_at, t.actor_kind, t.actor_id, t.action, t.reason, t.detail'],
    ['tenantry.registered_tables', 't.*'],
    ['tenantry.local_route', 't.*'],
  ] as const) {
    const { rows: r } = await db.admin.query<{ n: string; h: string }>(
      `select count(*)::text as n, md5(coalesce(string_agg(row(${columns})::text, '|' order by row(${columns})::text), '')) as h from ${table} t`,
    );
    out[table] = `${r[0]!.n}:${r[0]!.h}`;
  }
  return out;
}

async function tenantRows(pool: TenantPool, tenant: string): Promise<string[]> {
  const { rows: r } = await runAs(tenant, () =>
    pool.query<{ body: string }>('select body from public.notes order by id'),
  );
  return r.map((x) => x.body);
}

const problems = (report: Awaited<ReturnType<typeof runDoctor>>) =>
  report.findings.filter(
    (f) =>
      f.severity === 'error' ||
      ['INSTALL_OUTDATED', 'APP_ROLE_TIMEOUTS_MISSING', 'LIBRARY_MIGRATION_CHANGED'].includes(f.code),
  );

describe.each(['signed', 'unsigned'] as const)(
  'upgrade of an install by main before the versioned schema (%s)',
  (mode) => {
    it('baselines it, applies what is new, keeps every row, and ends like a fresh install', async () => {
      const secret = randomBytes(24).toString('base64url');
      const old = await emptyDatabase();
      await oldInstall(old, mode, secret);
      const { a, b } = await seed(old);
      const before = await rows(old);

      const doctorBefore = await runDoctor(old.adminUrl);
      const outdated = doctorBefore.findings.find((f) => f.code === 'INSTALL_OUTDATED');
      expect(outdated?.message).toContain('core/001_core');

      const options = {
        appRole: old.roles.app,
        ownerRole: old.roles.owner,
        supportRole: old.roles.support,
        routerRole: old.roles.router,
        contextMode: mode,
        appPassword: 'another-password-the-deploy-job-made-up',
        routerPassword: ROLE_PASSWORD,
        contextSecret: mode === 'signed' ? randomBytes(24).toString('base64url') : undefined,
      };
      const report = await install(old.adminUrl, options);
      expect(report.baselined).toBe(true);
      expect(report.applied).toEqual(libraryMigrations().map(migrationLabel));
      // what the running app depends on is kept: its password and its context key
      expect(report.passwords).toEqual([
        { role: old.roles.app, action: 'kept' },
        { role: old.roles.router, action: 'set' },
      ]);
      if (mode === 'signed') expect(report.contextSecret).toBe('kept');

      const doctorAfter = await runDoctor(old.adminUrl);
      expect(problems(doctorAfter), formatDoctorReport(doctorAfter)).toEqual([]);
      expect(await rows(old)).toEqual(before);

      // the app, with the credentials it had, reads its own rows and only those
      const pool = new TenantPool({
        connectionString: old.url(old.roles.app),
        contextSecret: secret,
        contextMode: mode,
        max: 2,
      });
      cleanups.push(() => pool.end());
      expect(await tenantRows(pool, a)).toHaveLength(20);
      expect(await tenantRows(pool, b)).toEqual(Array.from({ length: 7 }, (_, i) => `b${i + 1}`));
      // routes are the router role's now (tiers/002): the app role, which could read them before, cannot
      await expect(runAs(a, () => pool.query('select * from tenantry.routes_since(0)'))).rejects.toMatchObject({
        code: '42501',
      });
      const router = new pg.Client({ connectionString: old.url(old.roles.router) });
      await router.connect();
      try {
        expect((await router.query('select * from tenantry.routes_since(0)')).rows).toEqual([]);
      } finally {
        await router.end();
      }

      // a second install changes nothing
      const again = await install(old.adminUrl, options);
      expect(again.applied).toEqual([]);
      expect(again.baselined).toBe(false);

      // a fresh install by this version has the same catalog objects
      const fresh = await emptyDatabase();
      await install(fresh.adminUrl, {
        appRole: fresh.roles.app,
        ownerRole: fresh.roles.owner,
        supportRole: fresh.roles.support,
        routerRole: fresh.roles.router,
        contextMode: mode,
        appPassword: ROLE_PASSWORD,
        contextSecret: mode === 'signed' ? secret : undefined,
      });
      const [upgraded, installed] = await Promise.all([
        catalogListing(old.admin, old.roles),
        catalogListing(fresh.admin, fresh.roles),
      ]);
      expect(upgraded.filter((l) => !installed.includes(l))).toEqual([]);
      expect(installed.filter((l) => !upgraded.includes(l))).toEqual([]);
    });
  },
);
