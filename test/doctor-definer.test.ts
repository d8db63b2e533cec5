// Doctor reports every SECURITY DEFINER function the app role can run (directly, through PUBLIC,
// through a role it belongs to) with the tenant tables it touches, until a reviewer accepts it;
// a changed body is reported again. Tenantry's own functions and functions the app cannot run are
// not reported.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { acceptDefinerFunction, runDoctor, type DoctorReport } from '../src/policy/doctor.js';
import { ROLE_PASSWORD, type TestDatabase } from './support/test-database.js';
import { createDoctorTestDatabase, findingOf } from './support/doctor-findings.js';
import { ensureExtensions, migrate } from '../app/migrate.js';

const exec = promisify(execFile);

function definerFindings(report: DoctorReport): string[] {
  return report.findings
    .filter((f) => f.code === 'DEFINER_NOT_REVIEWED' || f.code === 'DEFINER_CHANGED_SINCE_REVIEW')
    .map((f) => `${f.code} ${f.object}`)
    .sort();
}

async function asOwner<T>(db: TestDatabase, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.owner.connect();
  try {
    return await fn(client);
  } finally {
    client.release();
  }
}

describe('doctor on SECURITY DEFINER functions the app role can run', () => {
  let db: TestDatabase;
  let helper: string;
  beforeAll(async () => {
    db = await createDoctorTestDatabase();
    helper = `${db.name}_callers`;
    await db.admin.query(`create role ${helper} nologin; grant ${helper} to ${db.appRole};`);
    const definer = 'security definer set search_path = pg_catalog, pg_temp';
    await db.owner.query(`
      create table notes (tenant_id uuid not null, id uuid not null default gen_random_uuid(), body text, primary key (tenant_id, id));
      create table tags (tenant_id uuid not null, name text not null, primary key (tenant_id, name));
      create table plans (id text primary key);
      select tenantry.register_tenant_table('notes');
      select tenantry.register_tenant_table('tags');
      select tenantry.register_global_table('plans');
      create view all_tags as select tenant_id, name from public.tags;
      create schema hidden;
      -- granted straight to the app (not through PUBLIC): the defect the peer linter missed
      create function public.all_note_bodies() returns setof text language sql ${definer}
        as 'select body from public.notes';
      create function public.note_total() returns bigint language plpgsql ${definer}
        as $f$ declare n bigint; begin select count(*) into n from public.notes; return n; end $f$;
      -- an invoker helper reads the table; the definer function lends it the owner's rights
      create function public.count_tags_helper() returns bigint language sql
        as 'select count(*) from public.all_tags';
      create function public.tag_total() returns bigint language sql ${definer}
        as 'select public.count_tags_helper()';
      create function public.by_name(t text) returns bigint language plpgsql ${definer}
        as $f$ declare n bigint; begin execute format('select count(*) from %I', t) into n; return n; end $f$;
      create function public.dynamic_notes() returns bigint language plpgsql ${definer}
        as $f$ declare n bigint; begin execute 'select count(*) from public.notes' into n; return n; end $f$;
      create function public.plan_count() returns bigint language sql ${definer} as 'select count(*) from public.plans';
      create function public.via_role() returns bigint language sql ${definer} as 'select count(*) from public.notes';
      create function public.via_public() returns bigint language sql ${definer} as 'select count(*) from public.notes';
      -- not reachable by the app: no grant, or a schema it cannot use
      create function public.not_granted() returns bigint language sql ${definer} as 'select count(*) from public.notes';
      create function hidden.no_usage() returns bigint language sql ${definer} as 'select count(*) from public.notes';
      -- a trigger function cannot be called by the app, whatever its grants
      create function public.stamp() returns trigger language plpgsql ${definer}
        as $f$ begin perform count(*) from public.notes; return new; end $f$;
      grant execute on function public.stamp() to ${db.appRole};
      -- the safe forms: invoker rights (row level security applies)
      create function public.my_note_count() returns bigint language sql security invoker as 'select count(*) from public.notes';
      revoke all on function public.all_note_bodies(), public.note_total(), public.tag_total(), public.by_name(text),
        public.dynamic_notes(), public.plan_count(), public.via_role(), public.not_granted(), hidden.no_usage() from public;
      grant execute on function public.all_note_bodies(), public.note_total(), public.tag_total(), public.by_name(text),
        public.dynamic_notes(), public.plan_count(), public.my_note_count() to ${db.appRole};
      grant execute on function public.via_role() to ${helper};
      grant execute on function public.via_public() to public;
      grant execute on function hidden.no_usage() to ${db.appRole};
    `);
  });
  afterAll(async () => {
    await db?.drop();
    const root = new pg.Client({ connectionString: inject('adminUrl') });
    await root.connect();
    await root.query(`drop role if exists ${helper}`).catch(() => undefined);
    await root.end();
  });

  it('reports each one the app can run, directly, through a role or through PUBLIC, and none it cannot', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(definerFindings(report)).toEqual(
      [
        'public.all_note_bodies()',
        'public.by_name(text)',
        'public.dynamic_notes()',
        'public.note_total()',
        'public.plan_count()',
        'public.tag_total()',
        'public.via_public()',
        'public.via_role()',
      ].map((f) => `DEFINER_NOT_REVIEWED ${f}`),
    );
    expect(findingOf(report, 'DEFINER_NOT_REVIEWED', 'public.via_role()').message).toContain(`granted to ${helper}`);
    expect(findingOf(report, 'DEFINER_NOT_REVIEWED', 'public.via_public()').message).toContain('granted to PUBLIC');
    // Tenantry's own definer functions (current_tenant_id, sessions, codes…) are known, never reported
    expect(report.findings.filter((f) => f.object.startsWith('tenantry.'))).toEqual([]);
  });

  it('names the tenant tables each touches: parsed bodies (sql, plpgsql), called functions and views, dynamic SQL by text scan', async () => {
    const report = await runDoctor(db.adminUrl);
    const message = (fn: string) => findingOf(report, 'DEFINER_NOT_REVIEWED', fn).message;
    expect(message('public.all_note_bodies()')).toContain('It touches tenant table public.notes.');
    expect(message('public.note_total()')).toContain('It touches tenant table public.notes.');
    // through an invoker helper and a view
    expect(message('public.tag_total()')).toContain('It touches tenant table public.tags.');
    expect(message('public.dynamic_notes()')).toContain('touches tenant table public.notes (it builds SQL at run time');
    expect(message('public.by_name(text)')).toContain(
      'touches tables that could not be determined (it builds SQL at run time',
    );
    expect(findingOf(report, 'DEFINER_NOT_REVIEWED', 'public.by_name(text)').severity).toBe('error');
    expect(message('public.plan_count()')).toContain('touches no tenant table');
    // errors where the owner's rights reach tenant rows; a warning where they reach none
    expect(findingOf(report, 'DEFINER_NOT_REVIEWED', 'public.all_note_bodies()').severity).toBe('error');
    expect(findingOf(report, 'DEFINER_NOT_REVIEWED', 'public.plan_count()').severity).toBe('warning');
    expect(findingOf(report, 'DEFINER_NOT_REVIEWED', 'public.all_note_bodies()').fix).toBe(
      `tenantry doctor accept-function 'public.all_note_bodies()' --reason '<why it may reach these rows>' (after review), or REVOKE EXECUTE ON FUNCTION public.all_note_bodies() FROM ${db.appRole};`,
    );
  });

  it('what it reports is real: as tenant B, the definer function returns tenant A’s rows', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    await db.admin.query(`insert into notes (tenant_id, body) values ($1, 'a-secret')`, [a]);
    const pool = db.appPool();
    const { runAs } = await import('../src/context/tenant-context.js');
    const direct = await runAs(b, () => pool.query('select body from notes'));
    const through = await runAs(b, () => pool.query('select public.all_note_bodies() as body'));
    expect(direct.rows).toEqual([]);
    expect(through.rows).toEqual([{ body: 'a-secret' }]);
    await db.admin.query('delete from notes');
  });

  it('an accepted function is not reported until its body changes; a review of another body does not count', async () => {
    const accepted = await asOwner(db, (c) =>
      acceptDefinerFunction(c, 'public.note_total()', 'counts every tenant on purpose: an operator statistic'),
    );
    expect(accepted.signature).toBe('public.note_total()');
    expect(accepted.bodySha256).toMatch(/^[0-9a-f]{64}$/);
    // a review pinned to a hash that is not the body's (reviewed elsewhere, body changed since)
    await asOwner(db, (c) =>
      acceptDefinerFunction(c, 'public.plan_count()', 'plans are global', { bodySha256: '0'.repeat(64) }),
    );
    let report = await runDoctor(db.adminUrl);
    expect(definerFindings(report)).not.toContain('DEFINER_NOT_REVIEWED public.note_total()');
    expect(definerFindings(report)).toContain('DEFINER_CHANGED_SINCE_REVIEW public.plan_count()');

    await db.owner.query(`create or replace function public.note_total() returns bigint language plpgsql
      security definer set search_path = pg_catalog, pg_temp
      as $f$ declare n bigint; begin select count(*) into n from public.notes where body <> ''; return n; end $f$`);
    report = await runDoctor(db.adminUrl);
    const changed = findingOf(report, 'DEFINER_CHANGED_SINCE_REVIEW', 'public.note_total()');
    expect(changed.severity).toBe('error');
    expect(changed.message).toContain('changed since it was reviewed');
    // so is a changed search_path (a SET clause decides what names resolve to)
    await asOwner(db, (c) => acceptDefinerFunction(c, 'public.note_total()', 'reviewed again'));
    await db.owner.query('alter function public.note_total() set search_path = public, pg_temp');
    report = await runDoctor(db.adminUrl);
    expect(definerFindings(report)).toContain('DEFINER_CHANGED_SINCE_REVIEW public.note_total()');
  });

  it('refuses a review without a reason, of an unknown function, or of an invoker function', async () => {
    await asOwner(db, async (c) => {
      await expect(acceptDefinerFunction(c, 'public.tag_total()', ' \u200b ')).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      await expect(acceptDefinerFunction(c, 'public.nope()', 'x')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(acceptDefinerFunction(c, 'public.my_note_count()', 'x')).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    });
  });

  it('the app role cannot read or write the allow-list', async () => {
    const app = new pg.Client({ connectionString: db.directAppUrl ?? db.appUrl });
    await app.connect();
    try {
      await expect(app.query('select * from tenantry.reviewed_functions')).rejects.toMatchObject({ code: '42501' });
      await expect(
        app.query(`insert into tenantry.reviewed_functions (signature, body_sha256, reason) values ('x', $1, 'y')`, [
          'a'.repeat(64),
        ]),
      ).rejects.toMatchObject({ code: '42501' });
    } finally {
      await app.end();
    }
  });

  it('tenantry doctor accept-function records a review from the command line', async () => {
    const { stdout } = await exec(
      path.resolve('node_modules/.bin/tsx'),
      [
        path.resolve('src/cli/main.ts'),
        '--database-url',
        db.adminUrl,
        'doctor',
        'accept-function',
        'public.all_note_bodies()',
        '--reason',
        'export job, reviewed',
      ],
      { env: { ...process.env, TENANTRY_APP_PASSWORD: ROLE_PASSWORD } },
    );
    expect(stdout).toMatch(/^accepted public\.all_note_bodies\(\) \(body sha256 [0-9a-f]{64}\)/);
    const report = await runDoctor(db.adminUrl);
    expect(definerFindings(report)).not.toContain('DEFINER_NOT_REVIEWED public.all_note_bodies()');
    const { rows } = await db.admin.query(
      `select reason, pg_get_userbyid(c.relowner) as owner from tenantry.reviewed_functions, pg_class c
        where c.oid = 'tenantry.reviewed_functions'::regclass and signature = 'public.all_note_bodies()'`,
    );
    // created by the owner role earlier; a superuser's CLI run leaves it with the owner role
    expect(rows).toEqual([{ reason: 'export job, reviewed', owner: db.ownerRole }]);
  });
});

describe('doctor on the reference server’s definer functions', () => {
  let ref: TestDatabase;
  afterAll(() => ref?.drop());

  it('a database migrated with app/migrations has every definer function reviewed: no finding', async () => {
    ref = await createDoctorTestDatabase();
    await ensureExtensions(ref.adminUrl);
    await migrate(ref.owner, { appRole: ref.appRole });
    expect(await runDoctor(ref.adminUrl)).toEqual({ ok: true, findings: [] });
    const { rows } = await ref.admin.query<{ signature: string }>(
      'select signature from tenantry.reviewed_functions order by 1',
    );
    expect(rows.map((r) => r.signature)).toEqual([
      'app.accept_invitation(bytea, text, text, text, bytea, integer)',
      'app.send_invitation(text)',
      'app.sign_in(text, text, text, integer)',
      'app.staff_profile(uuid)',
      'app.staff_sign_in(text, text, integer)',
    ]);
  });
});
