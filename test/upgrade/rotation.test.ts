import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { TenantPool } from '../../src/data/tenant-pool.js';
import { install } from '../../src/policy/installer.js';
import { InstallSecretsMismatchError } from '../../src/policy/install-secrets-mismatch-error.js';
import { rotateContextSecret, rotatePassword } from '../../src/policy/rotation.js';
import { createTestDatabase, ROLE_PASSWORD, type TestDatabase } from '../support/test-database.js';

// Install never changes what a running app depends on; rotation is its own step, with an overlap
// in which values signed with the old and the new secret both verify.

const exec = promisify(execFile);
const TSX = path.resolve('node_modules/.bin/tsx');
const CLI = path.resolve('src/cli/main.ts');

let db: TestDatabase;
const tenants = { a: '', b: '' };

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(`create table notes (id int generated always as identity primary key,
    tenant_id uuid not null default tenantry.current_tenant_id(), body text not null)`);
  await db.owner.query(`select tenantry.register_tenant_table('notes')`);
  const { rows } = await db.owner.query<{ id: string }>(
    `insert into tenantry.tenants (slug, name) values ('rot-a', 'A'), ('rot-b', 'B') returning id`,
  );
  [tenants.a, tenants.b] = rows.map((r) => r.id) as [string, string];
  await db.owner.query(`insert into notes (tenant_id, body) values ($1, 'a1'), ($1, 'a2'), ($2, 'b1')`, [
    tenants.a,
    tenants.b,
  ]);
});
afterAll(() => db?.drop());

const pool = (secret: string) => db.appPool({ contextSecret: secret, max: 4 });
const bodies = async (p: TenantPool, tenant: string) =>
  (await runAs(tenant, () => p.query<{ body: string }>('select body from notes order by body'))).rows.map(
    (r) => r.body,
  );
const codeOf = (p: Promise<unknown>) => p.then(() => 'ok').catch((e: { code?: string }) => e.code ?? String(e));

