// A bare `tenantry install` re-run (a deploy job without the first install's flags) on a database
// first installed with --app-role / --owner-role of its own keeps those roles: it used to move
// the install to the default names, whose owner role could not touch the tables the recorded
// one owns (42501 permission denied for table meta), and created roles nobody chose.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createEmptyDatabase, type EmptyDatabase } from '../support/empty-database.js';
import { runCli } from '../support/run-cli.js';

const cleanups: (() => Promise<void>)[] = [];
let db: EmptyDatabase;
let parent: string;
const DEFAULTS = ['tenantry_app', 'tenantry_owner'];
let defaultsBefore: string[];

async function existing(names: string[]): Promise<string[]> {
  const { rows } = await db.admin.query<{ rolname: string }>(
    'select rolname from pg_roles where rolname = any($1) order by rolname',
    [names],
  );
  return rows.map((r) => r.rolname);
}

beforeAll(async () => {
  db = await createEmptyDatabase(cleanups);
  parent = await mkdtemp(path.join(os.tmpdir(), 'tenantry-recorded-roles-'));
  defaultsBefore = await existing(DEFAULTS);
  // a default role a failing re-run made (never one that was there before): gone again
  cleanups.unshift(async () => {
    const root = new pg.Client({ connectionString: inject('adminUrl') });
    await root.connect();
    for (const role of DEFAULTS.filter((r) => !defaultsBefore.includes(r)))
      await root.query(`drop role if exists ${role}`).catch(() => undefined);
    await root.end();
  });
}, 60_000);
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await rm(parent, { recursive: true, force: true });
});

describe('tenantry install re-run without the role flags of the first install', () => {
  it('keeps the recorded --app-role and --owner-role, and succeeds', async () => {
    const dir = path.join(parent, '.tenantry');
    const cli = (...args: string[]) =>
      // the support and router roles are the database's own (not the shared default names)
      runCli(['--database-url', db.adminUrl, '--dir', dir, ...args], {
        TENANTRY_SUPPORT_ROLE: db.roles.support,
        TENANTRY_ROUTER_ROLE: db.roles.router,
      });
    const first = await cli('install', '--app-role', db.roles.app, '--owner-role', db.roles.owner);
    expect(first.code, first.stderr).toBe(0);
    const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as { appPassword: string };

    const again = await cli('install');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout + again.stderr).not.toContain('42501');
    expect(again.stdout).toContain(
      `tenantry installed (signed context) for app role ${db.roles.app}, owner role ${db.roles.owner}`,
    );
    expect(again.stdout).toContain(`role --owner-role ${db.roles.owner} (as this database records`);
    expect(again.stdout).toContain(
      `password of ${db.roles.app} kept (it is the one from ${path.join(dir, 'config.json')}`,
    );
    expect(again.stderr).not.toContain('WARNING');
    const { rows } = await db.admin.query<{ key: string; value: string }>(
      `select key, value from tenantry.meta where key in ('app_role', 'owner_role') order by key`,
    );
    expect(rows).toEqual([
      { key: 'app_role', value: db.roles.app },
      { key: 'owner_role', value: db.roles.owner },
    ]);

    const plan = await cli('install', '--dry-run');
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain(`-- --app-role ${db.roles.app} (as this database records`);
    expect(plan.stdout).toContain('-- pending library migrations: none');

    // no default role was made for it
    expect(await existing(DEFAULTS)).toEqual(defaultsBefore);
    // and the app still connects with the password the first install recorded
    const u = new URL(db.adminUrl);
    u.username = db.roles.app;
    u.password = config.appPassword;
    const app = new pg.Client({ connectionString: u.toString() });
    await app.connect();
    await app.end();
  }, 180_000);
});
