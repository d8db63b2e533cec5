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
export {
  openLocalDatabase,
  secretVariable,
  type LocalDatabase,
  type LocalDatabaseOptions,
  type LocalDatabaseOrigin,
  type LocalSecretName,
  type SecretSource,
} from './local-database.js';
