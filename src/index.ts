export { runAs, runWithoutTenant, currentTenant, tryCurrentTenant, type TenantRef } from './context/tenant-context.js';
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
  InvalidArgumentError,
  ConfigurationError,
  type TenantryErrorCode,
} from './errors/tenantry-error.js';
export { SqlState, sqlStateOf } from './errors/sqlstate.js';
export { TenantPool, type TenantPoolConfig } from './data/tenant-pool.js';
export { TenantClient } from './data/tenant-client.js';
export { ContextSigner, type ContextEncoder } from './data/context-signer.js';
export { installSql, resolveInstallOptions, CONTEXT_SETTING, type InstallOptions, type ContextMode } from './policy/install-sql.js';
export { install, setContextSecret, type InstallRunOptions } from './policy/installer.js';
export { TenantCatalog, type Queryable, type ListTenantsOptions } from './catalog/tenant-catalog.js';
export type { Tenant, TenantStatus, TenantPlacement, NewTenant } from './catalog/tenant.js';
export { runDoctor, formatDoctorReport } from './policy/doctor.js';
export { TokenVerifier, type VerifiedToken } from './identity/token-verifier.js';
export type { TokenVerifierConfig, TenantClaimMode, SecretKeySource, PublicKeySource, JwksKeySource } from './identity/token-verifier-config.js';
export type { JwksOptions } from './identity/jwks-key-set.js';
export { TokenIssuer, type TokenIssuerConfig, type IssueTokenInput } from './identity/token-issuer.js';
export { TokenError, type TokenErrorCode, type TokenErrorReason } from './identity/token-error.js';
export { TOKEN_ALGORITHMS, type TokenAlgorithm } from './identity/token-algorithms.js';
export type { TokenSecret, TokenKeyInput } from './identity/token-keys.js';
