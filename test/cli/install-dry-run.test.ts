// `tenantry install --dry-run` prints what is pending and changes nothing: not the database, and
// not the disk either (it used to create the --dir folder, narrow the modes in it, and could
// write config.json). And the folder a real install makes with a server URL is 0700, also as
// root: 0711 is for the embedded server only, whose postgres system user passes through it.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyDatabase, type EmptyDatabase } from '../support/empty-database.js';
import { openLocalDatabase } from '../../src/embedded/local-database.js';
import { roleVariables, runCli } from '../support/run-cli.js';

const cleanups: (() => Promise<void>)[] = [];
let db: EmptyDatabase;
let parent: string;
beforeAll(async () => {
  db = await createEmptyDatabase(cleanups);
  parent = await mkdtemp(path.join(os.tmpdir(), 'tenantry-dry-run-'));
}, 60_000);
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await rm(parent, { recursive: true, force: true });
});

const mode = async (file: string) => (await stat(file)).mode & 0o777;
const roles = () => roleVariables(db.roles);
async function installed(): Promise<{ schema: boolean; roles: number }> {
  const { rows } = await db.admin.query<{ schema: boolean; roles: number }>(
    `select to_regnamespace('tenantry') is not null as schema,
            (select count(*)::int from pg_roles where rolname = any($1)) as roles`,
    [Object.values(db.roles)],
  );
  return rows[0]!;
}

describe('tenantry install --dry-run changes nothing', () => {
  it('with a server URL: no --dir folder is created, and the database is as it was', async () => {
    const dir = path.join(parent, 'new', '.tenantry');
    const r = await runCli(['--database-url', db.adminUrl, '--dir', dir, 'install', '--dry-run'], roles());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('-- pending library migrations: core/001_core');
    expect(existsSync(path.join(parent, 'new'))).toBe(false);
    expect(await installed()).toEqual({ schema: false, roles: 0 });
  }, 120_000);

  it('an existing folder: no mode narrowed, config.json not completed or rewritten', async () => {
    const dir = path.join(parent, 'existing');
    await mkdir(dir);
    await chmod(dir, 0o755);
    const file = path.join(dir, 'config.json');
    // as a version before the router role wrote it: a real install would add routerPassword
    const content = JSON.stringify({
      contextSecret: randomBytes(24).toString('base64url'),
      jwtSecret: randomBytes(24).toString('base64url'),
      appPassword: randomBytes(18).toString('base64url'),
      ownerPassword: randomBytes(18).toString('base64url'),
    });
    await writeFile(file, content);
    await chmod(file, 0o644);
    const r = await runCli(['--database-url', db.adminUrl, '--dir', dir, 'install', '--dry-run'], roles());
    expect(r.code, r.stderr).toBe(0);
    expect(await readdir(dir)).toEqual(['config.json']);
    expect(await readFile(file, 'utf8')).toBe(content);
    expect([await mode(dir), await mode(file)]).toEqual([0o755, 0o644]);
    expect(await installed()).toEqual({ schema: false, roles: 0 });
  }, 120_000);

  it('without a server URL: a folder with no embedded server is refused, and none is created', async () => {
    const missing = path.join(parent, 'typo');
    const r = await runCli(['--dir', missing, 'install', '--dry-run'], roles());
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`No Tenantry install in ${missing}`);
    expect(existsSync(missing)).toBe(false);
    // a folder used with a server URL so far (config.json, no pgdata): no initdb there either
    const urlOnly = path.join(parent, 'url-only');
    await mkdir(urlOnly, { mode: 0o700 });
    await writeFile(path.join(urlOnly, 'config.json'), '{}', { mode: 0o600 });
    const again = await runCli(['--dir', urlOnly, 'install', '--dry-run'], roles());
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`No embedded PostgreSQL in ${urlOnly}`);
    expect(await readdir(urlOnly)).toEqual(['config.json']);
  }, 120_000);
  it("without a server URL: the folder's embedded server is read, the folder left as it was", async () => {
    const dir = path.join(parent, 'embedded');
    await chmod(parent, 0o711); // as root the server runs as the postgres system user, which passes through
    const env = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    try {
      await (await openLocalDatabase({ dir })).stop();
    } finally {
      if (env !== undefined) process.env.DATABASE_URL = env;
    }
    await chmod(dir, 0o751); // neither 0700 nor 0711: what a write would have made it
    const file = path.join(dir, 'config.json');
    const before = await readFile(file, 'utf8');
    const entries = await readdir(dir);
    const r = await runCli(['--dir', dir, 'install', '--dry-run'], roles());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('-- pending library migrations: core/001_core');
    expect(await readFile(file, 'utf8')).toBe(before);
    expect(await readdir(dir)).toEqual(entries);
    expect(await mode(dir)).toBe(0o751);
  }, 180_000);
});

describe('the folder tenantry install makes', () => {
  it('is 0700 with a server URL, also as root (nobody else needs to pass through it)', async () => {
    const dir = path.join(parent, 'installed', '.tenantry');
    const r = await runCli(['--database-url', db.adminUrl, '--dir', dir, 'install'], {
      ...roles(),
      TENANTRY_CONTEXT_SECRET: randomBytes(24).toString('base64url'),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(await mode(dir)).toBe(0o700);
    expect(await mode(path.join(dir, 'config.json'))).toBe(0o600);
  }, 120_000);
});
