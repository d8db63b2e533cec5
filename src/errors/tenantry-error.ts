/** Stable machine-readable codes of every error Tenantry raises. Branch on these, never on messages. */
export type TenantryErrorCode =
  | 'TENANT_SCOPE_MISSING'
  | 'INVALID_TENANT_ID'
  | 'TENANT_CONTEXT_MISMATCH'
  | 'TENANT_CONTEXT_REJECTED'
  | 'CROSS_TENANT_ROW'
  | 'TENANT_NOT_FOUND'
  | 'TENANT_SUSPENDED'
  | 'TENANT_DELETED'
  // onboarding has not finished (see src/lifecycle/onboard)
  | 'TENANT_PROVISIONING'
  | 'TENANT_SLUG_TAKEN'
  | 'INVALID_ARGUMENT'
  | 'INVALID_IDENTIFIER'
  | 'CONFIGURATION_ERROR'
  | 'UNSUPPORTED'
  | 'CITUS_SHARD'
  // install (see src/policy/newer-schema-error.ts, src/policy/install-secrets-mismatch-error.ts)
  | 'SCHEMA_NEWER_THAN_LIBRARY'
  | 'INSTALL_SECRETS_MISMATCH'
  // identity and access (see src/identity)
  | 'UNAUTHENTICATED'
  | 'TENANT_REQUIRED'
  | 'TENANT_CONFLICT'
  | 'TENANT_SELECTION_FORBIDDEN'
  | 'NOT_A_MEMBER'
  | 'SESSION_REVOKED'
  | 'API_KEY_INVALID'
  | 'STAFF_ACCESS_REQUIRED'
  | 'CODE_INVALID'
  | 'REASON_INVALID'
  | 'DOMAIN_TAKEN'
  | 'DOMAIN_RESERVED'
  | 'HOST_INVALID'
  | 'HOST_MISMATCH'
  | 'DOMAIN_UNVERIFIED'
  // JWT verification (see src/identity/token-verifier.ts)
  | 'TOKEN_INVALID'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_KEYS_UNAVAILABLE'
  // tiers and routing (see src/tiers)
  | 'TENANT_ROUTE_STALE'
  | 'TENANT_FROZEN'
  | 'TENANT_ROUTE_UNKNOWN'
  | 'TENANT_ROUTE_MISMATCH'
  | 'CLUSTER_UNKNOWN'
  | 'TENANT_SCHEMA_TAKEN'
  | 'PLACEMENT_TARGET_TAKEN'
  // onboarding (see src/lifecycle/onboard)
  | 'ONBOARDING_CONFLICT'
  | 'ONBOARDING_BUSY'
  | 'ONBOARDING_STEP_FAILED'
  | 'ONBOARDING_NO_MIGRATIONS'
  // support SQL (`tenantry sql`, see src/cli/sql-command.ts)
  | 'SQL_FAILED'
  | 'SQL_STATEMENT_REFUSED'
  // outages (see src/errors/database-unavailable-error.ts)
  | 'DATABASE_UNAVAILABLE'
  | 'EMBEDDED_START_FAILED'
  // Prisma (see src/prisma)
  | 'PRISMA_POOL_REPLACED'
  | 'PRISMA_CLIENT_UNSUPPORTED'
  // background jobs (see src/jobs)
  | 'JOB_TENANT_MISSING'
  | 'JOB_ENVELOPE_INVALID'
  | 'JOB_REPLAYED'
  | 'JOB_UNKNOWN'
  | 'JOB_PAYLOAD_INVALID'
  // bounded waits (see src/errors/wait-errors.ts)
  | 'POOL_TIMEOUT'
  | 'STATEMENT_TIMEOUT'
  | 'LOCK_TIMEOUT'
  | 'REQUEST_ABORTED'
  | 'DEADLINE_EXCEEDED'
  // off-boarding and purge (see src/lifecycle/purge)
  | 'TENANT_NOT_DELETED'
  | 'TENANT_PURGING'
  | 'PURGE_RETENTION'
  | 'PURGE_CONFIRMATION_REQUIRED'
  | 'PURGE_UNACCOUNTED_TABLES'
  | 'PURGE_BUSY'
  | 'PURGE_NOT_READY'
  | 'PURGE_INCOMPLETE'
  | 'PURGE_REPORT_NOT_FOUND'
  | 'PURGE_REPORT_INVALID'
  // the placement to drop is not the tenant's alone (the catalog, a shared database or data schema)
  | 'PURGE_TARGET_SHARED'
  // a step of the purge failed (its SQLSTATE and step in details)
  | 'PURGE_STEP_FAILED'
  // tenant export and import (see src/lifecycle/export)
  | 'ARCHIVE_CORRUPT'
  | 'ARCHIVE_TRUNCATED'
  | 'ARCHIVE_VERSION_UNSUPPORTED'
  | 'ARCHIVE_TABLE_MISMATCH'
  | 'ARCHIVE_UNSIGNED'
  | 'ARCHIVE_SIGNATURE_INVALID'
  | 'IMPORT_TENANT_EXISTS'
  | 'IMPORT_TENANT_ACTIVE'
  | 'IMPORT_REPLACE_UNSUPPORTED'
  | 'IMPORT_TARGET_TAKEN'
  | 'IMPORT_TARGET_NOT_INSTALLED'
  | 'IMPORT_SCHEMA_MISMATCH'
  | 'IMPORT_VERSION_MISMATCH'
  | 'IMPORT_CONFLICT'
  | 'IMPORT_REFERENCE_MISSING'
  | 'IMPORT_VERIFICATION_FAILED'
  | 'IMPORT_BUSY'
  // usage metering (see src/metering)
  | 'USAGE_BUFFER_FULL'
  | 'USAGE_RECORDER_CLOSED'
  | 'USAGE_FLUSH_FAILED'
  // rate limits (see src/limits)
  | 'RATE_LIMITED'
  | 'LIMIT_NOT_IN_PLAN'
  // settings, feature flags and the tenant cache (see src/settings, src/cache)
  | 'CACHE_KEY_INVALID'
  | 'SETTING_UNKNOWN'
  | 'SETTING_INVALID'
  | 'SETTINGS_VERSION_NOT_FOUND'
  | 'FLAG_UNKNOWN'
  | 'FLAG_VALUE_INVALID'
  // per-tenant branding (see src/branding)
  | 'BRAND_INVALID'
  | 'BRAND_LOGO_INVALID'
  | 'BRAND_VERSION_NOT_FOUND'
  // plugins per tenant (see src/plugins)
  | 'PLUGIN_INVALID'
  | 'PLUGIN_DUPLICATE'
  | 'PLUGIN_MIGRATION_INVALID'
  | 'PLUGIN_UNKNOWN'
  | 'PLUGIN_DISABLED';

