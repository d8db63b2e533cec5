// A first `tenantry install` writes .tenantry/config.json unless a secret the file must hold is
// held already: this database's context key, or the app or owner role THIS install uses existing
// on the server. A role of the server the install does not use (a default name, another
// database's) used to keep the file from being written, and the warning named it as the reason;
// a router or support role that exists only has its password left out of the file (its password
// is not known here), and the install goes on (it used to fail: no context secret recorded).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createEmptyDatabase } from '../support/empty-database.js';
import { loginOutcome, roleVariables, runCli } from '../support/run-cli.js';

const cleanups: (() => Promise<void>)[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function freshDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-config-roles-'));
  dirs.push(dir);
  return path.join(dir, '.tenantry');
}

/** Roles made here beyond the database's own four: dropped last, after the databases. */
function extraRoles(...roles: string[]): string[] {
  cleanups.unshift(async () => {
    const root = new pg.Client({ connectionString: inject('adminUrl') });
    await root.connect();
    for (const role of roles) await root.query(`drop role if exists ${role}`).catch(() => undefined);
    await root.end();
  });
  return roles;
}

type Config = Record<string, string | undefined>;

describe('tenantry install: which roles keep config.json from being written', () => {
  it("the folder's default roles existing on the server do not, when this install uses roles of its own", async () => {
    const db = await createEmptyDatabase(cleanups);
    // what another database's install left on the server: the folder's app and router role names
    await db.admin.query(`create role ${db.roles.app} login password 'another-deployment'`);
    await db.admin.query(`create role ${db.roles.router} login password 'another-deployment'`);
    const [app, owner, router] = extraRoles(`${db.name}_a2`, `${db.name}_o2`, `${db.name}_r2`);
    const dir = await freshDir();
    const r = await runCli(
      [
        '--database-url',
        db.adminUrl,
        '--dir',
        dir,
        'install',
        '--app-role',
        app!,
        '--owner-role',
        owner!,
        '--router-role',
        router!,
      ],
      roleVariables(db.roles),
    );
    expect(r.code, r.stderr).toBe(0);
    const file = path.join(dir, 'config.json');
    const config = JSON.parse(await readFile(file, 'utf8')) as Config;
    // the folder's router role's password is left out (that role's is not known here), the rest recorded
    expect(Object.keys(config).sort()).toEqual([
      'appPassword',
      'contextSecret',
      'jwtSecret',
      'ownerPassword',
      'supportPassword',
    ]);
    expect(r.stdout).toContain(`context secret: stored, the one from ${file}`);
    expect(r.stdout).toContain(`password of ${app} set (the role had none), from ${file}`);
    expect(await loginOutcome(db.adminUrl, app!, config.appPassword!)).toBe('ok');
    // roles this install does not use are no reason, and are not named
    expect(r.stderr).not.toContain('WARNING');
    expect(r.stdout + r.stderr).not.toContain(db.roles.app);
    expect(r.stdout + r.stderr).not.toContain(db.roles.router);
  }, 120_000);

  it('the router role this install uses existing: the file is written without its password, and the install says so', async () => {
    const db = await createEmptyDatabase(cleanups);
    await db.admin.query(`create role ${db.roles.router} login password 'another-deployment'`);
    const env = {
      ...roleVariables(db.roles),
    };
    const dir = await freshDir();
    const file = path.join(dir, 'config.json');
    const first = await runCli(['--database-url', db.adminUrl, '--dir', dir, 'install'], env);
    expect(first.code, first.stderr).toBe(0);
    const config = JSON.parse(await readFile(file, 'utf8')) as Config;
    expect(config.routerPassword).toBeUndefined();
    expect(config.contextSecret).toBeDefined();
    expect(first.stdout).toContain(`context secret: stored, the one from ${file}`);
    expect(first.stdout).toContain(
      `password of ${db.roles.router}: none given (TENANTRY_ROUTER_PASSWORD is not set and ${file} does not record it: ` +
        `the role ${db.roles.router} existed on this server already, its password is not known here)`,
    );
    expect(first.stderr).not.toContain('WARNING');
    // its password is its own still
    expect(await loginOutcome(db.adminUrl, db.roles.router, 'another-deployment')).toBe('ok');

    const again = await runCli(['--database-url', db.adminUrl, '--dir', dir, 'install'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toContain('WARNING');
    expect(again.stdout).toContain(`context secret: the installed key is the one from ${file}`);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(config);
  }, 120_000);

  it("the app role this install uses existing: nothing written, and the warning names that role, not the server's others", async () => {
    const db = await createEmptyDatabase(cleanups);
    for (const role of [db.roles.app, db.roles.router])
      await db.admin.query(`create role ${role} login password 'another-deployment'`);
    const dir = await freshDir();
    const r = await runCli(['--database-url', db.adminUrl, '--dir', dir, 'install'], {
      ...roleVariables(db.roles),
      TENANTRY_CONTEXT_SECRET: randomBytes(24).toString('base64url'),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(path.join(dir, 'config.json'))).toBe(false);
    expect(r.stderr).toContain(
      `config.json is missing and was not written: it would hold the password of ${db.roles.app}, and that role exists already on this server`,
    );
    expect(r.stderr).not.toContain(db.roles.router);
  }, 120_000);

  it('then, without TENANTRY_CONTEXT_SECRET, a first install stops naming the variable (there is no --context-secret flag)', async () => {
    const db = await createEmptyDatabase(cleanups);
    await db.admin.query(`create role ${db.roles.app} login password 'another-deployment'`);
    const dir = await freshDir();
    const r = await runCli(['--database-url', db.adminUrl, '--dir', dir, 'install'], {
      ...roleVariables(db.roles),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('needs a context secret on first install');
    expect(r.stderr).toContain('TENANTRY_CONTEXT_SECRET');
    expect(r.stderr).not.toContain('--context-secret');
    expect(existsSync(path.join(dir, 'config.json'))).toBe(false);
  }, 120_000);
});
