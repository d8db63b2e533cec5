import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleExportsPurgeParticipant, sweepConsoleExports } from '../../app/console/console-export.js';

/**
 * The console's export archives on disk (app/console/console-export.ts): swept at start, removed
 * with their tenant's purge. Real files in a fresh folder (no database involved).
 */
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'console-export-files-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const archive = async (tenantId: string, ageMs = 0) => {
  const file = path.join(dir, `${tenantId}.${randomUUID()}.tenant`);
  await writeFile(file, `data of ${tenantId}`);
  if (ageMs > 0) {
    const at = new Date(Date.now() - ageMs);
    await utimes(file, at, at);
  }
  return path.basename(file);
};

describe('console export archives', () => {
  it('a purge participant counts and removes only the purged tenant’s archives; the other tenant keeps its own', async () => {
    const a = randomUUID();
    const b = randomUUID();
    await archive(a);
    await archive(a);
    const bFile = await archive(b);
    const participant = consoleExportsPurgeParticipant(dir);
    expect(participant.name).toBe('console-exports');
    expect(await participant.plan(a)).toBe(2);
    expect(await participant.purge(a)).toBe(2);
    expect(await participant.plan(a)).toBe(0);
    expect(await participant.purge(a)).toBe(0); // idempotent, as a resumed purge needs
    // from the other tenant's side: its archive is untouched
    expect(await participant.plan(b)).toBe(1);
    expect(await readdir(dir)).toEqual([bFile]);
    await rm(path.join(dir, bFile));
    // a folder that does not exist holds nothing
    expect(await consoleExportsPurgeParticipant(path.join(dir, 'none')).plan(a)).toBe(0);
  });

  it('the sweep of a shared folder removes only what is older than the retention; of an own folder, everything it wrote', async () => {
    const old = await archive(randomUUID(), 3 * 3600_000);
    const fresh = await archive(randomUUID());
    await mkdir(path.join(dir, '.tenantry-export-x'));
    await writeFile(path.join(dir, 'other.txt'), 'not ours');
    const oldWork = new Date(Date.now() - 3 * 3600_000);
    await utimes(path.join(dir, '.tenantry-export-x'), oldWork, oldWork);
    expect(await sweepConsoleExports(dir, { olderThanMs: 3600_000 })).toBe(2);
    expect((await readdir(dir)).sort()).toEqual([fresh, 'other.txt'].sort());
    expect(await readdir(dir)).not.toContain(old);
    expect(await sweepConsoleExports(dir)).toBe(1);
    expect(await readdir(dir)).toEqual(['other.txt']);
  });
});
