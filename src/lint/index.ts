/**
 * `tenantry/eslint`: lint rules that keep tenant isolation from being bypassed in code.
 * Syntactic only (no type information), so they run as fast as ESLint's own rules.
 *
 * @example
 * // eslint.config.js
 * import tseslint from 'typescript-eslint';
 * import { plugin as tenantry } from 'tenantry/eslint';
 * export default [
 *   { files: ['**\/*.ts'], languageOptions: { parser: tseslint.parser } },
 *   tenantry.configs.recommended,
 *   // the migration runner connects as the owner role, outside any tenant
 *   { rules: { 'tenantry/no-raw-pool': ['error', { allow: ['src/db/migrate.ts'] }] } },
 * ];
 */
import type { TSESLint } from '@typescript-eslint/utils';
import { jobNeedsTenant } from './rules/job-needs-tenant.js';
import { noRawPool } from './rules/no-raw-pool.js';
import { noSqlConcat } from './rules/no-sql-concat.js';
import { restrictedEscapeHatch } from './rules/restricted-escape-hatch.js';
import { tenantTableHasTenantId } from './rules/tenant-table-has-tenant-id.js';

/** Every rule of the plugin, by name (without the `tenantry/` prefix). */
export const rules = {
  'tenant-table-has-tenant-id': tenantTableHasTenantId,
  'no-raw-pool': noRawPool,
  'no-sql-concat': noSqlConcat,
  'restricted-escape-hatch': restrictedEscapeHatch,
  'job-needs-tenant': jobNeedsTenant,
};

interface TenantryPlugin {
  meta: { name: string; version: string };
  rules: typeof rules;
  configs: { recommended: TSESLint.FlatConfig.Config };
}

/** The ESLint plugin: its rules and `configs.recommended` (every rule as an error). */
export const plugin: TenantryPlugin = {
  meta: { name: 'tenantry', version: '0.1.0' },
  rules,
  configs: { recommended: {} },
};

plugin.configs.recommended = {
  name: 'tenantry/recommended',
  plugins: { tenantry: plugin as unknown as TSESLint.FlatConfig.Plugin },
  rules: Object.fromEntries(Object.keys(rules).map((name) => [`tenantry/${name}`, 'error'])),
};

export {
  checkMigrationSql,
  checkMigrationSqlSync,
  checkMigrationFiles,
  loadSqlParser,
  type MigrationCheckOptions,
  type MigrationFinding,
} from './sql/check-migration-sql.js';
export { sqlMigrationsConfig, type SqlMigrationsConfigOptions } from './sql/sql-migrations-config.js';
export { isGlobalTable } from './global-tables.js';

export default plugin;
