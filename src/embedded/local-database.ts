import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { startEmbeddedPostgres, type EmbeddedServer } from './embedded-postgres.js';

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
  appRole: string;
  ownerRole: string;
  supportRole: string;
  appPassword: string;
  ownerPassword: string;
  supportPassword: string;
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
}

interface LocalConfig {
  contextSecret: string;
  jwtSecret: string;
  appPassword: string;
  ownerPassword: string;
  supportPassword: string;
}

interface ServerFile {
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
    if (parsed.supportPassword) return parsed as LocalConfig;
    // a config written before the support role existed: add its password, keep the rest
    const upgraded: LocalConfig = { ...(parsed as LocalConfig), supportPassword: secret() };
    await writeFile(file, JSON.stringify(upgraded, null, 2) + '\n', { mode: 0o600 });
    return upgraded;
  }
  const config: LocalConfig = {
    contextSecret: secret(),
    jwtSecret: secret(),
    appPassword: secret(),
    ownerPassword: secret(),
    supportPassword: secret(),
  };
  await mkdir(dir, { recursive: true });
  await writeFile(file, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  return config;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
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
 * `TENANTRY_SUPPORT_PASSWORD` override them.
 */
export async function openLocalDatabase(options: LocalDatabaseOptions = {}): Promise<LocalDatabase> {
  const dir = path.resolve(options.dir ?? '.tenantry');
  const config = await loadConfig(dir);
  const contextSecret = process.env.TENANTRY_CONTEXT_SECRET ?? config.contextSecret;
  const appPassword = process.env.TENANTRY_APP_PASSWORD ?? config.appPassword;
  const ownerPassword = process.env.TENANTRY_OWNER_PASSWORD ?? config.ownerPassword;
  const appRole = process.env.TENANTRY_APP_ROLE ?? 'tenantry_app';
  const ownerRole = process.env.TENANTRY_OWNER_ROLE ?? 'tenantry_owner';
  const supportRole = process.env.TENANTRY_SUPPORT_ROLE ?? 'tenantry_support';
  const supportPassword = process.env.TENANTRY_SUPPORT_PASSWORD ?? config.supportPassword;
  const databaseUrl = options.databaseUrl ?? process.env.DATABASE_URL;
  let server: EmbeddedServer | undefined;
  let adminUrl: string;
  const serverFile = path.join(dir, 'server.json');

  if (databaseUrl) {
    adminUrl = databaseUrl;
  } else {
    const running = existsSync(serverFile) ? (JSON.parse(await readFile(serverFile, 'utf8')) as ServerFile) : undefined;
    const database = options.database ?? 'tenantry';
    if (running && alive(running.pid)) {
      adminUrl = `postgres://postgres:tenantry-embedded@127.0.0.1:${running.port}/${database}`;
    } else {
      server = await startEmbeddedPostgres({
        dataDir: path.join(dir, 'pgdata'),
        persistent: true,
        onLog: options.onLog,
      });
      await writeFile(serverFile, JSON.stringify({ pid: process.pid, port: server.port } satisfies ServerFile));
      const root = new pg.Client({ connectionString: server.adminUrl });
      await root.connect();
      try {
        const exists = await root.query('select 1 from pg_database where datname = $1', [database]);
        if (exists.rowCount === 0) await root.query(`create database ${database}`);
      } finally {
        await root.end();
      }
      const u = new URL(server.adminUrl);
      u.pathname = `/${database}`;
      adminUrl = u.toString();
    }
  }
  return {
    adminUrl,
    ownerUrl: process.env.TENANTRY_OWNER_DATABASE_URL ?? asRole(adminUrl, ownerRole, ownerPassword),
    appUrl: process.env.TENANTRY_APP_DATABASE_URL ?? asRole(adminUrl, appRole, appPassword),
    supportUrl: process.env.TENANTRY_SUPPORT_DATABASE_URL ?? asRole(adminUrl, supportRole, supportPassword),
    appRole,
    ownerRole,
    supportRole,
    appPassword,
    ownerPassword,
    supportPassword,
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
