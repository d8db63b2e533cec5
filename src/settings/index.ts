/**
 * `tenantry/settings`: typed, versioned per-tenant settings (a zod schema, layers library →
 * application → plan → tenant), feature flags as an OpenFeature provider whose targeting key is
 * the current tenant, and the feed that tells every instance of a change within a second. See
 * docs/settings.md and docs/feature-flags.md.
 */
export {
  defineSettings,
  type SettingsDefinition,
  type SettingsDefinitionInput,
  type SettingsSchema,
  type SettingSource,
} from './settings-definition.js';
export { TenantSettings, type TenantSettingsOptions } from './tenant-settings.js';
export {
  SettingsAdmin,
  type SettingsAdminOptions,
  type SettingsChange,
  type SettingsHistoryEntry,
} from './settings-admin.js';
export type { SettingsSnapshot } from './settings-snapshot.js';
export type { ChangeMeta } from './change-meta.js';
export {
  SettingsFeed,
  settingsRouteOf,
  DEFAULT_SETTINGS_CHANNEL,
  GLOBAL_SETTINGS_ROUTE,
  type SettingsFeedOptions,
  type SettingsFeedListener,
} from './settings-feed.js';
export {
  SettingUnknownError,
  SettingInvalidError,
  SettingsVersionNotFoundError,
  FlagUnknownError,
  FlagValueInvalidError,
} from './settings-errors.js';
export {
  defineFlags,
  rolloutBucket,
  type FlagDeclaration,
  type FlagsDefinition,
  type FlagEvaluation,
  type FlagFacts,
  type FlagReason,
  type FlagState,
  type FlagValue,
} from './flag-definition.js';
export { TenantFlags, type TenantFlagsOptions } from './tenant-flags.js';
export {
  FlagsAdmin,
  type FlagsAdminOptions,
  type FlagChange,
  type FlagChangeKind,
  type TenantFlagView,
} from './flags-admin.js';
export { TenantFlagProvider } from './tenant-flag-provider.js';
