/** How bad a finding is: an `error` makes the report fail (`ok: false`), a `warning` does not. */
export type FindingSeverity = 'error' | 'warning';

/**
 * Stable codes of every finding `tenantry doctor` reports. Branch on these, never on messages.
 * docs/doctor.md explains each one.
 */
export type FindingCode =
  // installation
  | 'TENANTRY_NOT_INSTALLED'
  | 'APP_ROLE_MISSING'
  // the application role
  | 'APP_ROLE_IS_OWNER'
  | 'APP_ROLE_SUPERUSER'
  | 'APP_ROLE_BYPASSRLS'
  | 'APP_ROLE_CREATEROLE'
  | 'APP_ROLE_REPLICATION'
  | 'APP_ROLE_SESSION_DEFAULTS'
  | 'APP_ROLE_OWNS_OBJECT'
  | 'APP_ROLE_MEMBER_OF_PRIVILEGED_ROLE'
  // privileges of the application role
  | 'APP_CAN_TRUNCATE'
  | 'APP_CAN_REFERENCE'
  | 'APP_CAN_TRIGGER'
  | 'APP_CAN_CREATE_IN_SCHEMA'
  | 'APP_CAN_CREATE_TEMP'
  // least privilege: what the app role can do to other tenants without reading their rows
  | 'APP_CAN_CREATE_LARGE_OBJECTS'
  | 'APP_CAN_SIGNAL_SESSIONS'
  | 'APP_CAN_READ_ROUTES'
  | 'PRIVATE_SCHEMA_REACHABLE'
  | 'PRIVATE_OBJECT_REACHABLE'
  // tenant tables
  | 'TENANT_TABLE_UNREGISTERED'
  | 'TENANT_COLUMN_MISSING'
  | 'TENANT_COLUMN_NOT_UUID'
  | 'TENANT_COLUMN_NULLABLE'
  | 'TENANT_TABLE_RLS_DISABLED'
  | 'TENANT_TABLE_RLS_NOT_FORCED'
  | 'TENANT_TABLE_NO_POLICY'
  | 'TENANT_INDEX_MISSING'
  // keys
  | 'UNIQUE_WITHOUT_TENANT'
  | 'PRIMARY_KEY_WITHOUT_TENANT'
  | 'FOREIGN_KEY_WITHOUT_TENANT'
  // the shape of tenant tables
  | 'FOREIGN_KEY_UNINDEXED'
  | 'DUPLICATE_INDEX'
  | 'TENANT_TABLE_NO_PRIMARY_KEY'
  // policies
  | 'POLICY_PER_ROW_CONTEXT'
  | 'POLICY_READS_SETTING_DIRECTLY'
  | 'POLICY_ALLOWS_ALL'
  | 'POLICY_IGNORES_TENANT'
  | 'POLICY_TENANT_NOT_BOUND'
  | 'POLICY_WITHOUT_WITH_CHECK'
  // views
  | 'VIEW_NOT_SECURITY_INVOKER'
  | 'MATERIALIZED_VIEW_REACHABLE'
  // SECURITY DEFINER functions
  | 'DEFINER_WITHOUT_SEARCH_PATH'
  | 'DEFINER_SEARCH_PATH_UNSAFE'
  | 'DEFINER_EXECUTABLE_BY_PUBLIC'
  | 'DEFINER_NOT_REVIEWED'
  | 'DEFINER_CHANGED_SINCE_REVIEW'
  // the registry and tables outside it
  | 'GLOBAL_TABLE_WRITABLE'
  | 'REGISTRY_STALE_ENTRY'
  | 'UNREGISTERED_TABLE_REACHABLE'
  | 'UNREGISTERED_TABLE_NOT_FORCED'
  // settings and install state
  | 'PERSISTENT_TENANT_CONTEXT'
  | 'EVENT_TRIGGER_MISSING'
  | 'EVENT_TRIGGER_DISABLED'
  | 'CONTEXT_KEY_MISSING'
  | 'INSTALL_OUTDATED'
  | 'LIBRARY_MIGRATION_CHANGED'
  | 'LIBRARY_MIGRATION_UNKNOWN'
  | 'APP_ROLE_TIMEOUTS_MISSING'
  | 'OWNER_CANNOT_READ_ACTIVITY'
  // the support role (audited staff reads)
  | 'SUPPORT_ROLE_UNSAFE'
  | 'SUPPORT_ROLE_CAN_WRITE'
  | 'SUPPORT_POLICY_MISSING'
  | 'SUPPORT_ROLE_REACHES_PRIVATE'
  // tiers: the local route check, pinned tables, tenant schemas
  | 'ROUTE_CHECK_INLINED_WITH_PLACEMENTS'
  | 'TENANT_FROZEN_LONG'
  // suspended and deleted tenants (doctor --placements: the catalog against each database's holds)
  | 'TENANT_HOLD_MISSING'
  | 'TENANT_HOLD_STALE'
  | 'POLICY_SKIPS_ROUTE_CHECK'
  | 'PINNED_TABLE_ROUTE_CHECKED'
  | 'SCHEMA_TENANT_TABLE_MISSING'
  | 'TENANT_SCHEMA_UNGUARDED'
  // Citus readiness (`doctor --citus` only)
  | 'CITUS_EXCLUSION_WITHOUT_TENANT'
  | 'CITUS_FOREIGN_KEY_TO_LOCAL_TABLE'
  | 'CITUS_FOREIGN_KEY_ACTION'
  | 'CITUS_GLOBAL_TABLE_REFERENCES_TENANT'
  | 'CITUS_NO_PRIMARY_KEY'
  | 'CITUS_POLICY_SUBQUERY'
  | 'CITUS_TRIGGER_ON_TENANT_TABLE'
  | 'CITUS_CONTEXT_TEXT_VISIBLE';

/** One thing `tenantry doctor` found wrong, with the SQL (or command) that fixes it. Plain data: JSON-serialisable. */
export interface Finding {
  /** Stable code, e.g. `APP_ROLE_SUPERUSER`. */
  code: FindingCode;
  severity: FindingSeverity;
  /** The object at fault, named as PostgreSQL identifies it: `public.notes`, `notes_email_key on public.notes`, `public.f(uuid)`, a role name. */
  object: string;
  /** What is wrong and why it matters. Never contains a setting's value or any row data. */
  message: string;
  /** The SQL (or `tenantry` command) that fixes it. */
  fix: string;
}

/** The result of {@link runDoctor}: `ok` is true when no finding has severity `error`. */
export interface DoctorReport {
  ok: boolean;
  findings: Finding[];
}
