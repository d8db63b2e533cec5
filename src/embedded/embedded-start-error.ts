import { TenantryError } from '../errors/tenantry-error.js';

/**
 * The embedded PostgreSQL server could not be started (or an orphaned one of the same data
 * folder could not be stopped). The message says why, from the server's own FATAL line when it
 * printed one, and names the data folder; never a password.
 */
export class EmbeddedStartError extends TenantryError {
  constructor(message: string, options: { dataDir: string; cause?: unknown }) {
    super('EMBEDDED_START_FAILED', message, {
      status: 503,
      details: { dataDir: options.dataDir },
      cause: options.cause,
    });
  }
}
