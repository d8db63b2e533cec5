import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/embedded/embedded-postgres.js';
import { createTestDatabase, ROLE_PASSWORD, type TestDatabase } from '../support/test-database.js';

// The CLI never dies with an unhandled 'error' event or a stack trace when its connections are
// cut (seen on `tenants create` while the server stopped: 57P01): one clear line, exit code 1.
const exec = promisify(execFile);
const TSX = path.resolve('node_modules/.bin/tsx');
const CLI = path.resolve('src/cli/main.ts');
const APP_NAME = 'tenantry-cli-fault';
let db: TestDatabase;
let dir: string;

async function tenantry(url: string, ...args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await exec(TSX, [CLI, '--database-url', url, '--dir', dir, ...args], {
      env: {
        ...process.env,
        PGAPPNAME: APP_NAME, // node-postgres names its connections after it: the terminator finds them
        TENANTRY_APP_PASSWORD: ROLE_PASSWORD,
        TENANTRY_OWNER_PASSWORD: ROLE_PASSWORD,
        TENANTRY_APP_ROLE: db.appRole,
        TENANTRY_OWNER_ROLE: db.ownerRole,
        TENANTRY_CONTEXT_SECRET: db.contextSecret,
      },
      timeout: 60_000,
    });
    return { code: 0, stderr };
  } catch (error) {
    const e = error as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-cli-fault-'));
});
afterAll(async () => {
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

function expectCleanFailure(result: { code: number; stderr: string }): void {
  expect(result.stderr).not.toMatch(/Unhandled|\n\s+at /);
  if (result.code !== 0) {
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(/^error [A-Z0-9_]+: /m);
  }
}

describe('the CLI when the database goes away', () => {
  it('a server that is not there: one line naming DATABASE_UNAVAILABLE, exit 1', async () => {
    const closed = await freePort();
    const result = await tenantry(`postgres://postgres:pw@127.0.0.1:${closed}/postgres`, 'tenants', 'list');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error DATABASE_UNAVAILABLE: .*ECONNREFUSED/m);
    expectCleanFailure(result);
  }, 90_000);

  it("an idle pool's 'error' event with no listener (57P01): one line naming DATABASE_UNAVAILABLE, exit 1", async () => {
    // inside the CLI's process: a server that accepts and never answers keeps the command waiting;
    // when the command has connected, a pg.Pool with no 'error' listener emits one, as an idle
    // pooled connection does when the server stops
    const code = `
            import pg from 'pg';
      const silent = net.createServer(() => {
        const error = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
        new pg.Pool().emit('error', error);
      });
      await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
      silent.unref();
      process.argv.push('--database-url', 'postgres://u:pw@127.0.0.1:' + silent.address().port + '/x', 'tenants', 'list');
      await import(${JSON.stringify(CLI)});
    `;
    const result = await exec(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', code, 'cli', '--dir', dir],
      {
        timeout: 60_000,
      },
    ).then(
      ({ stderr }) => ({ code: 0, stderr }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error DATABASE_UNAVAILABLE: .*57P01/m);
    expectCleanFailure(result);
  }, 90_000);

  it('connections terminated (57P01) while commands run: a clear failure or a success, never a crash', async () => {
    const admin = new pg.Client({ connectionString: db.adminUrl });
    admin.on('error', () => undefined);
    await admin.connect();
    let cutting = true;
    let cut = 0;
    const terminator = (async () => {
      while (cutting) {
        const { rowCount } = await admin.query(
          `select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()`,
          [APP_NAME],
        );
        cut += rowCount ?? 0;
        await new Promise((resolve) => setTimeout(resolve, 15));
      }
    })();
    try {
      // at least two commands, more until the terminator has cut one (a fast command can finish
      // between two of its sweeps), bounded
      for (let n = 0; n < 12 && (n < 2 || cut === 0); n++)
        expectCleanFailure(await tenantry(db.adminUrl, 'tenants', 'create', `cut-${n}`));
    } finally {
      cutting = false;
      await terminator;
      await admin.end();
    }
    expect(cut).toBeGreaterThan(0);
  }, 120_000);
});
