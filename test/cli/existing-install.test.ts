// Read-only commands (tenants top, tenants usage) refuse a folder without an install instead of
// starting a new empty embedded server there: a mistyped --dir creates nothing.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { openLocalDatabase } from '../../src/embedded/local-database.js';

const exec = promisify(execFile);
let parent: string | undefined;
afterAll(async () => {
  if (parent) await rm(parent, { recursive: true, force: true });
});

describe('commands that only read need an existing install', () => {
  it('openLocalDatabase({ existing: true }) refuses a folder without config.json and creates nothing', async () => {
    parent = await mkdtemp(path.join(os.tmpdir(), 'tenantry-existing-'));
    const missing = path.join(parent, 'no-such-folder');
    const env = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    try {
      await expect(openLocalDatabase({ dir: missing, existing: true })).rejects.toMatchObject({
        code: 'CONFIGURATION_ERROR',
        message: expect.stringContaining(`No Tenantry install in ${missing}`),
      });
      expect(existsSync(missing)).toBe(false);
      // an empty folder: refused too, still empty
      await expect(openLocalDatabase({ dir: parent, existing: true })).rejects.toMatchObject({
        code: 'CONFIGURATION_ERROR',
      });
      expect(await readdir(parent)).toEqual([]);
    } finally {
      if (env !== undefined) process.env.DATABASE_URL = env;
    }
  });

  it('tenantry tenants top --dir <no install> says so and exits 1, leaving nothing behind', async () => {
    const missing = path.join(parent!, 'typo');
    const env = { ...process.env };
    delete env.DATABASE_URL;
    delete env.TENANTRY_OWNER_DATABASE_URL;
    const run = exec(
      process.execPath,
      ['--import', 'tsx', path.resolve('src/cli/main.ts'), '--dir', missing, 'tenants', 'top'],
      {
        env,
        timeout: 60_000,
      },
    );
    await expect(run).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('No Tenantry install in') });
    expect(existsSync(missing)).toBe(false);
  }, 90_000);
});
