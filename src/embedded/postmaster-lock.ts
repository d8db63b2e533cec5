import { execFile } from 'node:child_process';
import { readFile, readlink, realpath, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** What `postmaster.pid` (PostgreSQL's lock file in its data folder) says. */
export interface PostmasterLock {
  pid: number;
  port: number | undefined;
}

/** Reads `<dataDir>/postmaster.pid`; undefined when there is none (or it is unreadable garbage). */
export async function readPostmasterLock(dataDir: string): Promise<PostmasterLock | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return undefined;
  }
  // line 1: pid, line 2: data folder, line 3: start time, line 4: port (see PostgreSQL's pidfile.h)
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  return { pid, port: Number.isSafeInteger(port) && port > 0 ? port : undefined };
}

/** True when a process with this pid exists (and may be signalled by us). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but is another user's
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * True only when `pid` is alive AND is a PostgreSQL server process of `dataDir`: its program is
 * `postgres` and its `-D` argument or its working directory (a postmaster chdirs into its data
 * folder) is that folder. A pid that was reused by any other process answers false, so a stale
 * lock file is never mistaken for a running server, and a running server never for a stale one.
 */
export async function isPostgresOf(pid: number, dataDir: string): Promise<boolean> {
  if (!processAlive(pid)) return false;
  const want = await realpath(dataDir).catch(() => path.resolve(dataDir));
  const argv = await commandLine(pid);
  if (argv === undefined || argv.length === 0) return false;
  if (path.basename(argv[0]!) !== 'postgres' && !argv[0]!.startsWith('postgres:')) return false;
  const d = argv.indexOf('-D');
  if (d >= 0 && argv[d + 1] !== undefined) {
    const given = await realpath(argv[d + 1]!).catch(() => path.resolve(argv[d + 1]!));
    if (given === want) return true;
  }
  const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => undefined);
  return cwd === want;
}

/**
 * True when `pid` is alive and runs Node (the owner recorded in server.json): a pid that came
 * round again for another program is not mistaken for a live owner. Where the command line
 * cannot be read, a live pid counts.
 */
export async function isNodeProcess(pid: number): Promise<boolean> {
  if (!processAlive(pid)) return false;
  const argv = await commandLine(pid);
  if (argv === undefined || argv.length === 0) return true;
  return /node|tsx|tenantry/i.test(argv.slice(0, 3).join(' '));
}

// /proc on Linux; `ps` elsewhere (macOS), whose output loses the argument boundaries (good enough for -D)
async function commandLine(pid: number): Promise<string[] | undefined> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((a) => a !== '');
  } catch {
    // no /proc
  }
  return new Promise((resolve) => {
    execFile('ps', ['-o', 'command=', '-p', String(pid)], { timeout: 5000 }, (error, stdout) =>
      resolve(error ? undefined : stdout.trim().split(/\s+/)),
    );
  });
}

/** Resolves true once `pid` is gone, false after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (processAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
  return true;
}

/**
 * Stops a PostgreSQL server of ours that nobody owns any more (its Node process was killed):
 * a fast shutdown (SIGINT: sessions are cut, everything committed stays), then, if it is still
 * there after `timeoutMs`, an immediate one (SIGQUIT: crash recovery at the next start, still
 * losing nothing committed). Returns false when it would not go.
 */
export async function stopOrphanedPostmaster(pid: number, timeoutMs = 30_000): Promise<boolean> {
  for (const [signal, wait] of [
    ['SIGINT', timeoutMs],
    ['SIGQUIT', 10_000],
  ] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return !processAlive(pid);
    }
    if (await waitForExit(pid, wait)) return true;
  }
  return false;
}

/**
 * Removes a `postmaster.pid` whose pid is not a PostgreSQL of this folder (checked by the
 * caller, passing the lock it checked). PostgreSQL removes a lock of a dead pid itself, but
 * refuses to start while the pid was reused by any live process (after a reboot or a kill -9,
 * pids come round again). The file is re-read first and left alone when it changed: then another
 * process started a server meanwhile, and its lock is a real one.
 */
export async function removeStaleLock(dataDir: string, checked: PostmasterLock): Promise<void> {
  const now = await readPostmasterLock(dataDir);
  if (now === undefined || now.pid !== checked.pid) return;
  await rm(path.join(dataDir, 'postmaster.pid'), { force: true });
}
