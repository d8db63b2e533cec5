import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';

/** The prefix of the work folders an export writes next to its archive (renamed away at the end). */
export const WORK_FOLDER_PREFIX = '.tenantry-export-';
const LOCK = 'owner.json';
/** A folder of another machine (a shared file system) is swept only when older than this. */
const FOREIGN_MS = 24 * 60 * 60 * 1000;

interface WorkLock {
  pid: number;
  host: string;
  startedAt: string;
}

/**
 * Makes an export's work folder in `dir`, with a lock file naming the process that owns it (pid
 * and host), so a sweep tells a live export's folder from one a kill -9 left behind.
 */
export async function createWorkFolder(dir: string): Promise<string> {
  const work = await mkdtemp(path.join(dir, WORK_FOLDER_PREFIX));
  const lock: WorkLock = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  await writeFile(path.join(work, LOCK), JSON.stringify(lock), { mode: 0o600 });
  return work;
}

/**
 * Removes the export work folders in `dir` that a killed export left behind: older than
 * `olderThanMs` (by their last change) and not locked by a live process — their lock names a
 * process of this machine that no longer runs, or they have no lock (made before locks, or
 * killed before it was written). A folder of another host is removed only after a day. Never
 * throws: a folder it cannot read or remove is left for the next sweep. Returns the folders removed.
 */
export async function sweepStaleWorkFolders(dir: string, olderThanMs: number): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(WORK_FOLDER_PREFIX)) continue;
    const work = path.join(dir, name);
    try {
      const info = await stat(work);
      if (!info.isDirectory()) continue;
      const lockInfo = await stat(path.join(work, LOCK)).catch(() => undefined);
      // the newest of the folder and its files: a live export writes into it
      const files = await readdir(work).catch(() => [] as string[]);
      let newest = Math.max(info.mtimeMs, lockInfo?.mtimeMs ?? 0);
      for (const f of files)
        newest = Math.max(newest, (await stat(path.join(work, f)).catch(() => undefined))?.mtimeMs ?? 0);
      const age = Date.now() - newest;
      if (age < olderThanMs) continue;
      const lock = await readLock(path.join(work, LOCK));
      if (lock && lock.host !== hostname() && age < FOREIGN_MS) continue;
      if (lock && lock.host === hostname() && alive(lock.pid)) continue;
      await rm(work, { recursive: true, force: true });
      removed.push(work);
    } catch {
      // raced with its owner's own clean-up, or unreadable: the next sweep looks again
    }
  }
  return removed;
}

async function readLock(file: string): Promise<WorkLock | undefined> {
  try {
    const lock = JSON.parse(await readFile(file, 'utf8')) as Partial<WorkLock>;
    if (!Number.isInteger(lock.pid) || typeof lock.host !== 'string') return undefined;
    return lock as WorkLock;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
