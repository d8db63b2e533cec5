import { parse as parseCsv } from 'csv-parse/sync';
import { InvalidArgumentError } from '../errors/tenantry-error.js';

/** PostgreSQL's log formats (`log_destination`). */
export type LogFormat = 'stderr' | 'csvlog' | 'jsonlog';

/** One statement found in a log, with the line where its entry starts. */
export interface LoggedStatement {
  sql: string;
  line: number;
}

// The messages log_statement and log_min_duration_statement write for a statement:
//   statement: …   duration: 1.2 ms  statement: …   execute <unnamed>: …   duration: 0.3 ms  execute S_1: …
// (parse/bind lines of log_min_duration_statement repeat the statement and are skipped)
const STATEMENT_MESSAGE = /^(?:duration: [\d.]+ ms\s+)?(?:statement|execute [^:\n]*): ([\s\S]*)$/;
// A stderr entry: any log_line_prefix, then the severity and two spaces.
const STDERR_ENTRY =
  /^(.*?)\b(DEBUG[1-5]?|INFO|NOTICE|WARNING|ERROR|LOG|FATAL|PANIC|DETAIL|HINT|CONTEXT|STATEMENT|QUERY|LOCATION):  (.*)$/;

/** The statement in one log message, or undefined when the message is not a logged statement. */
export function statementOfMessage(severity: string, message: string): string | undefined {
  if (severity !== 'LOG') return undefined;
  const sql = STATEMENT_MESSAGE.exec(message)?.[1]?.trim();
  return sql ? sql : undefined;
}

/** Picks the format from a file name: `.csv` csvlog, `.json` jsonlog, else stderr. */
export function formatOfFile(file: string): LogFormat {
  if (file.endsWith('.csv')) return 'csvlog';
  if (file.endsWith('.json')) return 'jsonlog';
  return 'stderr';
}

/** Every statement logged in `text` (one log file's content), in order. */
export function statementsOfLog(text: string, format: LogFormat): LoggedStatement[] {
  switch (format) {
    case 'stderr':
      return stderrStatements(text);
    case 'csvlog':
      return csvStatements(text);
    case 'jsonlog':
      return jsonStatements(text);
    default:
      throw new InvalidArgumentError(`Unknown log format ${String(format)} (stderr, csvlog or jsonlog)`, 'format');
  }
}

// PostgreSQL writes the lines after the first of a multi-line message with a leading tab.
function stderrStatements(text: string): LoggedStatement[] {
  const out: LoggedStatement[] = [];
  let entry: { severity: string; message: string; line: number } | undefined;
  const flush = () => {
    const sql = entry && statementOfMessage(entry.severity, entry.message);
    if (sql) out.push({ sql, line: entry!.line });
  };
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    const m = line.startsWith('\t') ? null : STDERR_ENTRY.exec(line);
    if (m) {
      flush();
      entry = { severity: m[2]!, message: m[3]!, line: i + 1 };
    } else if (entry) {
      entry.message += `\n${line.startsWith('\t') ? line.slice(1) : line}`;
    }
  });
  flush();
  return out;
}

const CSV_SEVERITY = 11;
const CSV_MESSAGE = 13;

function csvStatements(text: string): LoggedStatement[] {
  const out: LoggedStatement[] = [];
  for (const { fields, line } of csvRecords(text)) {
    const sql = statementOfMessage(fields[CSV_SEVERITY] ?? '', fields[CSV_MESSAGE] ?? '');
    if (sql) out.push({ sql, line });
  }
  return out;
}

/**
 * RFC 4180 records (csv-parse): quoted fields may hold commas, `""` and newlines. Each record comes
 * with the line it starts on; a torn last record (the server still writing it) is left out.
 */
export function csvRecords(text: string): Array<{ fields: string[]; line: number }> {
  const rows = parseCsv(text, {
    relax_column_count: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    record_delimiter: ['\r\n', '\n', '\r'],
    info: true,
  }) as unknown as Array<{ record: string[]; info: { lines: number } }>;
  // info.lines is the line a record ends on: back up over the line breaks inside its quoted fields
  return rows.map(({ record, info }) => ({
    fields: record,
    line: info.lines - record.reduce((n, field) => n + (field.match(/\n/g)?.length ?? 0), 0),
  }));
}

function jsonStatements(text: string): LoggedStatement[] {
  const out: LoggedStatement[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    if (!raw.trim()) return;
    let entry: { error_severity?: unknown; message?: unknown };
    try {
      entry = JSON.parse(raw);
    } catch {
      return; // a truncated last line while the server writes
    }
    if (typeof entry.message !== 'string' || typeof entry.error_severity !== 'string') return;
    const sql = statementOfMessage(entry.error_severity, entry.message);
    if (sql) out.push({ sql, line: i + 1 });
  });
  return out;
}
