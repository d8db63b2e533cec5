import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { passwordMatchesVerifier } from '../../src/policy/password-verifier.js';
import { createEmptyDatabase, type EmptyDatabase } from '../support/empty-database.js';
import { loginOutcome, runCli } from '../support/run-cli.js';
import { dropDatabase } from '../support/drop-database.js';

// `tenantry install` without the TENANTRY_* secrets (a deploy job that misses them) keeps the
// database's credentials and context key, never records secrets that do not match them in
// .tenantry/config.json, and says where each secret it compared came from (review finding 6:
// it wrote a new config.json whose secrets mismatched the database and warned about a "given"
// secret nobody gave).

const cleanups: (() => Promise<void>)[] = [];
const dirs: string[] = [];
let db: EmptyDatabase;
const secrets = {
  TENANTRY_CONTEXT_SECRET: randomBytes(24).toString('base64url'),
  TENANTRY_APP_PASSWORD: randomBytes(18).toString('base64url'),
  TENANTRY_OWNER_PASSWORD: randomBytes(18).toString('base64url'),
};

beforeAll(async () => {
  db = await createEmptyDatabase(cleanups);
}, 60_000);
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function freshDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-install-secrets-'));
  dirs.push(dir);
  return path.join(dir, '.tenantry');
}

/** The CLI as a subprocess, with only the TENANTRY_* variables given here. */
async function cli(dir: string, env: Record<string, string | undefined>, ...args: string[]) {
  return cliAt(db.adminUrl, dir, env, ...args);
}

/** {@link cli} against another database of the same server. */
async function cliAt(url: string, dir: string, env: Record<string, string | undefined>, ...args: string[]) {
  return runCli(['--database-url', url, '--dir', dir, ...args], {
    TENANTRY_APP_ROLE: db.roles.app,
    TENANTRY_OWNER_ROLE: db.roles.owner,
    TENANTRY_ROUTER_ROLE: db.roles.router,
    ...env,
  });
}

async function state() {
  const key = (await db.admin.query<{ ipad: Buffer }>('select ipad from tenantry_private.context_key')).rows;
  const verifiers = (
    await db.admin.query<{ rolname: string; rolpassword: string }>(
      'select rolname, rolpassword from pg_authid where rolname = any($1) order by rolname',
      [[db.roles.app, db.roles.owner]],
    )
  ).rows;
  return { key, verifiers };
}

