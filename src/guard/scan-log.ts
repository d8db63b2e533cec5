import { analyzeStatement } from './analyze-statement.js';
import { statementsOfLog, type LogFormat, type LoggedStatement } from './postgres-log.js';
import { statementSample } from './statement-sample.js';
import type { TenantTableMap } from './tenant-table-map.js';

/** One distinct unscoped statement found in a log. */
export interface ScanFinding {
  fingerprint: string;
  count: number;
  tables: string[];
  reasons: string[];
  setsContext: boolean;
  /** Normalized text (constants replaced by `$n`). */
  sample: string;
  /** Line of the first occurrence in the log. */
  firstLine: number;
}

/** What {@link scanStatements} found. */
export interface ScanResult {
  statements: number;
  /** Statements libpg-query could not parse (truncated lines, non-SQL). */
  unparsed: number;
  /** Most frequent first. */
  findings: ScanFinding[];
}

/** Analyses logged statements and groups the unscoped ones (and context setters) by fingerprint. */
export function scanStatements(statements: LoggedStatement[], tables: TenantTableMap): ScanResult {
  const byFingerprint = new Map<string, ScanFinding>();
  let unparsed = 0;
  for (const { sql, line } of statements) {
    const a = analyzeStatement(sql, tables);
    if (a.parseError) {
      unparsed++;
      continue;
    }
    if (!a.setsContext && a.unscoped.length === 0) continue;
    const known = byFingerprint.get(a.fingerprint);
    if (known) {
      known.count++;
      continue;
    }
    byFingerprint.set(a.fingerprint, {
      fingerprint: a.fingerprint,
      count: 1,
      tables: [...new Set(a.unscoped.map((u) => u.table))],
      reasons: [
        ...new Set(a.unscoped.map((u) => u.reason)),
        ...(a.setsContext ? ['sets or resets tenantry.context'] : []),
      ],
      setsContext: a.setsContext,
      sample: statementSample(sql),
      firstLine: line,
    });
  }
  const findings = [...byFingerprint.values()].sort((x, y) => y.count - x.count || x.firstLine - y.firstLine);
  return { statements: statements.length, unparsed, findings };
}

/** Reads statements from a PostgreSQL log's text and scans them. */
export function scanLog(text: string, format: LogFormat, tables: TenantTableMap): ScanResult {
  return scanStatements(statementsOfLog(text, format), tables);
}
