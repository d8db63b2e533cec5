import { Command } from 'commander';
import {
  acceptFingerprint,
  DEFAULT_ACCEPTED_FILE,
  readAcceptedFile,
  writeAcceptedFile,
} from '../guard/accepted-file.js';
import {
  DEFAULT_REPORT_FILE,
  mergeGuardEntries,
  readGuardReport,
  type GuardReportEntry,
} from '../guard/guard-report.js';
import { ConfigurationError } from '../errors/tenantry-error.js';
import type { ConnectionOptions } from './connection.js';

/** Text form of the guard's report entries, accepted ones marked. */
export function formatGuardReport(entries: GuardReportEntry[], source: string): string {
  if (entries.length === 0) return `no unscoped statements in ${source}`;
  const open = entries.filter((e) => !e.accepted).length;
  const lines = [
    `${entries.length} unscoped statement${entries.length === 1 ? '' : 's'} in ${source} (${open} to review, ${entries.length - open} accepted)`,
  ];
  for (const e of entries) {
    lines.push('');
    lines.push(
      `${e.accepted ? 'accepted' : 'REVIEW  '}  ${e.fingerprint}  ×${e.count}  ${e.tables.join(', ') || '(no table)'}`,
    );
    lines.push(`    ${e.reasons.join('; ')}`);
    lines.push(`    first ${e.firstSeen}  last ${e.lastSeen}${e.callSite ? `  at ${e.callSite}` : ''}`);
    lines.push(`    ${e.sample}`);
  }
  if (open > 0) lines.push('', 'Fix each statement, or: tenantry guard accept <fingerprint> --reason "…"');
  return lines.join('\n');
}

/**
 * `tenantry guard report` lists the distinct unscoped statements the guard recorded;
 * `tenantry guard accept <fingerprint> --reason …` writes a reviewed exception to the
 * committed accepted file. Neither needs a database.
 */
export function guardCommand(_globals: () => ConnectionOptions): Command {
  const guard = new Command('guard').description('review what the query guard recorded: report, accept');

  guard
    .command('report')
    .description('list the distinct unscoped statements recorded in report mode')
    .option('--file <paths...>', 'reports written by QueryGuard.writeReport() (several are merged)', [
      DEFAULT_REPORT_FILE,
    ])
    .option('--accepted <path>', 'accepted exceptions file', DEFAULT_ACCEPTED_FILE)
    .option('--json', 'print the entries as JSON')
    .action(async (flags: { file: string[]; accepted: string; json?: boolean }) => {
      const reports = await Promise.all(flags.file.map((f) => readGuardReport(f)));
      const accepted = new Set((await readAcceptedFile(flags.accepted)).accepted.map((a) => a.fingerprint));
      // acceptance is what the file says now, not what it said when the report was written
      const entries = mergeGuardEntries(reports.map((r) => r.entries)).map((e) => ({
        ...e,
        accepted: !e.setsContext && accepted.has(e.fingerprint),
      }));
      console.log(flags.json ? JSON.stringify(entries, null, 2) : formatGuardReport(entries, flags.file.join(', ')));
    });

  guard
    .command('accept')
    .description('record a reviewed exception: enforce mode lets this statement fingerprint through')
    .argument('<fingerprint>', 'fingerprint from tenantry guard report or scan-log')
    .requiredOption('--reason <text>', 'why this unscoped statement is safe (kept in the file for review)')
    .option('--file <path>', 'accepted exceptions file (commit it)', DEFAULT_ACCEPTED_FILE)
    .option('--report <path>', 'report to take the sample statement from', DEFAULT_REPORT_FILE)
    .action(async (fingerprint: string, flags: { reason: string; file: string; report: string }) => {
      let entry: GuardReportEntry | undefined;
      try {
        entry = (await readGuardReport(flags.report)).entries.find((e) => e.fingerprint === fingerprint);
      } catch (error) {
        if (!(error instanceof ConfigurationError)) throw error;
      }
      if (entry?.setsContext)
        throw new ConfigurationError(
          'A statement that sets the tenant setting cannot be accepted: enforce always refuses it',
        );
      const current = await readAcceptedFile(flags.file);
      const { file, added } = acceptFingerprint(current, { fingerprint, reason: flags.reason, sample: entry?.sample });
      if (!added) {
        console.log(`${fingerprint} is already accepted in ${flags.file}`);
        return;
      }
      await writeAcceptedFile(flags.file, file);
      console.log(`accepted ${fingerprint} in ${flags.file}${entry ? '' : ' (not in the report: no sample recorded)'}`);
    });

  return guard;
}