describe('tenantry install and the secrets of .tenantry/config.json', () => {
  it('a first install with the variables records them, so a run without them matches and warns of nothing', async () => {
    const dir = await freshDir();
    const first = await cli(dir, secrets, 'install');
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('context secret: stored, the one from TENANTRY_CONTEXT_SECRET');
    const recorded = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, string>;
    expect(recorded.contextSecret).toBe(secrets.TENANTRY_CONTEXT_SECRET);
    expect(recorded.appPassword).toBe(secrets.TENANTRY_APP_PASSWORD);
    const before = await state();

    const second = await cli(dir, {}, 'install');
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).not.toContain('WARNING');
    const file = path.join(dir, 'config.json');
    expect(second.stdout).toContain(`context secret: the installed key is the one from ${file}`);
    expect(second.stdout).toContain(`password of ${db.roles.app} kept (it is the one from ${file}`);
    expect(await state()).toEqual(before);
  }, 120_000);

  it('without the variables and without config.json: nothing written, nothing changed, nothing said to be "given"', async () => {
    const before = await state();
    const dir = await freshDir();
    const r = await cli(dir, {}, 'install');
    expect(r.code, r.stderr).toBe(0);
    // no config.json with made-up secrets that would mismatch the database (28P01 / TR001 later)
    expect(existsSync(path.join(dir, 'config.json'))).toBe(false);
    expect(r.stdout).toContain('context secret: none given (TENANTRY_CONTEXT_SECRET is not set and');
    expect(r.stdout).toContain(`password of ${db.roles.app}: none given (TENANTRY_APP_PASSWORD is not set`);
    expect(r.stderr).toContain('is missing and this database holds an install already, so it was not written');
    expect(r.stdout + r.stderr).not.toMatch(/secret given differs|the one given/);
    expect(await state()).toEqual(before);
    expect(await loginOutcome(db.adminUrl, db.roles.app, secrets.TENANTRY_APP_PASSWORD)).toBe('ok');
  }, 120_000);

  it('a config.json whose secrets are not the database’s: kept, and each warning names the file', async () => {
    const before = await state();
    const dir = await freshDir();
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, 'config.json');
    const wrong = {
      contextSecret: randomBytes(24).toString('base64url'),
      jwtSecret: randomBytes(24).toString('base64url'),
      appPassword: 'not-the-app-password',
      ownerPassword: secrets.TENANTRY_OWNER_PASSWORD,
      supportPassword: 'x'.repeat(20),
    };
    await writeFile(file, JSON.stringify(wrong), { mode: 0o600 });
    const r = await cli(dir, {}, 'install');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      `WARNING: password of ${db.roles.app} kept, and the one from ${file} (TENANTRY_APP_PASSWORD is not set) is not it`,
    );
    expect(r.stdout).toContain(`password of ${db.roles.owner} kept (it is the one from ${file}`);
    expect(r.stderr).toContain(
      `WARNING: the context secret from ${file} (TENANTRY_CONTEXT_SECRET is not set) differs from the key installed here, which was kept`,
    );
    expect(r.stdout + r.stderr).not.toContain(wrong.contextSecret);
    expect(r.stdout + r.stderr).not.toContain(wrong.appPassword);
    expect(await state()).toEqual(before);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(wrong); // the file is not rewritten either
    expect(await loginOutcome(db.adminUrl, db.roles.app, secrets.TENANTRY_APP_PASSWORD)).toBe('ok');
  }, 120_000);

  it('a new database of a server whose roles exist already: the warning says so, not that the database holds an install', async () => {
    // roles are shared by every database of a server (and of a Citus cluster): a new database
    // has them, with the passwords of the first install, and no install of its own
    const name = `${db.name}_second`;
    await db.admin.query(`create database ${name}`);
    cleanups.push(async () => {
      await dropDatabase(db.admin, name);
    });
    const u = new URL(db.adminUrl);
    u.pathname = `/${name}`;
    const dir = await freshDir();
    const r = await cliAt(u.toString(), dir, { TENANTRY_CONTEXT_SECRET: secrets.TENANTRY_CONTEXT_SECRET }, 'install');
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(path.join(dir, 'config.json'))).toBe(false);
    // the app and owner roles keep the file from being written (it must hold their passwords);
    // the router role existing only keeps its own password out of a file, and is not a reason
    expect(r.stderr).toContain(
      `is missing and was not written: it would hold the password of ${db.roles.app} and ${db.roles.owner}, and these roles exist already on this server (roles are shared by all its databases; this database had no install)`,
    );
    expect(r.stderr).not.toContain('holds an install already');
    expect(r.stdout).toContain('context secret: stored, the one from TENANTRY_CONTEXT_SECRET');
    expect(await loginOutcome(db.adminUrl, db.roles.app, secrets.TENANTRY_APP_PASSWORD)).toBe('ok');
  }, 120_000);
});

