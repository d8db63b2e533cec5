export {
  startEmbeddedPostgres,
  freePort,
  runningPostmaster,
  type EmbeddedServer,
  type EmbeddedOptions,
} from './embedded-postgres.js';
export { EmbeddedStartError } from './embedded-start-error.js';
export { openLocalDatabase, type LocalDatabase, type LocalDatabaseOptions } from './local-database.js';
