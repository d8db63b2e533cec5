/** SQLSTATE codes Tenantry branches on. Frozen: classify PostgreSQL errors by code, never by text. */
export const SqlState = Object.freeze({
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  checkViolation: '23514',
  notNullViolation: '23502',
  invalidTextRepresentation: '22P02',
  insufficientPrivilege: '42501',
  undefinedTable: '42P01',
  /** The database does not exist (a connection to it is refused). */
  invalidCatalogName: '3D000',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  queryCanceled: '57014',
  lockNotAvailable: '55P03',
  /** Raised by tenantry.current_tenant_id() when the context value is forged, expired or malformed. */
  tenantContextRejected: 'TR001',
  /** Raised when signed mode is installed but no context key was set. */
  tenantContextKeyMissing: 'TR002',
  /** Raised by the context check for a tenant held as suspended in this database (see TenantSuspendedError). */
  tenantSuspended: 'TR005',
  /** Raised by the context check for a tenant held as deleted in this database (see TenantDeletedError). */
  tenantDeleted: 'TR006',
  /** Raised by tenantry.claim_tenant_schema() when the schema belongs to another tenant. */
  tenantSchemaTaken: 'TR007',
  /** Raised by `tenantry install`'s steps over a database a newer Tenantry installed (see NewerSchemaError). */
  schemaNewerThanLibrary: 'TRI01',
} as const);

/** Returns the SQLSTATE of a node-postgres error, if it is one. */
export function sqlStateOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.length === 5 ? code : undefined;
}
