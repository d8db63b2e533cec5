import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from '../errors/tenantry-error.js';
import type { AcceptedFile } from './accepted-file.js';
import { analyzeStatement, type Analysis } from './analyze-statement.js';
import { writeGuardReport, type GuardReportEntry } from './guard-report.js';
import { isSqlParserLoaded, loadSqlParser } from './sql-parser.js';
import { statementSample } from './statement-sample.js';
import type { TenantTableMap } from './tenant-table-map.js';
import { UnscopedStatementError } from './unscoped-statement-error.js';

/** `off`: nothing. `report`: record, never fail. `enforce`: refuse what is not accepted. */
export type GuardMode = 'off' | 'report' | 'enforce';

/** The part of a logger (pino, console-like) the guard uses. */
export interface GuardLogger {
  warn(details: object, message?: string): void;
}

/** Options of {@link QueryGuard}. */
export interface QueryGuardOptions {
  mode: GuardMode;
  /** Tenant tables and search path ({@link loadTenantTables} or `TenantTableMap.from`). */
  tables: TenantTableMap;
  /** Reviewed exceptions (`tenantry.guard.json`, see `readAcceptedFile`): enforce lets them through. */
  accepted?: AcceptedFile;
  /** Called once per newly seen unscoped fingerprint, with its entry (no values). */
  onReport?: (entry: GuardReportEntry) => void;
  /** Logs one warning per newly seen unscoped fingerprint. */
  logger?: GuardLogger;
  /** Record the first caller outside Tenantry and node_modules for each new fingerprint (default true). */
  callSite?: boolean;
  /** In `report` mode, the fraction (0..1) of statements inspected; default 1. `enforce` checks all. */
  sampleRate?: number;
  /** Random source for sampling (tests). Default Math.random. */
  random?: () => number;
}

/** Counters of a guard's work. */
export interface GuardStats {
  checked: number;
  /** Statements skipped by sampling. */
  skipped: number;
  /** Statements seen unscoped (or setting the context), accepted ones included. */
  unscoped: number;
  /** Statements refused in enforce mode. */
  refused: number;
}

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Checks statements before they reach the database: a statement on a tenant table must be
 * scoped by the tenant column, and must not set the tenant setting. `report` records each
 * distinct unscoped statement once (fingerprint, count, first/last seen, normalized sample,
 * call site) and never throws; `enforce` throws {@link UnscopedStatementError}
 * (`TENANT_SCOPE_MISSING`) unless the fingerprint was accepted.
 *
 * @example
 * await QueryGuard.ready();
 * const guard = new QueryGuard({ mode: 'report', tables: TenantTableMap.from(['public.notes']) });
 * guard.check('select * from notes');     // recorded
 * await guard.writeReport('.tenantry/guard-report.json');
 */
export class QueryGuard {
  readonly mode: GuardMode;
  readonly tables: TenantTableMap;
  readonly #accepted: Set<string>;
  readonly #entries = new Map<string, GuardReportEntry>();
  readonly #options: QueryGuardOptions;
  readonly #sampleRate: number;
  readonly #random: () => number;
  readonly #stats: GuardStats = { checked: 0, skipped: 0, unscoped: 0, refused: 0 };
  #warnedNotReady = false;

  constructor(options: QueryGuardOptions) {
    if (!['off', 'report', 'enforce'].includes(options.mode))
      throw new InvalidArgumentError(`Unknown guard mode ${String(options.mode)}`, 'mode');
    const rate = options.sampleRate ?? 1;
    if (!(rate >= 0 && rate <= 1)) throw new InvalidArgumentError('sampleRate must be between 0 and 1', 'sampleRate');
    this.mode = options.mode;
    this.tables = options.tables;
    this.#options = options;
    this.#sampleRate = rate;
    this.#random = options.random ?? Math.random;
    this.#accepted = new Set((options.accepted?.accepted ?? []).map((a) => a.fingerprint));
  }

  /** Loads the SQL parser; await once before the first check. */
  static ready(): Promise<void> {
    return loadSqlParser();
  }

  /**
   * Checks one statement text. Returns normally when it is scoped (or accepted, or the mode is
   * `off`/`report`); throws {@link UnscopedStatementError} in `enforce` otherwise. Text that does
   * not parse is let through: PostgreSQL will refuse it.
   *
   * `origin`: an Error created where the application issued the statement, when `check` runs
   * later (at submit time, after a pool hand-over) and the current stack no longer shows the
   * caller; its stack is only read for a newly seen fingerprint. See {@link wantsCallSite}.
   */
  check(sql: string, origin?: Error): void {
    if (this.mode === 'off') return;
    if (this.mode === 'report') {
      try {
        this.#inspect(sql, origin);
      } catch (error) {
        // report mode must never break the application
        this.#options.logger?.warn({ err: { message: (error as Error).message } }, 'tenantry guard: check failed');
      }
      return;
    }
    this.#inspect(sql, origin);
  }

