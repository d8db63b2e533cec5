import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openLocalDatabase } from '../../src/embedded/local-database.js';
import { LEGACY_SUPERUSER_PASSWORD, SUPERUSER_PASSWORD_FILE } from '../../src/embedded/superuser-password.js';
import { tempProject } from './support/reference-server.js';

// The embedded superuser's password is random per data folder and kept in a 0600 file; every
// file under .tenantry is 0600 and the folder private; a folder made with the old constant
// password is upgraded at its next start.
const project = await tempProject();
afterAll(() => project.remove(), 60_000);

const mode = async (file: string) => (await stat(file)).mode & 0o777;

async function refuses(port: number, password: string): Promise<string | undefined> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe('the embedded superuser and the .tenantry files', () => {
  it('a random password per data folder, private files, and constant-password folders upgraded', async () => {
    const first = await openLocalDatabase({ dir: project.dir });
    const port = Number(new URL(first.adminUrl).port);
    const password = decodeURIComponent(new URL(first.adminUrl).password);
    try {
      expect(password).not.toBe(LEGACY_SUPERUSER_PASSWORD);
      expect(password.length).toBeGreaterThanOrEqual(40);
      expect(await refuses(port, LEGACY_SUPERUSER_PASSWORD)).toBe('28P01');
      expect(await mode(project.dir)).toBe(process.getuid?.() === 0 ? 0o711 : 0o700);
      for (const file of ['config.json', 'server.json']) expect(await mode(path.join(project.dir, file))).toBe(0o600);
      expect(await mode(path.join(project.dir, 'pgdata', SUPERUSER_PASSWORD_FILE))).toBe(0o600);
      expect(await mode(path.join(project.dir, 'pgdata'))).toBe(0o700);

      // while its owner lives, another opener reuses the server (with the recorded password)
      const reuser = await openLocalDatabase({ dir: project.dir });
      expect(reuser.embedded).toBe(false);
      expect(new URL(reuser.adminUrl).port).toBe(String(port));
      expect(await refuses(port, decodeURIComponent(new URL(reuser.adminUrl).password))).toBeUndefined();
      await reuser.stop(); // not its server: a no-op
      expect(await refuses(port, password)).toBeUndefined();

      // make the folder look like one of the earlier version: the constant password, no file
      const admin = new pg.Client({ connectionString: first.adminUrl });
      await admin.connect();
      await admin.query(`alter role postgres password '${LEGACY_SUPERUSER_PASSWORD}'`);
      await admin.end();
      await rm(path.join(project.dir, 'pgdata', SUPERUSER_PASSWORD_FILE));
    } finally {
      await first.stop();
    }

    const second = await openLocalDatabase({ dir: project.dir });
    try {
      const upgraded = decodeURIComponent(new URL(second.adminUrl).password);
      const port2 = Number(new URL(second.adminUrl).port);
      expect(upgraded).not.toBe(LEGACY_SUPERUSER_PASSWORD);
      expect(await refuses(port2, upgraded)).toBeUndefined();
      expect(await refuses(port2, LEGACY_SUPERUSER_PASSWORD)).toBe('28P01');
      expect(await mode(path.join(project.dir, 'pgdata', SUPERUSER_PASSWORD_FILE))).toBe(0o600);
    } finally {
      await second.stop();
    }

    // kept across restarts
    const third = await openLocalDatabase({ dir: project.dir });
    try {
      expect(decodeURIComponent(new URL(third.adminUrl).password)).toBe(
        decodeURIComponent(new URL(second.adminUrl).password),
      );
    } finally {
      await third.stop();
    }
  }, 180_000);
});
