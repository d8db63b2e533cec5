import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportTenant, importTenant } from '../../src/lifecycle/index.js';
import { exportFixture, seedTenant, type ExportFixture } from './support/export-fixture.js';

const exec = promisify(execFile);
const CHILD = 'test/lifecycle/support/export-child.ts';

let f: ExportFixture;
let dir: string;

beforeAll(async () => {
  f = await exportFixture();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-export-sweep-'));
  await seedTenant(f, 'acme', 200, 10);
});
afterAll(async () => {
  await f?.end();
  await rm(dir, { recursive: true, force: true });
});

const work = async () => (await readdir(dir)).filter((n) => n.startsWith('.tenantry-export-')).sort();

/** Sets a work folder and everything in it `minutes` into the past. */
async function age(name: string, minutes: number): Promise<void> {
  const when = new Date(Date.now() - minutes * 60_000);
  const folder = path.join(dir, name);
  for (const f of await readdir(folder)) await utimes(path.join(folder, f), when, when);
  await utimes(folder, when, when);
}

/** An export in a child process that kills itself (-9) while streaming a table. */
async function killedExport(out: string): Promise<void> {
  const env = { ownerUrl: f.db.ownerUrl, tenant: 'acme', out };
  const error = await exec(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...process.env, EXPORT_ENV: JSON.stringify(env) },
  }).then(
    () => undefined,
    (e: { signal?: string; stderr?: string }) => e,
  );
  expect(error?.signal, error?.stderr).toBe('SIGKILL');
}

describe('work folders of an export killed with -9 are swept by the next export or import', () => {
  it(
    'kill -9 mid-export leaves a locked folder; the next export keeps it while fresh, removes it once stale',
    { timeout: 120_000 },
    async () => {
      const out = path.join(dir, 'acme.tenant');
      await killedExport(out);
      const left = await work();
      expect(left).toHaveLength(1);
      // it names the dead process, and holds the table it was writing
      const lock = JSON.parse(await readFile(path.join(dir, left[0]!, 'owner.json'), 'utf8'));
      expect(lock).toMatchObject({ host: os.hostname() });
      expect(lock.pid).not.toBe(process.pid);
      expect((await readdir(path.join(dir, left[0]!))).some((n) => n.endsWith('.copy.gz'))).toBe(true);
      // fresh (a minute is the least): kept by the next export
      await exportTenant({ catalog: f.db.owner, placements: f.placements, tenant: 'acme', out, staleWorkMinutes: 1 });
      expect(await work()).toEqual(left);
      // older than the threshold and its process gone: removed by the next export, which completes
      await age(left[0]!, 2);
      const result = await exportTenant({
        catalog: f.db.owner,
        placements: f.placements,
        tenant: 'acme',
        out,
        staleWorkMinutes: 1,
      });
      expect(result.manifest.tables.length).toBeGreaterThan(0);
      expect(await work()).toEqual([]);
    },
  );

  it(
    'a stale folder locked by a live process is kept; an unlocked or dead one is removed by an import',
    { timeout: 120_000 },
    async () => {
      const out = path.join(dir, 'acme.tenant');
      await killedExport(out);
      const [dead] = await work();
      // a live process of this machine owns the other one (as a running export would)
      const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
      try {
        const live = '.tenantry-export-live';
        await mkdir(path.join(dir, live));
        await writeFile(
          path.join(dir, live, 'owner.json'),
          JSON.stringify({ pid: sleeper.pid, host: os.hostname(), startedAt: new Date().toISOString() }),
        );
        // made before locks existed (or killed before writing it): no lock
        const unlocked = '.tenantry-export-unlocked';
        await mkdir(path.join(dir, unlocked));
        await writeFile(path.join(dir, unlocked, '0001-tasks.copy.gz'), 'x');
        for (const name of [dead!, live, unlocked]) await age(name, 45);
        // an import sweeps where the archive lies (the default threshold, 30 minutes)
        await importTenant({ file: out, catalog: f.db.owner, placements: f.placements, as: 'acme-swept' });
        expect(await work()).toEqual([live]);
      } finally {
        // gone, not only signalled: until Node reaps it the pid is a zombie, which a liveness
        // check (kill(pid, 0)) still finds (CI run 46 swept nothing here under load)
        const exited = new Promise((resolve) => sleeper.once('exit', resolve));
        if (sleeper.exitCode === null && sleeper.signalCode === null) {
          sleeper.kill('SIGKILL');
          await exited;
        }
      }
      await age('.tenantry-export-live', 45);
      await exportTenant({ catalog: f.db.owner, placements: f.placements, tenant: 'acme', out });
      expect(await work()).toEqual([]);
    },
  );

  it('a threshold that is not a whole number of minutes from 1 to 10080 is refused before anything is written', async () => {
    const out = path.join(dir, 'bad.tenant');
    await expect(
      exportTenant({ catalog: f.db.owner, placements: f.placements, tenant: 'acme', out, staleWorkMinutes: 0 }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((await readdir(dir)).filter((n) => n === 'bad.tenant' || n.startsWith('.tenantry-export-'))).toEqual([]);
  });
});
