import { TenantryError } from '../errors/tenantry-error.js';

/**
 * Raised by the query guard in `enforce` mode before the statement reaches the database: the
 * statement reads or writes a tenant table without a tenant predicate, or sets the tenant
 * setting. Code `TENANT_SCOPE_MISSING`, status 500. Details name tables and the fingerprint,
 * never the statement's values.
 */
export class UnscopedStatementError extends TenantryError {
  /** libpg-query fingerprint of the refused statement (`tenantry guard accept <fingerprint>`). */
  readonly fingerprint: string;
  /** Schema-qualified tenant tables the statement does not scope. */
  readonly tables: readonly string[];
  readonly setsContext: boolean;

  constructor(fingerprint: string, tables: string[], setsContext: boolean) {
    const what = setsContext
      ? 'Statement sets or resets the tenant setting; only TenantPool may do that'
      : `Statement on tenant table${tables.length === 1 ? '' : 's'} ${tables.join(', ')} is not scoped by the tenant column`;
    super('TENANT_SCOPE_MISSING', `${what} (fingerprint ${fingerprint}; see tenantry guard report)`, {
      status: 500,
      details: { fingerprint, tables, setsContext },
    });
    this.fingerprint = fingerprint;
    this.tables = Object.freeze([...tables]);
    this.setsContext = setsContext;
  }
}
