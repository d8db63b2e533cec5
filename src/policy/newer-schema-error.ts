import { SqlState } from '../errors/sqlstate.js';
import { TenantryError } from '../errors/tenantry-error.js';

/** SQLSTATE the install steps raise when the database records library migrations this version does not know. */
export const NEWER_SCHEMA_SQLSTATE = SqlState.schemaNewerThanLibrary;

/**
 * `tenantry install` refused to run: the database records library migrations this Tenantry
 * version does not know, so a newer version installed it. Running this one would put back older
 * function bodies over newer ones (a downgrade nobody asked for); nothing was changed.
 */
export class NewerSchemaError extends TenantryError {
  /** `feature/NNN` of each migration this version does not know. */
  readonly unknown: readonly string[];

  constructor(unknown: string[], cause?: unknown) {
    super(
      'SCHEMA_NEWER_THAN_LIBRARY',
      `This database was installed by a newer Tenantry (library migrations ${unknown.join(', ') || 'unknown to this version'}): nothing was changed. Install with that version or a newer one.`,
      { status: 500, details: { unknown }, cause },
    );
    this.unknown = unknown;
  }
}
