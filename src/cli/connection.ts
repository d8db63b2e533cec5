import pg from 'pg';
import { openLocalDatabase, type LocalDatabase, type LocalDatabaseOptions } from '../embedded/local-database.js';

/** Global options every command accepts. */
export interface ConnectionOptions {
  databaseUrl?: string;
  dir?: string;
  /** Refuse a folder without an install instead of creating one (read-only commands). */
  existing?: boolean;
  /** Change nothing on disk (`--dry-run`): see `LocalDatabaseOptions.readOnly`. */
  readOnly?: boolean;
  /** The app and owner roles the command installs (`install --app-role`, `--owner-role`). */
  roles?: LocalDatabaseOptions['roles'];
}

/**
 * Opens the database a command works on (DATABASE_URL / --database-url, or the project's
 * embedded server), runs `fn`, and stops an embedded server this command started.
 */
export async function withDatabase<T>(options: ConnectionOptions, fn: (db: LocalDatabase) => Promise<T>): Promise<T> {
  const db = await openLocalDatabase({
    databaseUrl: options.databaseUrl,
    dir: options.dir,
    existing: options.existing,
    readOnly: options.readOnly,
    roles: options.roles,
  });
  try {
    return await fn(db);
  } finally {
    await db.stop();
  }
}

/**
 * A pg.Pool for a command, with an 'error' listener: a connection that dies while idle (the
 * server stopping, 57P01) must not end the CLI with an unhandled 'error' event. The failure
 * still reaches the command through the query that needed the connection; the listener only
 * keeps the idle one's from crashing the process.
 */
export function commandPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool(config);
  pool.on('error', () => undefined);
  return pool;
}
