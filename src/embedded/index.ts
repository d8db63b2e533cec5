export {
  startEmbeddedPostgres,
  freePort,
  runningPostmaster,
  type EmbeddedServer,
  type EmbeddedOptions,
  type EmbeddedProgress,
  type EmbeddedRecovery,
} from './embedded-postgres.js';
export { EmbeddedStartError } from './embedded-start-error.js';
export { openLocalDatabase, type LocalDatabase, type LocalDatabaseOptions } from './local-database.js';
