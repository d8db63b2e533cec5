import { openLocalDatabase, type LocalDatabase } from '../embedded/local-database.js';

/** Global options every command accepts. */
export interface ConnectionOptions {
  databaseUrl?: string;
  dir?: string;
}

/**
 * Opens the database a command works on (DATABASE_URL / --database-url, or the project's
 * embedded server), runs `fn`, and stops an embedded server this command started.
 */
export async function withDatabase<T>(options: ConnectionOptions, fn: (db: LocalDatabase) => Promise<T>): Promise<T> {
  const db = await openLocalDatabase({ databaseUrl: options.databaseUrl, dir: options.dir });
  try {
    return await fn(db);
  } finally {
    await db.stop();
  }
}
