import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/embedded/embedded-postgres.js';

/** The PostgreSQL server a benchmark runs against, and URLs into it. */
export interface BenchServer {
  /** Superuser URL of the maintenance database. */
  readonly adminUrl: string;
  readonly embedded: boolean;
  /** `server_version` as the server reports it. */
  readonly version: string;
  /** URL of `database` as `user` (default: the superuser of adminUrl). */
  url(database: string, user?: { name: string; password: string }): string;
  /** Creates `database` afresh (dropping a leftover of an earlier run). */
  createDatabase(database: string): Promise<void>;
  /** Drops what the run created, then stops the embedded server if there is one. */
  close(cleanup: { databases: string[]; roles: string[] }): Promise<void>;
}

/** The settings the benchmark asks of an embedded server. */
export const EMBEDDED_SETTINGS = { shared_buffers: '256MB', max_connections: '300' };

async function adminQuery(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Opens `databaseUrl` when given (a superuser URL), otherwise starts an embedded PostgreSQL in a temp folder with `settings`. */
export async function openServer(
  databaseUrl: string | undefined,
  settings: Record<string, string> = {},
): Promise<BenchServer> {
  const embedded = databaseUrl
    ? undefined
    : await startEmbeddedPostgres({ settings: { ...EMBEDDED_SETTINGS, ...settings } });
  const adminUrl = databaseUrl ?? embedded!.adminUrl;
  const { rows } = await adminQuery(
    adminUrl,
    `select current_setting('server_version') as v, rolsuper from pg_roles where rolname = current_user`,
  );
  if (!rows[0]?.rolsuper) {
    await embedded?.stop();
    throw new Error('The benchmark needs a superuser URL (it creates databases and roles)');
  }
  const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;
  return {
    adminUrl,
    embedded: embedded !== undefined,
    version: String(rows[0].v),
    url(database, user) {
      const u = new URL(adminUrl);
      u.pathname = `/${encodeURIComponent(database)}`;
      if (user) {
        u.username = encodeURIComponent(user.name);
        u.password = encodeURIComponent(user.password);
      }
      return u.toString();
    },
    async createDatabase(database) {
      await adminQuery(adminUrl, `drop database if exists ${quote(database)} with (force)`);
      await adminQuery(adminUrl, `create database ${quote(database)}`);
    },
    async close({ databases, roles }) {
      if (embedded) {
        await embedded.stop();
        return;
      }
      for (const db of databases) await adminQuery(adminUrl, `drop database if exists ${quote(db)} with (force)`);
      for (const role of roles) await adminQuery(adminUrl, `drop role if exists ${quote(role)}`).catch(() => undefined);
    },
  };
}
