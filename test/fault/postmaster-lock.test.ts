import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  startEmbeddedPostgres,
  type EmbeddedProgress,
  type EmbeddedServer,
} from '../../src/embedded/embedded-postgres.js';
import { isPostgresOf } from '../../src/embedded/postmaster-lock.js';
import { tempProject } from './support/reference-server.js';

// Never two servers on one data folder, and no start refused by a lock nobody holds.
const project = await tempProject();
const dataDir = path.join(project.root, 'pg');
const servers: EmbeddedServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop().catch(() => undefined);
  await project.remove();
}, 60_000);

async function ping(server: EmbeddedServer): Promise<number> {
  const client = new pg.Client({ connectionString: server.adminUrl });
  await client.connect();
  const { rows } = await client.query<{ one: number }>('select 1 as one');
  await client.end();
  return rows[0]!.one;
}

describe('the data folder lock', () => {
  it('refuses a second server on a running folder, and removes a lock whose pid is not a postgres of it', async () => {
    const steps: EmbeddedProgress[] = [];
    const first = await startEmbeddedPostgres({ dataDir, persistent: true, onProgress: (e) => steps.push(e) });
    servers.push(first);
    // the slow part of a first start is announced before it runs; a clean folder recovered nothing
    expect(steps.map((e) => e.step)).toEqual(['initdb', 'start']);
    expect(first.recovered).toEqual({});
    expect(await isPostgresOf(first.pid!, dataDir)).toBe(true);
    expect(await isPostgresOf(process.pid, dataDir)).toBe(false); // alive, but not a postgres of it

    // a second start on the running folder is refused, and the first server is untouched
    const refused = await startEmbeddedPostgres({ dataDir, persistent: true }).catch((e: unknown) => e);
    expect((refused as { code?: string }).code).toBe('EMBEDDED_START_FAILED');
    expect((refused as Error).message).toMatch(/already running/);
    expect(await ping(first)).toBe(1);

    // stopped, then a lock file left behind whose pid now belongs to another program (this one)
    await first.stop();
    servers.length = 0;
    const lock = path.join(dataDir, 'postmaster.pid');
    await writeFile(lock, `${process.pid}\n${dataDir}\n0\n5432\n\n127.0.0.1\n0 0\nready\n`);
    const second = await startEmbeddedPostgres({ dataDir, persistent: true, restartOnCrash: false });
    servers.push(second);
    expect(await ping(second)).toBe(1);
    expect(Number((await readFile(lock, 'utf8')).split('\n')[0])).toBe(second.pid);
    expect(second.recovered).toEqual({ staleLock: true });

    // a server whose owner is gone (takeOver: what openLocalDatabase decides after a kill -9):
    // stopped first, announced before, and said afterwards
    const orphanPid = second.pid!;
    const takeOverSteps: EmbeddedProgress[] = [];
    const third = await startEmbeddedPostgres({
      dataDir,
      persistent: true,
      takeOver: true,
      onProgress: (e) => takeOverSteps.push(e),
    });
    servers.push(third);
    expect(takeOverSteps).toEqual([
      { step: 'start', dataDir },
      { step: 'orphan', dataDir, pid: orphanPid },
    ]);
    expect(third.recovered).toEqual({ orphanPid });
    expect(await ping(third)).toBe(1);
  }, 120_000);
});