describe('the project folder', () => {
  it('TENANTRY_DIR names it when --dir is not given, as for the reference server', async () => {
    const dir = await freshDir();
    // (an install: a dry run creates nothing, not even the folder)
    const r = await runCli(['--database-url', db.adminUrl, 'install'], {
      TENANTRY_DIR: dir,
      TENANTRY_APP_ROLE: db.roles.app,
      TENANTRY_OWNER_ROLE: db.roles.owner,
      TENANTRY_ROUTER_ROLE: db.roles.router,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(dir)).toBe(true);
  }, 120_000);
});

describe('passwordMatchesVerifier', () => {
  it('--router-role and --support-role other than the local ones: their variables give them a password; without one the install says so', async () => {
    const router = `${db.name}_other_router`;
    const support = `${db.name}_other_support`;
    cleanups.push(async () => {
      for (const role of [router, support])
        await db.admin.query(`drop owned by ${role}; drop role ${role}`).catch(() => undefined);
    });
    const routerPassword = randomBytes(18).toString('base64url');
    const supportPassword = randomBytes(18).toString('base64url');
    const dir = await freshDir();
    const given = await cli(
      dir,
      { ...secrets, TENANTRY_ROUTER_PASSWORD: routerPassword, TENANTRY_SUPPORT_PASSWORD: supportPassword },
      'install',
      '--router-role',
      router,
      '--support-role',
      support,
    );
    expect(given.code, given.stderr).toBe(0);
    expect(await loginOutcome(db.adminUrl, router, routerPassword)).toBe('ok');
    expect(await loginOutcome(db.adminUrl, support, supportPassword)).toBe('ok');
    expect(given.stdout).not.toContain('none given');
    expect(given.stdout + given.stderr).not.toContain(routerPassword);

    const without = await cli(dir, secrets, 'install', '--router-role', router, '--support-role', support);
    expect(without.code, without.stderr).toBe(0);
    expect(without.stdout).toContain(`password of ${router}: none given (TENANTRY_ROUTER_PASSWORD is not set`);
    expect(without.stdout).toContain(`password of ${support}: none given (TENANTRY_SUPPORT_PASSWORD is not set`);
    // the password given before is kept
    expect(await loginOutcome(db.adminUrl, router, routerPassword)).toBe('ok');

    // again without the role flags: the roles this database records, not the default names
    const meta = async () =>
      (
        await db.admin.query<{ key: string; value: string }>(
          `select key, value from tenantry.meta where key in ('router_role', 'support_role') order by key`,
        )
      ).rows;
    const recorded = await meta();
    expect(recorded).toEqual([
      { key: 'router_role', value: router },
      { key: 'support_role', value: support },
    ]);
    // (no TENANTRY_ROUTER_ROLE either: it would name the role as a flag does)
    const plain = await cli(dir, { ...secrets, TENANTRY_ROUTER_ROLE: undefined }, 'install');
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toContain(`role --router-role ${router} (as this database records`);
    expect(plain.stdout).toContain(`role --support-role ${support} (as this database records`);
    expect(await meta()).toEqual(recorded);
    const { rows: grants } = await db.admin.query<{ ok: boolean }>(
      `select has_function_privilege($1, 'tenantry.route_of(uuid)', 'execute') as ok`,
      [router],
    );
    expect(grants[0]!.ok).toBe(true);
    // a flag still changes it
    const dry = await cli(dir, secrets, 'install', '--dry-run', '--router-role', router);
    expect(dry.stdout).not.toContain(`--router-role ${router} (as this database records`);
  }, 120_000);

  it("tells PostgreSQL's SCRAM and md5 verifiers of a password from others", async () => {
    const role = `${db.name}_probe`;
    cleanups.push(async () => {
      await db.admin.query(`drop role if exists ${role}`);
    });
    await db.admin.query(`create role ${role} password 'the-password'`);
    const { rows } = await db.admin.query<{ v: string }>('select rolpassword as v from pg_authid where rolname = $1', [
      role,
    ]);
    expect(rows[0]!.v).toMatch(/^SCRAM-SHA-256\$/);
    expect(passwordMatchesVerifier(rows[0]!.v, role, 'the-password')).toBe(true);
    expect(passwordMatchesVerifier(rows[0]!.v, role, 'the-passwordx')).toBe(false);
    expect(passwordMatchesVerifier(rows[0]!.v, role, 'pässword')).toBeUndefined(); // SASLprep not reproduced
    expect(passwordMatchesVerifier('md5' + '0'.repeat(32), role, 'x')).toBe(false);
    expect(passwordMatchesVerifier('plain', role, 'plain')).toBeUndefined();
  });
});
