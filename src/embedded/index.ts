export { startEmbeddedPostgres, freePort, type EmbeddedServer, type EmbeddedOptions } from './embedded-postgres.js';
export { openLocalDatabase, type LocalDatabase, type LocalDatabaseOptions } from './local-database.js';
