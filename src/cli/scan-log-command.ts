import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { formatOfFile, type LogFormat } from '../guard/postgres-log.js';
import { scanLog, type ScanResult } from '../guard/scan-log.js';
import { loadSqlParser } from '../guard/sql-parser.js';
import { loadTenantTables, TenantTableMap } from '../guard/tenant-table-map.js';
import { InvalidArgumentError } from '../errors/tenantry-error.js';
import { commandPool, withDatabase, type ConnectionOptions } from './connection.js';

/** Text form of a scan: one block per distinct unscoped statement. */
export function formatScanResult(result: ScanResult, source: string): string {
  const lines = [
    `${source}: ${result.statements} statement${result.statements === 1 ? '' : 's'} scanned${result.unparsed ? ` (${result.unparsed} not parsed)` : ''}, ` +
      `${result.findings.length} unscoped on tenant tables`,
  ];
  for (const f of result.findings) {
    lines.push('');
    lines.push(`${f.fingerprint}  ×${f.count}  ${f.tables.join(', ') || '(no table)'}  (first at line ${f.firstLine})`);
    lines.push(`    ${f.reasons.join('; ')}`);
    lines.push(`    ${f.sample}`);
  }
  return lines.join('\n');
}

/**
 * `tenantry scan-log <file>`: reads a PostgreSQL log (stderr, csvlog or jsonlog, with
 * log_statement or log_min_duration_statement on), reports statements on tenant tables without
 * a tenant scope grouped by fingerprint; exits 1 when any is found. Tenant tables come from
 * `--tables` or from the registry of the database (`--database-url`, DATABASE_URL or embedded).
 */
export function scanLogCommand(globals: () => ConnectionOptions): Command {
  return new Command('scan-log')
    .description('report unscoped statements on tenant tables in a PostgreSQL log; exits 1 when any is found')
    .argument('<file>', 'PostgreSQL log file')
    .addOption(
      new Option('--format <format>', 'log format (default: .csv csvlog, .json jsonlog, else stderr)').choices([
        'stderr',
        'csvlog',
        'jsonlog',
      ]),
    )
    .option(
      '--tables <list>',
      'tenant tables, comma-separated [schema.]table[:column] (column default tenant_id); default: read the registry',
    )
    .option('--search-path <list>', 'schemas for unqualified names with --tables', 'public')
    .option('--json', 'print the result as JSON')
    .action(
      async (file: string, flags: { format?: LogFormat; tables?: string; searchPath: string; json?: boolean }) => {
        const text = await readLog(file);
        await loadSqlParser();
        const tables = flags.tables ? tablesOf(flags.tables, flags.searchPath) : await registryTables(globals());
        const result = scanLog(text, flags.format ?? formatOfFile(file), tables);
        console.log(flags.json ? JSON.stringify(result, null, 2) : formatScanResult(result, file));
        if (result.findings.length > 0) process.exitCode = 1;
      },
    );
}

/** The log's text; a file that cannot be read is a plain usage error (exit 1, no stack). */
async function readLog(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a directory'
            : (code ?? 'unreadable');
    throw new InvalidArgumentError(`Cannot read the log file ${file}: ${why}`, 'file');
  }
}

function tablesOf(list: string, searchPath: string): TenantTableMap {
  const entries = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((item) => {
      const [table, column] = item.split(':');
      return { table: table!, column: column || undefined };
    });
  return TenantTableMap.from(entries, {
    searchPath: searchPath
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  });
}

async function registryTables(options: ConnectionOptions): Promise<TenantTableMap> {
  return withDatabase(options, async (db) => {
    const pool = commandPool({ connectionString: db.adminUrl, max: 1 });
    try {
      return await loadTenantTables(pool);
    } finally {
      await pool.end();
    }
  });
}
