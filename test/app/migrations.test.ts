import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runAs, TenantCatalog } from '../../src/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { ensureExtensions, loadMigrations, migrate, substituteVariables } from '../../app/migrate.js';
import { migrateHomeData } from '../../app/tiers/tenant-tiers.js';

let db: TestDatabase;
const extra: TestDatabase[] = [];
let tmp: string;

beforeAll(async () => {
  db = await createTestDatabase();
  await ensureExtensions(db.adminUrl);
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tenantry-migrations-'));
});
afterAll(async () => {
  await Promise.all([db, ...extra].map((d) => d?.drop()));
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function freshDatabase(): Promise<TestDatabase> {
  const d = await createTestDatabase();
  extra.push(d);
  await ensureExtensions(d.adminUrl);
  return d;
}

async function appliedNames(d: TestDatabase): Promise<string[]> {
  const { rows } = await d.admin.query<{ name: string }>('select name from app_migrations order by name');
  return rows.map((r) => r.name);
}

describe('migrate', () => {
  it('applies every migration once, in order, and nothing on a second run', async () => {
    const all = (await loadMigrations()).map((m) => m.name);
    expect(all.length).toBeGreaterThanOrEqual(3);
    expect(await migrate(db.owner, { appRole: db.appRole })).toEqual(all);
    expect(await migrate(db.owner, { appRole: db.appRole })).toEqual([]);
    expect(await appliedNames(db)).toEqual(all);
  });

  it('makes the owner role own the tables', async () => {
    const { rows } = await db.admin.query<{ name: string; owner: string }>(
      `select c.oid::regclass::text as name, pg_get_userbyid(c.relowner) as owner from pg_class c
        where c.oid in ('app_private.users'::regclass, 'public.members'::regclass, 'public.recordings'::regclass, 'public.app_migrations'::regclass)`,
    );
    expect(rows).toHaveLength(4);
    for (const row of rows) expect(row.owner).toBe(db.ownerRole);
  });

  it('registers members, recordings and the event tables as tenant tables with RLS forced', async () => {
    const { rows } = await db.admin.query<{ name: string; kind: string; forced: boolean }>(
      `select r.relid::text as name, r.kind, c.relforcerowsecurity as forced
         from tenantry.registered_tables r join pg_class c on c.oid = r.relid order by 1`,
    );
    expect(rows).toEqual([
      { name: 'members', kind: 'tenant', forced: true },
      { name: 'recordings', kind: 'tenant', forced: true },
      { name: 'tenant_event_streams', kind: 'tenant', forced: true },
      { name: 'tenant_events', kind: 'tenant', forced: true },
    ]);
  });

  it('applies concurrent runs exactly once', async () => {
    const d = await freshDatabase();
    const results = await Promise.all([
      migrate(d.owner, { appRole: d.appRole }),
      migrate(d.ownerUrl, { appRole: d.appRole }),
      migrate(d.owner, { appRole: d.appRole }),
    ]);
    const all = (await loadMigrations()).map((m) => m.name);
    expect(results.flat().sort()).toEqual(all);
    expect(results.filter((r) => r.length > 0)).toHaveLength(1);
    expect(await appliedNames(d)).toEqual(all);
  });

  it('rolls back the whole run when a migration fails', async () => {
    const dir = path.join(tmp, 'failing');
    await mkdir(dir);
    await writeFile(path.join(dir, '900_ok.sql'), 'create table public.should_not_stay (x int);');
    await writeFile(path.join(dir, '901_bad.sql'), 'create tabel oops;');
    await expect(migrate(db.owner, { appRole: db.appRole, dir })).rejects.toMatchObject({ code: '42601' });
    const { rows } = await db.admin.query(
      `select to_regclass('public.should_not_stay') as t, (select count(*)::int from app_migrations where name like '90%') as n`,
    );
    expect(rows[0]).toEqual({ t: null, n: 0 });
  });

  it('refuses a migration whose file changed after it was applied', async () => {
    const dir = path.join(tmp, 'changed');
    await mkdir(dir);
    await writeFile(path.join(dir, '950_note.sql'), 'create table public.notes_950 (x int);');
    expect(await migrate(db.owner, { appRole: db.appRole, dir })).toEqual(['950_note.sql']);
    await writeFile(path.join(dir, '950_note.sql'), 'create table public.notes_950 (x int, y int);');
    await expect(migrate(db.owner, { appRole: db.appRole, dir })).rejects.toThrow(/changed after it was applied/);
  });

  it('refuses to run as another role than the owner, or with another app role', async () => {
    await expect(migrate(db.adminUrl, { appRole: db.appRole })).rejects.toThrow(/as the owner role/);
    await expect(migrate(db.owner, { appRole: 'someone_else' })).rejects.toThrow(/not the app role/);
    await expect(migrate(db.owner, { appRole: 'bad"role' })).rejects.toThrow(/plain lower-case role name/);
  });

  it('substitutes only known :"variables" and leaves ::casts alone', () => {
    expect(substituteVariables(`grant x to :"app_role"; select 1::"int4";`, { app_role: 'r_app' })).toBe(
      `grant x to "r_app"; select 1::"int4";`,
    );
    expect(() => substituteVariables('grant x to :"other"', { app_role: 'r' })).toThrow(/Unknown migration variable/);
  });
});

describe('privileges of the app role', () => {
  it('cannot read app_private.users, even inside a tenant', async () => {
    const tenant = await new TenantCatalog(db.owner).create({ slug: 'priv', name: 'Priv' });
    const pool = db.appPool();
    await expect(runAs(tenant.id, () => pool.query('select * from app_private.users'))).rejects.toMatchObject({
      code: '42501',
    });
    await expect(pool.query('select password_hash from app_private.users')).rejects.toMatchObject({ code: '42501' });
    await expect(pool.query('select * from public.app_migrations')).rejects.toMatchObject({ code: '42501' });
    const { rows } = await db.admin.query(
      `select has_schema_privilege($1, 'app_private', 'usage') as usage, has_table_privilege($1, 'app_private.users', 'select') as sel`,
      [db.appRole],
    );
    expect(rows[0]).toEqual({ usage: false, sel: false });
  });

  it('may execute app.sign_in, which PUBLIC may not, and which pins its search_path', async () => {
    const { rows } = await db.admin.query(
      `select has_function_privilege($1, 'app.sign_in(text,text,text,integer)', 'execute') as app,
              coalesce(array_to_string(p.proacl, ','), '') as acl, p.prosecdef as definer, p.proconfig as config,
              pg_get_userbyid(p.proowner) as owner
         from pg_proc p where p.oid = 'app.sign_in(text,text,text,integer)'::regprocedure`,
      [db.appRole],
    );
    expect(rows[0].app).toBe(true);
    expect(rows[0].acl).not.toMatch(/(^|,)=X/); // no grant to PUBLIC
    expect(rows[0].definer).toBe(true);
    expect(rows[0].config).toEqual(['search_path=pg_catalog, pg_temp']);
    expect(rows[0].owner).toBe(db.ownerRole);
  });

  it('cannot write a row for another tenant, even naming it', async () => {
    const catalog = new TenantCatalog(db.owner);
    const mine = await catalog.create({ slug: 'mine', name: 'Mine' });
    const theirs = await catalog.create({ slug: 'theirs', name: 'Theirs' });
    const pool = db.appPool();
    await expect(
      runAs(mine.id, () =>
        pool.query(
          `insert into members (tenant_id, user_id, display_name, email) values ($1, gen_random_uuid(), 'x', 'x@x')`,
          [theirs.id],
        ),
      ),
    ).rejects.toMatchObject({ code: '42501' });
    const { rows } = await db.admin.query('select count(*)::int as n from members where tenant_id = $1', [theirs.id]);
    expect(rows[0].n).toBe(0);
  });
});

describe('the reference schema under doctor', () => {
  it('passes tenantry doctor with no finding at all once migrated', async () => {
    const { runDoctor } = await import('../../src/policy/doctor.js');
    const d = await freshDatabase();
    await migrate(d.owner, { appRole: d.appRole });
    const report = await runDoctor(d.adminUrl);
    expect(report.findings).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('the tenant data migrations then run at home: the tables baselined, the functions and trigger replaced; doctor still clean', async () => {
    const { runDoctor } = await import('../../src/policy/doctor.js');
    const d = await freshDatabase();
    await migrate(d.owner, { appRole: d.appRole });
    await migrateHomeData(d.ownerUrl);
    await migrateHomeData(d.ownerUrl); // again: nothing to do
    const { rows } = await d.admin.query<{ version: number; name: string }>(
      `select version, name from tenantry.schema_migrations where target = 'public' order by version`,
    );
    expect(rows).toEqual([
      { version: 1, name: '001_tenant_tables.sql' },
      { version: 2, name: '002_live_functions.sql' },
      { version: 3, name: '003_recording_events.sql' },
      { version: 4, name: '004_recording_usage.sql' },
      // the sample plugins' tables (app/plugins), with the data migrations wherever tenants live
      { version: 1001, name: '1001_transcripts_transcripts.sql' },
      { version: 1101, name: '1101_webhooks_webhooks.sql' },
      { version: 1102, name: '1102_webhooks_webhook_delivery_errors.sql' },
    ]);
    // the events function follows the caller's search path now (no pinned search_path), the trigger skips moves
    const fn = await d.admin.query<{ config: string[] | null; body: string }>(
      `select proconfig as config, prosrc as body from pg_proc where oid = 'public.emit_tenant_event(text, jsonb, uuid)'::regprocedure`,
    );
    expect(fn.rows[0]!.config).toBeNull();
    expect(
      (
        await d.admin.query<{ body: string }>(
          `select prosrc as body from pg_proc where oid = 'app.recording_event()'::regprocedure`,
        )
      ).rows[0]!.body,
    ).toContain('tenantry.is_moving()');
    // members are pinned: their policy takes the tenant without the route check
    const policy = await d.admin.query<{ qual: string }>(
      `select qual from pg_policies where tablename = 'members' and policyname = 'tenantry_isolation'`,
    );
    expect(policy.rows[0]!.qual).toContain('home_tenant_id');
    const report = await runDoctor(d.adminUrl);
    expect(report.findings).toEqual([]);
  });
});