  /** Whether call sites are recorded: capture an `origin` Error for {@link check} only then. */
  get wantsCallSite(): boolean {
    return this.mode !== 'off' && this.#options.callSite !== false;
  }

  #inspect(sql: string, origin: Error | undefined): void {
    if (this.mode === 'report' && this.#sampleRate < 1 && this.#random() >= this.#sampleRate) {
      this.#stats.skipped++;
      return;
    }
    if (this.mode === 'report' && !isSqlParserLoaded()) {
      // start loading; statements until it is ready are not inspected
      void loadSqlParser();
      if (!this.#warnedNotReady)
        this.#options.logger?.warn({}, 'tenantry guard: SQL parser not loaded yet (await QueryGuard.ready())');
      this.#warnedNotReady = true;
      this.#stats.skipped++;
      return;
    }
    this.#stats.checked++;
    const analysis = analyzeStatement(sql, this.tables);
    if (analysis.parseError || (!analysis.setsContext && analysis.unscoped.length === 0)) return;
    this.#stats.unscoped++;
    const accepted = !analysis.setsContext && this.#accepted.has(analysis.fingerprint);
    this.#record(sql, analysis, accepted, origin);
    if (this.mode === 'enforce' && !accepted) {
      this.#stats.refused++;
      throw new UnscopedStatementError(analysis.fingerprint, tableNames(analysis), analysis.setsContext);
    }
  }

  #record(sql: string, analysis: Analysis, accepted: boolean, origin: Error | undefined): void {
    const now = new Date().toISOString();
    const known = this.#entries.get(analysis.fingerprint);
    if (known) {
      known.count++;
      known.lastSeen = now;
      return;
    }
    const entry: GuardReportEntry = {
      fingerprint: analysis.fingerprint,
      tables: tableNames(analysis),
      reasons: [
        ...new Set(analysis.unscoped.map((u) => u.reason)),
        ...(analysis.setsContext ? ['sets or resets tenantry.context'] : []),
      ],
      setsContext: analysis.setsContext,
      count: 1,
      firstSeen: now,
      lastSeen: now,
      sample: statementSample(sql),
      accepted,
    };
    if (this.#options.callSite !== false) {
      const site = callSite(origin);
      if (site) entry.callSite = site;
    }
    this.#entries.set(entry.fingerprint, entry);
    this.#options.logger?.warn(
      {
        fingerprint: entry.fingerprint,
        tables: entry.tables,
        reasons: entry.reasons,
        callSite: entry.callSite,
        mode: this.mode,
      },
      'tenantry guard: statement not scoped by tenant',
    );
    this.#options.onReport?.({ ...entry });
  }

  /** Every distinct unscoped statement seen so far (copies), most frequent first. */
  report(): GuardReportEntry[] {
    return [...this.#entries.values()].map((e) => ({ ...e })).sort((a, b) => b.count - a.count);
  }

  /** Counters: statements checked, skipped by sampling, unscoped, refused. */
  stats(): GuardStats {
    return { ...this.#stats };
  }

  /** Writes {@link report} as JSON for `tenantry guard report` (default `.tenantry/guard-report.json`). */
  writeReport(file = '.tenantry/guard-report.json'): Promise<void> {
    return writeGuardReport(file, this.report());
  }
}

function tableNames(analysis: Analysis): string[] {
  return [...new Set(analysis.unscoped.map((u) => u.table))];
}

/** The first stack frame outside Tenantry's own src/dist and node_modules, trimmed. */
function callSite(origin: Error | undefined): string | undefined {
  let stack = origin?.stack;
  if (stack === undefined) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 40;
    stack = new Error().stack ?? '';
    Error.stackTraceLimit = limit;
  }
  for (const raw of stack.split('\n').slice(1)) {
    const line = raw.trim();
    if (!line.startsWith('at ')) continue;
    if (
      line.includes('node_modules') ||
      line.includes('node:') ||
      line.includes(`${PACKAGE_ROOT}${path.sep}src${path.sep}`) ||
      line.includes(`${PACKAGE_ROOT}${path.sep}dist${path.sep}`)
    )
      continue;
    return line.slice(3).replace(`${process.cwd()}${path.sep}`, '');
  }
  return undefined;
}
