export {
  runAs,
  runWithoutTenant,
  runWithSignal,
  currentTenant,
  tryCurrentTenant,
  currentSignal,
  type TenantRef,
  type RunAsOptions,
} from './context/tenant-context.js';
export { disconnectSignal, type ClosableResponse } from './context/disconnect-signal.js';
export { isTenantId, toTenantId } from './context/tenant-id.js';
export {
  TenantryError,
  TenantScopeMissingError,
  InvalidTenantIdError,
  TenantContextMismatchError,
  TenantContextRejectedError,
  CrossTenantRowError,
  TenantNotFoundError,
  TenantSuspendedError,
  TenantDeletedError,
  InvalidArgumentError,
  ConfigurationError,
  type TenantryErrorCode,
} from './errors/tenantry-error.js';
export { SqlState, sqlStateOf } from './errors/sqlstate.js';
export { DatabaseUnavailableError, isDatabaseUnavailable } from './errors/database-unavailable-error.js';
export {
  PoolTimeoutError,
  StatementTimeoutError,
  LockTimeoutError,
  RequestAbortedError,
  DeadlineExceededError,
} from './errors/wait-errors.js';
export {
  TenantPool,
  type TenantPoolConfig,
  type TenantPoolLogger,
  type PoolerInfo,
  type PoolerSelfTestOptions,
} from './data/tenant-pool.js';
export type { StatementObservation, TenantPoolObserver } from './data/pool-observer.js';
export {
  detectPooler,
  describePooler,
  type DetectPoolerOptions,
  type PoolerDetection,
  type PoolingMode,
} from './data/pooler-self-test.js';
export {
  recordRateLimited,
  installTelemetry,
  activeTelemetry,
  telemetrySpan,
  type TelemetrySink,
  type TelemetryAttributes,
  type StatementStart,
  type StatementEnd,
  type Annotate,
} from './telemetry/telemetry-hooks.js';
export { TenantClient } from './data/tenant-client.js';
export {
  TenantDbLimits,
  DB_LIMIT_SETTINGS,
  type DbLimits,
  type TenantDbLimitsOptions,
  type ResolvedDbLimits,
} from './data/tenant-db-limits.js';
export { FairCheckout } from './data/fair-checkout.js';
export { TenantActivity, type TenantActivityRow } from './data/tenant-activity.js';
export {
  publishTenantActivity,
  writeActivityWindow,
  publishingInstances,
  readPublishedActivity,
  readLiveActivity,
  liveActivityBlindness,
  watchTenantActivity,
  readActivityWatch,
  ACTIVITY_INTERVAL_MS,
  ACTIVITY_WATCH_SECONDS,
  ACTIVITY_WATCH_POLL_MS,
  type PublishingInstances,
  type PublishedTenantActivity,
  type LiveTagActivity,
  type PublishTenantActivityOptions,
} from './data/tenant-activity-publisher.js';
export { activityTag, ACTIVITY_TAG_PREFIX } from './data/activity-tag.js';
export { adviseOnLoad, type TenantLoad, type LoadAdviceOptions } from './tiers/placement-advice.js';
export { ContextSigner, type ContextEncoder } from './data/context-signer.js';
export {
  installSql,
  resolveInstallOptions,
  CONTEXT_SETTING,
  DEFAULT_APP_ROLE_TIMEOUTS,
  type InstallOptions,
  type AppRoleTimeouts,
  type ContextMode,
} from './policy/install-sql.js';
export {
  install,
  planInstall,
  setContextSecret,
  type InstallRunOptions,
  type InstallReport,
} from './policy/installer.js';
export { InstallSecretsMismatchError } from './policy/install-secrets-mismatch-error.js';
export {
  libraryMigrations,
  appliedLibraryMigrations,
  pendingOf as pendingLibraryMigrations,
  migrationLabel,
  type LibraryMigration,
  type AppliedMigration as AppliedLibraryMigration,
} from './policy/library-migrations.js';
export {
  rotateContextSecret,
  rotatePassword,
  type RotateContextSecretOptions,
  type ContextSecretRotation,
} from './policy/rotation.js';
export { rotateContextSecretEverywhere, type DatabaseRotation } from './tiers/rotate-everywhere.js';
export {
  TenantCatalog,
  type Queryable,
  type ListTenantsOptions,
  type TenantCatalogOptions,
  type HoldPlacements,
} from './catalog/tenant-catalog.js';
export type { Tenant, TenantStatus, TenantPlacement, NewTenant } from './catalog/tenant.js';
export {
  runDoctor,
  formatDoctorReport,
  acceptDefinerFunction,
  recordReviewedFunctions,
  type ReviewedFunction,
} from './policy/doctor.js';
export { TokenVerifier, type VerifiedToken } from './identity/token-verifier.js';
export type {
  TokenVerifierConfig,
  TenantClaimMode,
  SecretKeySource,
  PublicKeySource,
  JwksKeySource,
} from './identity/token-verifier-config.js';
export type { JwksOptions } from './identity/jwks-key-set.js';
export { TokenIssuer, type TokenIssuerConfig, type IssueTokenInput } from './identity/token-issuer.js';
export { TokenError, type TokenErrorCode, type TokenErrorReason } from './identity/token-error.js';
export { TOKEN_ALGORITHMS, type TokenAlgorithm } from './identity/token-algorithms.js';
export type { TokenSecret, TokenKeyInput } from './identity/token-keys.js';
export {
  TenantResolver,
  type TenantResolverOptions,
  type Resolution,
  type Principal,
  type ResolverName,
  type BearerTokenVerifier,
} from './identity/tenant-resolver.js';
export {
  bearerCredential,
  checkRequestAuthority,
  isValidHostHeader,
  type RequestFacts,
} from './identity/request-facts.js';
export { AccessError, type AccessErrorCode } from './identity/access-error.js';
export { ApiKeys, type ApiKeyInfo, type VerifiedApiKey } from './identity/api-keys.js';
export { Sessions, type SessionKind } from './identity/sessions.js';
export { OneTimeCodes, type ConsumedCode } from './identity/one-time-codes.js';
export {
  TenantDomains,
  normalizeHost,
  type TenantDomain,
  type TenantDomainsOptions,
  type TxtResolver,
} from './identity/tenant-domains.js';
export {
  StaffAccess,
  REASON_MIN_VISIBLE,
  REASON_MAX_LENGTH,
  type StaffAccessKind,
  type StaffAccessRequest,
} from './identity/staff-access.js';
export { visibleLength } from './identity/visible-length.js';
export { StaffDirectory } from './identity/staff-directory.js';
export { AuditLog, type AuditEntry, type AuditActorKind } from './identity/audit-log.js';
export { TenantRouter, type Route, type Tier, type TenantRouterOptions } from './tiers/tenant-router.js';
export { RoutedTenantPool, isRetryableRouteError, type RoutedTenantPoolConfig } from './tiers/routed-tenant-pool.js';
export {
  Placements,
  MOVING_SETTING,
  type Placement,
  type PlacementTarget,
  type LocalState,
  type PlacementsOptions,
} from './tiers/placements.js';
export {
  createTenantSchema,
  createTenantDatabase,
  type TenantDatabaseOptions,
  type TenantSchemaOptions,
} from './tiers/provision.js';
export {
  planPlacementPolicy,
  placementQuestion,
  type PlacementPolicy,
  type PlacementDecision,
  type PlacementQuestion,
  type ClusterLoad,
  type PlanPolicyOptions,
} from './tiers/placement-policy.js';
export {
  migrateEverywhere,
  type MigrateEverywhereOptions,
  type MigrationReport,
  type MigrationProgress,
  type TargetResult,
  type TargetStatus,
} from './tiers/migrate/migrate-everywhere.js';
export { migrateLocation, type MigrateLocationOptions } from './tiers/migrate/migrate-location.js';
export { migrationStatus, type MigrationStatusReport, type TargetVersion } from './tiers/migrate/migration-status.js';
export { loadMigrations, type Migration, type MigrationScope } from './tiers/migrate/migration-files.js';
export { listMigrationTargets, type MigrationTarget, type TargetKind } from './tiers/migrate/migration-target.js';
export { MigrationError, type MigrationErrorCode } from './tiers/migrate/migration-error.js';
export { migrateSql } from './tiers/migrate/migrate-sql.js';
export type { TargetFailure, AppliedMigration } from './tiers/migrate/database-state.js';
export { doctorEverywhere, type PlacementsAudit, type DatabaseAudit } from './tiers/migrate/doctor-everywhere.js';
export {
  installEverywhere,
  type InstallEverywhereOptions,
  type InstallEverywhereReport,
  type DatabaseInstall,
} from './tiers/install-everywhere.js';
export {
  reconcileTenantHolds,
  type ReconcileTenantHoldsOptions,
  type HoldReconcileReport,
  type HoldReconcile,
} from './tiers/tenant-holds.js';
export { TenantMover, type TenantMoverOptions } from './tiers/move/tenant-mover.js';
export type { CaptureMode, MoveCapture, ReplicationOptions } from './tiers/move/logical-capture.js';
export { MoveError, type MoveErrorCode } from './tiers/move/move-error.js';
export type { MoveRecord, MoveStep, MoveProgress, MoveCursor } from './tiers/move/move-record.js';
export { moveSql } from './tiers/move/move-sql.js';
export {
  isolateTenantShard,
  moveTenantShard,
  tenantShardPlacement,
  CitusShardError,
  type TenantShardPlacement,
  type ShardTransferMode,
} from './citus/tenant-shards.js';
export {
  citusPlacementPolicy,
  citusPlacementQuestion,
  applyCitusPlacement,
  type CitusPlacementQuestion,
  type CitusPlacementDecision,
  type CitusPlacementOptions,
  type CitusWorkerLoad,
} from './citus/citus-placement.js';
