import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateLocation } from '../../src/tiers/migrate/migrate-location.js';
import { createTestDatabase, ROLE_PASSWORD, type TestDatabase } from '../support/test-database.js';

// `tenantry tenants onboard` as a subprocess (node --import tsx: the CLI is the child itself, so
// its SIGKILL is the process dying, not a wrapper's), killed at every step and run again.
const exec = promisify(execFile);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve('src/cli/main.ts');
const MIGRATIONS = path.join(HERE, 'fixtures', 'onboard-migrations');
const HOOKS = path.join(HERE, 'fixtures', 'onboard-hooks.ts');
const CRASH_ONLY = path.join(HERE, 'fixtures', 'onboard-crash-only.ts');

let db: TestDatabase;
let dir: string;

interface Run {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

async function tenantry(args: string[], env: Record<string, string> = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await exec(
      process.execPath,
      ['--import', 'tsx', CLI, '--database-url', db.adminUrl, '--dir', dir, ...args],
      {
        env: {
          ...process.env,
          TENANTRY_APP_PASSWORD: ROLE_PASSWORD,
          TENANTRY_OWNER_PASSWORD: ROLE_PASSWORD,
          TENANTRY_APP_ROLE: db.appRole,
          TENANTRY_OWNER_ROLE: db.ownerRole,
          TENANTRY_CONTEXT_SECRET: db.contextSecret,
          TENANTRY_ROUTER_ROLE: db.routerRole,
          TENANTRY_ROUTER_PASSWORD: ROLE_PASSWORD,
          ...env,
        },
        timeout: 60_000,
      },
    );
    return { code: 0, signal: null, stdout, stderr };
  } catch (error) {
    const e = error as { code: number | null; signal: string | null; stdout: string; stderr: string };
    return { code: e.code, signal: e.signal, stdout: e.stdout, stderr: e.stderr };
  }
}

const onboard = (slug: string, extra: string[] = [], env: Record<string, string> = {}) =>
  tenantry(
    [
      'tenants',
      'onboard',
      slug,
      '--name',
      `Tenant ${slug}`,
      '--plan',
      'business',
      '--owner-email',
      `owner@${slug}.test`,
      '--migrations',
      MIGRATIONS,
      '--hooks',
      HOOKS,
      ...extra,
    ],
    env,
  );

/** Everything the onboarding of `slug` made, counted as the superuser. */
async function footprint(slug: string) {
  const schema = `t_${slug.replaceAll('-', '_')}`;
  const q = async (sql: string, params: unknown[] = []) =>
    Number((await db.admin.query<{ n: string }>(`select (${sql})::bigint as n`, params)).rows[0]!.n);
  const tenant = (await db.admin.query<{ id: string }>('select id from tenantry.tenants where slug = $1', [slug]))
    .rows[0]?.id;
  return {
    tenants: await q('select count(*) from tenantry.tenants where slug = $1', [slug]),
    completed: await q('select count(*) from tenantry.onboardings where slug = $1 and completed_at is not null', [
      slug,
    ]),
    schema: await q('select count(*) from pg_namespace where nspname = $1', [schema]),
    placements: await q(`select count(*) from tenantry.placements where tenant_id = $1 and schema = $2`, [
      tenant,
      schema,
    ]),
    notes: (await q('select count(*) from pg_class where oid = to_regclass($1)', [`${schema}.notes`]))
      ? await q(`select count(*) from ${schema}.notes`)
      : 0,
    codes: await q('select count(*) from tenantry_private.one_time_codes where tenant_id = $1', [tenant]),
    delivered: await q('select count(*) from mail.outbox where tenant_id = $1', [tenant]),
    audit: await q(`select count(*) from tenantry.audit_log where tenant_id = $1 and action = 'tenant.onboarded'`, [
      tenant,
    ]),
  };
}