/** Runs queries of both tenants without pause through `current()` until stopped; counts and checks every answer. */
function load(current: () => TenantPool) {
  let running = true;
  const counts = { ok: 0, failed: 0, wrong: 0, errors: [] as string[] };
  const worker = async (tenant: string, expected: string[]) => {
    while (running) {
      try {
        const got = await bodies(current(), tenant);
        if (JSON.stringify(got) === JSON.stringify(expected)) counts.ok++;
        else counts.wrong++;
      } catch (error) {
        counts.failed++;
        if (counts.errors.length < 5) counts.errors.push(String((error as { code?: string }).code ?? error));
      }
    }
  };
  const workers = [0, 1, 2, 3].map((i) => (i % 2 === 0 ? worker(tenants.a, ['a1', 'a2']) : worker(tenants.b, ['b1'])));
  return {
    counts,
    async stop() {
      running = false;
      await Promise.all(workers);
    },
  };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (bounded) until the load made `n` more successful queries. */
async function progress(counts: { ok: number }, n: number) {
  const target = counts.ok + n;
  const deadline = Date.now() + 30_000;
  while (counts.ok < target && Date.now() < deadline) await pause(20);
  expect(counts.ok).toBeGreaterThanOrEqual(target);
}

describe('tenantry rotate context-secret', () => {
  it('under continuous load: no request fails while the secret rotates and the app rolls over to it', async () => {
    const oldSecret = db.contextSecret;
    const newSecret = randomBytes(24).toString('base64url');
    const oldPool = pool(oldSecret);
    let current = oldPool;
    const running = load(() => current);
    try {
      await progress(running.counts, 50);
      // 1. PostgreSQL first: the new key, the old one kept for the overlap
      const r = await rotateContextSecret(db.admin, newSecret, { overlapSeconds: 120 });
      expect(r.rotated).toBe(true);
      expect(r.previousUntil!.getTime()).toBeGreaterThan(Date.now() + 60_000);
      await progress(running.counts, 50); // the old instances go on, verified with the previous key
      // 2. the app rolls over: new instances sign with the new secret, the old ones drain
      current = pool(newSecret);
      await progress(running.counts, 50);
      await oldPool.end();
      await progress(running.counts, 50);
    } finally {
      await running.stop();
    }
    expect(running.counts.errors).toEqual([]);
    expect(running.counts).toMatchObject({ failed: 0, wrong: 0 });
    expect(running.counts.ok).toBeGreaterThanOrEqual(200);
    // a secret that is neither is refused, and sees nothing
    expect(await codeOf(bodies(pool(randomBytes(24).toString('base64url')), tenants.a))).toBe('TR001');
    // rotating to the current secret again changes nothing (the previous key stays as it is)
    expect((await rotateContextSecret(db.admin, newSecret)).rotated).toBe(false);
    db.contextSecret = newSecret;
  });

  it('once the overlap ends, only the new secret verifies (current_tenant_id and home_tenant_id)', async () => {
    const oldSecret = db.contextSecret;
    const newSecret = randomBytes(24).toString('base64url');
    await rotateContextSecret(db.admin, newSecret, { overlapSeconds: 1 });
    const oldPool = pool(oldSecret);
    const newPool = pool(newSecret);
    // within the overlap both verify (unless this machine was slower than a second: then only the new)
    const home = (p: TenantPool) => runAs(tenants.a, () => p.query('select tenantry.home_tenant_id() as id'));
    await pause(2_500);
    expect(await codeOf(bodies(oldPool, tenants.a))).toBe('TR001');
    expect(await codeOf(home(oldPool))).toBe('TR001');
    expect(await bodies(newPool, tenants.a)).toEqual(['a1', 'a2']);
    expect((await home(newPool)).rows).toEqual([{ id: tenants.a }]);
    db.contextSecret = newSecret;
  });

  it('refuses a short secret and an overlap out of range, changing nothing', async () => {
    const before = (await db.admin.query('select ipad, opad, previous_until from tenantry_private.context_key')).rows;
    await expect(rotateContextSecret(db.admin, 'short')).rejects.toThrow(/at least 32/);
    await expect(
      rotateContextSecret(db.admin, randomBytes(24).toString('base64url'), { overlapSeconds: -1 }),
    ).rejects.toThrow(/overlapSeconds/);
    expect((await db.admin.query('select ipad, opad, previous_until from tenantry_private.context_key')).rows).toEqual(
      before,
    );
  });
});

describe('tenantry rotate password', () => {
  it('open connections stay; new ones need the new password', async () => {
    const open = new pg.Client({ connectionString: db.directAppUrl });
    await open.connect();
    try {
      const next = randomBytes(18).toString('base64url');
      await rotatePassword(db.admin, db.appRole, next);
      expect((await open.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
      const withOld = new pg.Client({ connectionString: db.directAppUrl });
      expect(await codeOf(withOld.connect())).toBe('28P01');
      const u = new URL(db.directAppUrl!);
      u.password = next;
      const withNew = new pg.Client({ connectionString: u.toString() });
      await withNew.connect();
      await withNew.end();
    } finally {
      await open.end();
      await rotatePassword(db.admin, db.appRole, ROLE_PASSWORD);
    }
  });
});

describe('tenantry install keeps what a running app depends on', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-keep-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** The CLI as a deploy job that lost TENANTRY_CONTEXT_SECRET and the passwords runs it: a fresh --dir makes new ones. */
  async function cli(env: Record<string, string>, ...args: string[]) {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TENANTRY_')));
    try {
      const r = await exec(TSX, [CLI, '--database-url', db.adminUrl, '--dir', dir, ...args], {
        env: { ...clean, TENANTRY_APP_ROLE: db.appRole, TENANTRY_OWNER_ROLE: db.ownerRole, ...env },
      });
      return { code: 0, ...r };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  it('without the TENANTRY_* secrets: exit 0, the app password and the context key are kept, the app goes on', async () => {
    const app = pool(db.contextSecret);
    expect(await bodies(app, tenants.a)).toEqual(['a1', 'a2']);
    const key = (await db.admin.query('select ipad, opad from tenantry_private.context_key')).rows;

    const r = await cli({}, 'install');
    expect(r.code).toBe(0);
    // no secret was given (no variable, no config.json in the fresh --dir): none is made up and
    // recorded there (it could not match this database), and the output says none was given
    expect(existsSync(path.join(dir, 'config.json'))).toBe(false);
    expect(r.stdout).toContain(`password of ${db.appRole}: none given (TENANTRY_APP_PASSWORD is not set`);
    expect(r.stdout).toContain('context secret: none given (TENANTRY_CONTEXT_SECRET is not set');
    expect(r.stderr).not.toContain('context secret given differs');
    expect((await db.admin.query('select ipad, opad from tenantry_private.context_key')).rows).toEqual(key);

    // the running app: its pooled connections, a new connection with its password, its signed context
    await app.end();
    const fresh = pool(db.contextSecret);
    expect(await bodies(fresh, tenants.a)).toEqual(['a1', 'a2']);
    expect(await bodies(fresh, tenants.b)).toEqual(['b1']);
  });

  it('tenantry rotate context-secret reads the new secret from the environment and keeps the old one for the overlap', async () => {
    const next = randomBytes(24).toString('base64url');
    const missing = await cli({}, 'rotate', 'context-secret');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('TENANTRY_NEW_CONTEXT_SECRET');

    const r = await cli({ TENANTRY_NEW_CONTEXT_SECRET: next }, 'rotate', 'context-secret', '--overlap', '300');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('context secret rotated; the previous one verifies until');
    expect(r.stdout + r.stderr).not.toContain(next);
    expect(await bodies(pool(db.contextSecret), tenants.a)).toEqual(['a1', 'a2']);
    expect(await bodies(pool(next), tenants.a)).toEqual(['a1', 'a2']);
    db.contextSecret = next;
  });

  it('install with secretsMustMatch refuses wrong secrets before changing anything (INSTALL_SECRETS_MISMATCH), and runs with the right ones', async () => {
    // what every install changes: the grants step re-creates the context functions
    const fnRow = async () =>
      (
        await db.admin.query<{ x: string }>(
          `select xmin::text as x from pg_proc where oid = 'tenantry.current_tenant_id()'::regprocedure`,
        )
      ).rows[0]!.x;
    const before = await fnRow();
    const wrongSecret = randomBytes(24).toString('base64url');
    const refused = await install(db.adminUrl, {
      appRole: db.appRole,
      ownerRole: db.ownerRole,
      appPassword: 'not-the-app-password',
      contextSecret: wrongSecret,
      secretsMustMatch: true,
    }).then(
      () => undefined,
      (e: unknown) => e as InstallSecretsMismatchError,
    );
    expect(refused).toBeInstanceOf(InstallSecretsMismatchError);
    expect(refused!.code).toBe('INSTALL_SECRETS_MISMATCH');
    expect(refused!.mismatched).toEqual([`the password of ${db.appRole}`, 'the context secret']);
    expect(refused!.message).not.toContain('not-the-app-password');
    expect(refused!.message).not.toContain(wrongSecret);
    expect(await fnRow()).toBe(before);
    const ran = await install(db.adminUrl, {
      appRole: db.appRole,
      ownerRole: db.ownerRole,
      appPassword: ROLE_PASSWORD,
      contextSecret: db.contextSecret,
      secretsMustMatch: true,
    });
    expect(ran.passwords).toEqual([{ role: db.appRole, action: 'kept', matches: true }]);
    expect(ran.contextSecret).toBe('unchanged');
    expect(await fnRow()).not.toBe(before);
  });

  it('install with explicitly new values still keeps them: a password is set only where the role has none', async () => {
    const report = await install(db.adminUrl, {
      appRole: db.appRole,
      ownerRole: db.ownerRole,
      appPassword: 'a-password-nobody-uses-yet',
      contextSecret: randomBytes(24).toString('base64url'),
    });
    expect(report.passwords).toEqual([{ role: db.appRole, action: 'kept', matches: false }]);
    expect(report.contextSecret).toBe('kept');
    // a role created without a password gets the one given
    await db.admin.query(`alter role ${db.appRole} password null`);
    const set = await install(db.adminUrl, {
      appRole: db.appRole,
      ownerRole: db.ownerRole,
      appPassword: ROLE_PASSWORD,
    });
    expect(set.passwords).toEqual([{ role: db.appRole, action: 'set' }]);
    expect(await bodies(pool(db.contextSecret), tenants.b)).toEqual(['b1']);
  });
});
