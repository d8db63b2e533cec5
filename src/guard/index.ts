export {
  analyzeStatement,
  analyzeUncached,
  CONTEXT_SETTING,
  DEFAULT_CACHE_SIZE,
  type Analysis,
  type UnscopedReference,
} from './analyze-statement.js';
export { loadSqlParser, isSqlParserLoaded } from './sql-parser.js';
export { TenantTableMap, loadTenantTables, type TenantTable, type Queryable } from './tenant-table-map.js';
export {
  QueryGuard,
  type GuardMode,
  type GuardLogger,
  type GuardStats,
  type QueryGuardOptions,
} from './query-guard.js';
export { UnscopedStatementError } from './unscoped-statement-error.js';
export {
  acceptFingerprint,
  readAcceptedFile,
  writeAcceptedFile,
  parseAcceptedFile,
  isFingerprint,
  DEFAULT_ACCEPTED_FILE,
  type AcceptedException,
  type AcceptedFile,
} from './accepted-file.js';
export {
  readGuardReport,
  writeGuardReport,
  mergeGuardEntries,
  DEFAULT_REPORT_FILE,
  type GuardReport,
  type GuardReportEntry,
} from './guard-report.js';
export {
  statementsOfLog,
  statementOfMessage,
  formatOfFile,
  csvRecords,
  type LogFormat,
  type LoggedStatement,
} from './postgres-log.js';
export { scanLog, scanStatements, type ScanFinding, type ScanResult } from './scan-log.js';
export { statementSample } from './statement-sample.js';
export { queryText } from './query-text.js';
