import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { runningPostmaster, startEmbeddedPostgres, superuserUrl, type EmbeddedServer } from './embedded-postgres.js';
import { EmbeddedStartError } from './embedded-start-error.js';
import { isNodeProcess } from './postmaster-lock.js';
import { makePrivateDir, writePrivateFile } from './private-files.js';

/** Connection facts of the project's database, embedded or given by DATABASE_URL. */
export interface LocalDatabase {
  /** Superuser (or installer) URL: install, doctor, seeding. */
  adminUrl: string;
  /** The owner role: migrations and the tenant catalog. */
  ownerUrl: string;
  /** The application role: the only one the request path uses. */
  appUrl: string;
  /** The read-only support role: audited cross-tenant reads by staff. */
  supportUrl: string;
  /** The router role: the data plane's `TenantRouter` reads where tenants live (and nothing else). */
  routerUrl: string;
  appRole: string;
  ownerRole: string;
  supportRole: string;
  routerRole: string;
  appPassword: string;
  ownerPassword: string;
  supportPassword: string;
  routerPassword: string;
  contextSecret: string;
  /** Secret for signing the reference server's JWTs (HS256). */
  jwtSecret: string;
  /** True when this call started an embedded server (and stop() will stop it). */
  embedded: boolean;
  stop(): Promise<void>;
}

/** Options of {@link openLocalDatabase}. */
export interface LocalDatabaseOptions {
  /** Project-local folder for data and secrets. Default `.tenantry` in the working directory. */
  dir?: string;
  /** A server to use instead of the embedded one (superuser URL). Default `process.env.DATABASE_URL`. */
  databaseUrl?: string;
  /** Database to create and use on the embedded server. Default `tenantry`. */
  database?: string;
  onLog?: (line: string) => void;
  /** Told when the embedded server died and when it was started again (see `EmbeddedOptions.onCrash`). */
  onCrash?: (event: { restarted: boolean; code: number | null; signal: NodeJS.Signals | null }) => void;
}

interface LocalConfig {
  contextSecret: string;
  jwtSecret: string;
  appPassword: string;
  ownerPassword: string;
  supportPassword: string;
  routerPassword: string;
}

/** `<dir>/server.json`: which process owns the running embedded server, and its port. */
interface ServerFile {
  /** The Node process that started the server and will stop it. */
  pid: number;
  port: number;
}

function secret(): string {
  return randomBytes(32).toString('base64url');
}

async function loadConfig(dir: string): Promise<LocalConfig> {
  const file = path.join(dir, 'config.json');
  if (existsSync(file)) {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<LocalConfig>;
    if (!(parsed.contextSecret && parsed.jwtSecret && parsed.appPassword && parsed.ownerPassword)) {
      throw new ConfigurationError(`${file} is incomplete: delete it to generate new secrets`);
    }
    if (parsed.supportPassword && parsed.routerPassword) return parsed as LocalConfig;
    // a config written before the support or router role existed: add its password, keep the rest
    const upgraded: LocalConfig = {
      ...(parsed as LocalConfig),
      supportPassword: parsed.supportPassword || secret(),
      routerPassword: parsed.routerPassword || secret(),
    };
    await writePrivateFile(file, JSON.stringify(upgraded, null, 2) + '\n');
    return upgraded;
  }
  const config: LocalConfig = {
    contextSecret: secret(),
    jwtSecret: secret(),
    appPassword: secret(),
    ownerPassword: secret(),
    supportPassword: secret(),
    routerPassword: secret(),
  };
  await writePrivateFile(file, JSON.stringify(config, null, 2) + '\n');
  return config;
}

async function readServerFile(file: string): Promise<ServerFile | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<ServerFile>;
    return Number.isSafeInteger(parsed.pid) && Number.isSafeInteger(parsed.port) ? (parsed as ServerFile) : undefined;
  } catch {
    return undefined;
  }
}

function asRole(url: string, role: string, password: string): string {
  const u = new URL(url);
  u.username = role;
  u.password = password;
  return u.toString();
}

/**
 * Opens the project's database: the server of `DATABASE_URL` when set, otherwise a real
 * embedded PostgreSQL whose data persists in `<dir>/pgdata` (a second process reuses the
 * server the first one started). Secrets are generated once into `<dir>/config.json`;
 * `TENANTRY_CONTEXT_SECRET`, `TENANTRY_JWT_SECRET`, `TENANTRY_APP_PASSWORD`, `TENANTRY_OWNER_PASSWORD` and
 * `TENANTRY_SUPPORT_PASSWORD`, `TENANTRY_ROUTER_PASSWORD` override them.
 */
