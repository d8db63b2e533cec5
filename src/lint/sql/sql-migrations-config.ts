import type { TSESLint } from '@typescript-eslint/utils';
import {
  checkMigrationSqlSync,
  loadSqlParser,
  type MigrationCheckOptions,
  type MigrationFinding,
} from './check-migration-sql.js';

/** Options of {@link sqlMigrationsConfig}. */
export interface SqlMigrationsConfigOptions extends MigrationCheckOptions {
  /** Globs of the migration files, e.g. `['migrations/*.sql']`. */
  files: string[];
}

const RULE_ID = 'tenantry/tenant-table-has-tenant-id';

/**
 * A flat-config object that makes ESLint check SQL migrations with {@link checkMigrationSql}:
 * `npx eslint .` then reports `CREATE TABLE` without the tenant column next to the TypeScript
 * findings. Async because the PostgreSQL parser (WASM) must load before ESLint's synchronous
 * processor runs; `await` it at the top of `eslint.config.js`.
 *
 * @example
 * export default [tenantry.configs.recommended, await sqlMigrationsConfig({ files: ['migrations/*.sql'], globalTables: ['plans'] })];
 */
export async function sqlMigrationsConfig(options: SqlMigrationsConfigOptions): Promise<TSESLint.FlatConfig.Config> {
  await loadSqlParser();
  const { files, ...checkOptions } = options;
  // preprocess and postprocess of one file run back to back; findings wait here in between
  const pending = new Map<string, MigrationFinding[]>();
  const processor: TSESLint.FlatConfig.Processor = {
    meta: { name: 'tenantry/sql-migrations', version: '0.1.0' },
    preprocess(text: string, filename: string) {
      pending.set(filename, checkMigrationSqlSync(text, checkOptions));
      return []; // no JavaScript in a .sql file: nothing for ESLint's parser
    },
    postprocess(_messages: unknown, filename: string) {
      const findings = pending.get(filename) ?? [];
      pending.delete(filename);
      return findings.map((f) => ({
        ruleId: f.code === 'SQL_PARSE_ERROR' ? null : RULE_ID,
        fatal: f.code === 'SQL_PARSE_ERROR',
        severity: 2,
        message: f.message,
        line: f.line,
        column: f.column,
      }));
    },
    supportsAutofix: false,
  } as unknown as TSESLint.FlatConfig.Processor;
  return { name: 'tenantry/sql-migrations', files, processor };
}
