// The Citus test files share the coordinator's database (installs, shard splits and moves are
// cluster-wide): run them one file at a time, `npx vitest run test/citus/ --no-file-parallelism`.
// The reference server's tests get a fresh database of the cluster each (createCitusDatabase).
import pg from 'pg';
import { randomUUID } from 'node:crypto';
/** The coordinator's superuser URL (a database with the citus extension and its workers), or undefined. */
export const CITUS_URL = process.env.CITUS_URL || undefined;

/** The context secret the Citus tests install (the database keeps the first one installed). */
export const CITUS_SECRET = process.env.CITUS_CONTEXT_SECRET ?? 'citus-test-context-secret-0123456789abcdef';

/** The coordinator's URL as the application role (trust or TENANTRY_CITUS_APP_PASSWORD). */
export function citusAppUrl(adminUrl = CITUS_URL!, role = 'tenantry_app'): string {
  const url = new URL(adminUrl);
  url.username = role;
  url.password = process.env.TENANTRY_CITUS_APP_PASSWORD ?? '';
  return url.toString();
}

/** The SQLSTATE (or Tenantry code) of an error, for asserting refusals. */
export function sqlStateOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A worker of the coordinator, as in pg_dist_node. */
export interface CitusWorker {
  nodename: string;
  nodeport: number;
}

/** A fresh database of the cluster (see {@link createCitusDatabase}). */
export interface CitusTestDatabase {
  /** Its name: `<prefix>_<random>`. */
  name: string;
  /** The coordinator's superuser URL of it. */
  url: string;
  /** The workers it was added to. */
  workers: CitusWorker[];
  /** A superuser connection to it on the coordinator (ended by drop()). */
  admin: pg.Client;
  /** Drops it on the coordinator and on every worker (errors ignored: a clean-up). */
  drop(): Promise<void>;
}

/** Runs statements on one node of the cluster as the superuser of CITUS_URL. */
export async function onCitusNode(host: string, port: number, database: string, sql: string[]): Promise<void> {
  const c = new pg.Client({ host, port, user: new URL(CITUS_URL!).username || 'postgres', database });
  await c.connect();
  try {
    for (const s of sql) await c.query(s);
  } finally {
    await c.end();
  }
}

/**
 * A fresh database of the cluster of CITUS_URL, set up as docs/citus.md step 1 says: created on
 * the coordinator and on every worker (Citus does not propagate CREATE DATABASE) with the citus
 * extension, then the coordinator's host set and the workers added.
 */
export async function createCitusDatabase(prefix: string): Promise<CitusTestDatabase> {
  const name = `${prefix}_${randomUUID().slice(0, 8)}`;
  const root = new pg.Client({ connectionString: CITUS_URL });
  await root.connect();
  let workers: CitusWorker[];
  try {
    workers = (
      await root.query<CitusWorker>(
        `select nodename, nodeport from pg_dist_node where groupid <> 0 and isactive order by nodeport`,
      )
    ).rows;
    await root.query(`create database ${name}`);
  } finally {
    await root.end();
  }
  for (const w of workers) {
    await onCitusNode(w.nodename, w.nodeport, 'postgres', [`create database ${name}`]);
    await onCitusNode(w.nodename, w.nodeport, name, ['create extension citus']);
  }
  const u = new URL(CITUS_URL!);
  u.pathname = `/${name}`;
  const url = u.toString();
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query('create extension citus');
  await admin.query(`select citus_set_coordinator_host($1, $2)`, [u.hostname, Number(u.port || 5432)]);
  for (const w of workers) await admin.query(`select citus_add_node($1, $2)`, [w.nodename, w.nodeport]);
  return {
    name,
    url,
    workers,
    admin,
    async drop() {
      await admin.end().catch(() => undefined);
      const c = new pg.Client({ connectionString: CITUS_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`).catch(() => undefined);
      await c.end();
      for (const w of workers)
        await onCitusNode(w.nodename, w.nodeport, 'postgres', [`drop database if exists ${name} with (force)`]).catch(
          () => undefined,
        );
    },
  };
}