export async function openLocalDatabase(options: LocalDatabaseOptions = {}): Promise<LocalDatabase> {
  const dir = path.resolve(options.dir ?? '.tenantry');
  // secrets live here: the folder 0700 and its files 0600, also those an earlier version left readable
  await makePrivateDir(dir, [path.join(dir, 'pgdata')]);
  const config = await loadConfig(dir);
  const contextSecret = process.env.TENANTRY_CONTEXT_SECRET ?? config.contextSecret;
  const appPassword = process.env.TENANTRY_APP_PASSWORD ?? config.appPassword;
  const ownerPassword = process.env.TENANTRY_OWNER_PASSWORD ?? config.ownerPassword;
  const appRole = process.env.TENANTRY_APP_ROLE ?? 'tenantry_app';
  const ownerRole = process.env.TENANTRY_OWNER_ROLE ?? 'tenantry_owner';
  const supportRole = process.env.TENANTRY_SUPPORT_ROLE ?? 'tenantry_support';
  const supportPassword = process.env.TENANTRY_SUPPORT_PASSWORD ?? config.supportPassword;
  const routerRole = process.env.TENANTRY_ROUTER_ROLE ?? 'tenantry_router';
  const routerPassword = process.env.TENANTRY_ROUTER_PASSWORD ?? config.routerPassword;
  const databaseUrl = options.databaseUrl ?? process.env.DATABASE_URL;
  let server: EmbeddedServer | undefined;
  let adminUrl: string;
  const serverFile = path.join(dir, 'server.json');

  if (databaseUrl) {
    adminUrl = databaseUrl;
  } else {
    const dataDir = path.join(dir, 'pgdata');
    const database = options.database ?? 'tenantry';
    const reused = await reuseRunning(dir, dataDir, serverFile, database);
    if (reused) {
      adminUrl = reused;
    } else {
      // no live process of ours owns a server of this folder: start one (a server left running by a
      // killed process is stopped first, see startEmbeddedPostgres)
      server = await startEmbeddedPostgres({
        dataDir,
        persistent: true,
        takeOver: true,
        onLog: options.onLog,
        onCrash: options.onCrash,
      });
      const started = server;
      try {
        await writePrivateFile(
          serverFile,
          JSON.stringify({ pid: process.pid, port: started.port } satisfies ServerFile),
        );
        await createDatabase(started.adminUrl, database);
      } catch (error) {
        await rm(serverFile, { force: true });
        await started.stop().catch(() => undefined);
        throw error;
      }
      const u = new URL(started.adminUrl);
      u.pathname = `/${database}`;
      adminUrl = u.toString();
    }
  }
  return {
    adminUrl,
    ownerUrl: process.env.TENANTRY_OWNER_DATABASE_URL ?? asRole(adminUrl, ownerRole, ownerPassword),
    appUrl: process.env.TENANTRY_APP_DATABASE_URL ?? asRole(adminUrl, appRole, appPassword),
    supportUrl: process.env.TENANTRY_SUPPORT_DATABASE_URL ?? asRole(adminUrl, supportRole, supportPassword),
    routerUrl: process.env.TENANTRY_ROUTER_DATABASE_URL ?? asRole(adminUrl, routerRole, routerPassword),
    appRole,
    ownerRole,
    supportRole,
    routerRole,
    appPassword,
    ownerPassword,
    supportPassword,
    routerPassword,
    contextSecret,
    jwtSecret: process.env.TENANTRY_JWT_SECRET ?? config.jwtSecret,
    embedded: server !== undefined,
    async stop() {
      if (!server) return;
      await rm(serverFile, { force: true });
      await server.stop();
    },
  };
}

/**
 * The superuser URL of a server of this folder that a live process of ours runs (the server's
 * own lock names a live postgres of the folder, and server.json a live owner on its port):
 * reuse it, the owner stops it. Undefined otherwise, so the caller starts one.
 */
async function reuseRunning(
  dir: string,
  dataDir: string,
  serverFile: string,
  database: string,
): Promise<string | undefined> {
  const running = await runningPostmaster(dataDir);
  if (!running) return undefined;
  const owner = await readServerFile(serverFile);
  if (!owner || owner.port !== running.port || !(await isNodeProcess(owner.pid))) return undefined;
  const url = await superuserUrl(dataDir, running.port, database);
  if (url === undefined)
    throw new EmbeddedStartError(
      `The embedded PostgreSQL of ${dir} runs (owned by pid ${owner.pid}) but its superuser password is not recorded yet; try again`,
      { dataDir },
    );
  return url;
}

async function createDatabase(adminUrl: string, database: string): Promise<void> {
  const root = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 30_000 });
  root.on('error', () => undefined); // the server going away mid-query rejects the query; nothing else to do
  await root.connect();
  try {
    const exists = await root.query('select 1 from pg_database where datname = $1', [database]);
    if (exists.rowCount === 0) await root.query(`create database ${root.escapeIdentifier(database)}`);
  } finally {
    await root.end().catch(() => undefined);
  }
}