const COMPLETE = { tenants: 1, completed: 1, schema: 1, placements: 1, notes: 1, codes: 1, delivered: 1, audit: 1 };

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-onboard-'));
  await migrateLocation({ clusters: { home: db.ownerUrl }, cluster: 'home', migrations: MIGRATIONS });
  // the application's outbox: written only through a definer function, as app.send_invitation
  await db.owner.query(`
    create schema mail;
    create table mail.outbox (id bigint generated always as identity primary key, tenant_id uuid not null, recipient text not null);
    create function public.send_invitation(p_email text) returns void language sql security definer
      set search_path = pg_catalog, pg_temp
      as $$ insert into mail.outbox (tenant_id, recipient) values (tenantry.home_tenant_id(), p_email) $$;
    grant execute on function public.send_invitation(text) to ${db.appRole};`);
});
afterAll(async () => {
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// each run is a fresh Node process: slow on a loaded machine
describe('tenantry tenants onboard', { timeout: 300_000 }, () => {
  it('onboards in one command, and says so when run again', async () => {
    const first = await onboard('cli-one');
    expect(first.stderr).not.toContain('    at ');
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^onboarded cli-one: tenant [0-9a-f-]{36}, schema on cluster home, schema t_cli_one/);
    expect(first.stdout).toContain('ran: create, provision, migrate, route, seed, invite, done');
    expect(first.stdout).toContain('owner invitation for owner@cli-one.test: delivered');
    expect(await footprint('cli-one')).toEqual(COMPLETE);
    const again = await onboard('cli-one');
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(
      /^cli-one is already onboarded \(schema on cluster home, schema t_cli_one, completed .*\): nothing to do/,
    );
    expect(await footprint('cli-one')).toEqual(COMPLETE);
  });

  it('refuses a conflicting re-run and bad input with a code and no stack trace, changing nothing', async () => {
    const conflict = await tenantry(['tenants', 'onboard', 'cli-one', '--name', 'Another name']);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toMatch(/^error ONBOARDING_CONFLICT: Tenant cli-one was onboarded with another name/);
    expect(conflict.stderr).not.toContain('    at ');
    const bad = await tenantry(['tenants', 'onboard', 'Not A Slug', '--name', 'x']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error INVALID_ARGUMENT: slug: 1-63 of/);
    const email = await tenantry(['tenants', 'onboard', 'cli-two', '--name', 'Two', '--owner-email', 'nope']);
    expect(email.stderr).toMatch(/^error INVALID_ARGUMENT: ownerEmail must be an email address/);
    const noName = await tenantry(['tenants', 'onboard', 'cli-two']);
    expect(noName.code).toBe(2);
    expect(noName.stderr).toContain("required option '--name <name>' not specified");
    expect(await footprint('cli-one')).toEqual(COMPLETE);
    expect((await db.admin.query(`select from tenantry.tenants where slug = 'cli-two'`)).rowCount).toBe(0);
  });

  // the one-statement path (shared tier, no seed, no owner): killed before its statement, nothing
  // is made; killed after it, everything is (one commit): a re-run says so
  it.each(['create:started', 'create:applied'])(
    'one-statement onboarding killed with SIGKILL at %s: all or nothing, a re-run finishes or confirms',
    async (point) => {
      const slug = `quick-${point.replace(':', '-')}`;
      const args = ['tenants', 'onboard', slug, '--name', `Quick ${slug}`, '--hooks', CRASH_ONLY];
      const killed = await tenantry(args, { ONBOARD_CRASH: point });
      expect(killed.signal, killed.stderr).toBe('SIGKILL');
      const state = async () =>
        (
          await db.admin.query<{ status: string; completed: boolean; held: string | null; audit: number }>(
            `select t.status, o.completed_at is not null as completed, i.status as held,
                    (select count(*)::int from tenantry.audit_log a where a.tenant_id = t.id and a.action = 'tenant.onboarded') as audit
               from tenantry.tenants t join tenantry.onboardings o on o.tenant_id = t.id
               left join tenantry.inactive_tenants i on i.tenant_key = t.id::text where t.slug = $1`,
            [slug],
          )
        ).rows;
      const done = [{ status: 'active', completed: true, held: null, audit: 1 }];
      expect(await state()).toEqual(point === 'create:started' ? [] : done);
      const rerun = await tenantry(args);
      expect(rerun.code, rerun.stderr).toBe(0);
      expect(rerun.stdout).toMatch(
        point === 'create:started' ? /^onboarded / : /is already onboarded \(shared on cluster home/,
      );
      expect(await state()).toEqual(done);
    },
  );

  // every step, killed after its work and before its record (the worst moment), and before it starts
  const points = [
    'create:started',
    'create:applied',
    'provision:applied',
    'migrate:applied',
    'route:applied',
    'seed:inside',
    'seed:applied',
    'invite:inside',
    'invite:applied',
    'done:started',
  ];
  it.each(points)('killed with SIGKILL at %s, a re-run finishes with nothing made twice', async (point) => {
    const slug = `crash-${point.replace(':', '-')}`;
    const killed = await onboard(slug, [], { ONBOARD_CRASH: point });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    const after = await footprint(slug);
    expect(after.completed).toBe(0);
    // half-made: not an active tenant, and held at the data plane (an attempt killed inside the
    // seed hook leaves the hold lifted: the re-run puts it back before anything else)
    const made = await db.admin.query<{ status: string; held: string | null }>(
      `select t.status, i.status as held from tenantry.tenants t
         left join tenantry.inactive_tenants i on i.tenant_key = t.id::text where t.slug = $1`,
      [slug],
    );
    if (point === 'create:started') expect(made.rows).toEqual([]);
    else expect(made.rows).toEqual([{ status: 'provisioning', held: point === 'seed:inside' ? null : 'provisioning' }]);
    const rerun = await onboard(slug);
    expect(rerun.stderr).not.toContain('    at ');
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stdout).toMatch(point === 'create:started' ? /^onboarded / : /^resumed and finished the onboarding/);
    expect(await footprint(slug)).toEqual(COMPLETE);
    const active = await db.admin.query(
      `select t.status, i.status as held from tenantry.tenants t
         left join tenantry.inactive_tenants i on i.tenant_key = t.id::text where t.slug = $1`,
      [slug],
    );
    expect(active.rows).toEqual([{ status: 'active', held: null }]);
  });
});

// Without a delivery hook the owner's code is printed once, at the end: a run killed after the
// invite step never printed it. The re-run replaces it; --reissue-invite does so for a finished one.
describe('tenantry tenants onboard: the owner invitation of a killed run is not lost', { timeout: 300_000 }, () => {
  const valid = async (slug: string) =>
    (
      await db.admin.query<{ hash: Buffer }>(
        `select c.code_hash as hash from tenantry_private.one_time_codes c join tenantry.tenants t on t.id = c.tenant_id
          where t.slug = $1 and c.purpose = 'invite' and c.consumed_at is null and c.expires_at > now()`,
        [slug],
      )
    ).rows.map((r) => r.hash.toString('hex'));
  const printed = (stdout: string) => /code ([A-Za-z0-9_-]{22}) /.exec(stdout)?.[1];
  const hashOf = (code: string) => createHash('sha256').update(code).digest('hex');

  it.each(['invite:applied', 'invite:recorded'])(
    'killed with SIGKILL at %s (no delivery hook): the re-run revokes the unseen invitation and prints a new code; exactly one valid',
    async (point) => {
      const slug = `lost-${point.replace(':', '-')}`;
      const args = ['tenants', 'onboard', slug, '--name', `Lost ${slug}`, '--owner-email', `o@${slug}.test`];
      const killed = await tenantry([...args, '--hooks', CRASH_ONLY], { ONBOARD_CRASH: point });
      expect(killed.signal, killed.stderr).toBe('SIGKILL');
      if (point === 'invite:recorded') expect(killed.stderr).toContain('step invite: done');
      expect(killed.stdout).not.toMatch(/code /);
      const unseen = await valid(slug);
      expect(unseen).toHaveLength(1);
      const rerun = await tenantry(args);
      expect(rerun.code, rerun.stderr).toBe(0);
      expect(rerun.stdout).toMatch(/^resumed and finished the onboarding/);
      expect(rerun.stdout).toContain(`the earlier owner invitation for o@${slug}.test was never shown: revoked`);
      const code = printed(rerun.stdout);
      expect(code).toBeDefined();
      expect(await valid(slug)).toEqual([hashOf(code!)]);
      expect(unseen[0]).not.toBe(hashOf(code!));
      // a finished onboarding: a plain re-run does nothing; --reissue-invite replaces a lost code
      const again = await tenantry(args);
      expect(again.stdout).toContain('nothing to do');
      expect(await valid(slug)).toEqual([hashOf(code!)]);
      const reissued = await tenantry([...args, '--reissue-invite']);
      expect(reissued.code, reissued.stderr).toBe(0);
      expect(reissued.stdout).toMatch(/is already onboarded/);
      const fresh = printed(reissued.stdout);
      expect(fresh).toBeDefined();
      expect(fresh).not.toBe(code);
      expect(await valid(slug)).toEqual([hashOf(fresh!)]);
    },
  );
});