/**
 * Base class of Tenantry's errors: a stable `code`, an HTTP-ish `status`, readonly context
 * fields and an optional `cause`. Messages never carry secrets or another tenant's data.
 */
export class TenantryError extends Error {
  readonly code: TenantryErrorCode;
  /** Suggested HTTP status when this error reaches an API edge. */
  readonly status: number;
  /** Extra, non-secret facts about the failure (field names, table names, ids of the caller's own tenant). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: TenantryErrorCode,
    message: string,
    options: { status?: number; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status ?? 500;
    this.details = Object.freeze({ ...options.details });
  }
}

/** No tenant is in context where one is required. Never means "all tenants". */
export class TenantScopeMissingError extends TenantryError {
  constructor(message = 'No tenant in context: wrap the work in runAs(tenant, fn)') {
    super('TENANT_SCOPE_MISSING', message, { status: 500 });
  }
}

/** A tenant id that is not a canonical lower-case UUID. */
export class InvalidTenantIdError extends TenantryError {
  constructor() {
    super('INVALID_TENANT_ID', 'Tenant id must be a UUID', { status: 400 });
  }
}

/** A statement in an open transaction was issued under a different tenant than the one that began it. */
export class TenantContextMismatchError extends TenantryError {
  constructor() {
    super(
      'TENANT_CONTEXT_MISMATCH',
      'This transaction was begun for another tenant (or none); a transaction never spans tenants',
      { status: 500 },
    );
  }
}

/** PostgreSQL refused the tenant context value (forged, expired, malformed or no key installed). */
export class TenantContextRejectedError extends TenantryError {
  constructor(reason: string, cause?: unknown) {
    super('TENANT_CONTEXT_REJECTED', `PostgreSQL rejected the tenant context: ${reason}`, { status: 500, cause });
  }
}

/** The tenant does not exist (or is deleted, where deleted tenants must look absent). */
export class TenantNotFoundError extends TenantryError {
  constructor(details: Record<string, unknown> = {}) {
    super('TENANT_NOT_FOUND', 'Tenant not found', { status: 404, details });
  }
}

/**
 * The tenant exists but is suspended: answered by the HTTP resolver, and by the tenant pools when
 * a statement runs in a suspended tenant's context (the database refuses it: SQLSTATE TR005).
 */
export class TenantSuspendedError extends TenantryError {
  constructor(details: Record<string, unknown> = {}, cause?: unknown) {
    super('TENANT_SUSPENDED', 'Tenant is suspended', { status: 403, details, cause });
  }
}

/**
 * A statement ran in a soft-deleted tenant's context: the database refuses it (SQLSTATE TR006)
 * until the tenant is restored. Only lifecycle operations (purge, export, restore), which run
 * as the owner role, touch a deleted tenant's rows. HTTP answers a deleted tenant as not found.
 */
export class TenantDeletedError extends TenantryError {
  constructor(details: Record<string, unknown> = {}, cause?: unknown) {
    super('TENANT_DELETED', 'Tenant is deleted', { status: 404, details, cause });
  }
}

/** Bad input to a Tenantry API, with the offending field. */
export class InvalidArgumentError extends TenantryError {
  constructor(message: string, field?: string) {
    super('INVALID_ARGUMENT', message, { status: 400, details: field ? { field } : {} });
  }
}

/** Tenantry is configured in a way that cannot be safe (e.g. an app role that bypasses RLS). */
export class ConfigurationError extends TenantryError {
  constructor(message: string, cause?: unknown) {
    super('CONFIGURATION_ERROR', message, { status: 500, cause });
  }
}

/**
 * A result row carried a tenant column whose value is not the current tenant: a policy bug, a
 * view or function that bypasses RLS, or a tier without RLS. Names the table (qualified name when
 * it could be looked up, always its OID) and the column, never the row's data.
 */
export class CrossTenantRowError extends TenantryError {
  declare readonly details: Readonly<{ tableOid: number; table?: string; column: string }>;

  constructor(details: { tableOid: number; table?: string; column: string }) {
    const table = details.table ?? `table OID ${details.tableOid}`;
    super('CROSS_TENANT_ROW', `A row of ${table} came back with another tenant's ${details.column}`, {
      status: 500,
      details,
    });
  }
}
