import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ConfigurationError } from '../errors/tenantry-error.js';

/** Where the guard's report is written by default (not committed: it is runtime data). */
export const DEFAULT_REPORT_FILE = '.tenantry/guard-report.json';

const entrySchema = z.object({
  fingerprint: z.string(),
  tables: z.array(z.string()),
  reasons: z.array(z.string()),
  setsContext: z.boolean(),
  count: z.number().int().nonnegative(),
  firstSeen: z.string(),
  lastSeen: z.string(),
  sample: z.string(),
  callSite: z.string().optional(),
  accepted: z.boolean(),
});
const reportSchema = z.object({ version: z.literal(1), generatedAt: z.string(), entries: z.array(entrySchema) });

/**
 * One distinct unscoped statement seen by the guard. `sample` is the statement normalized by
 * libpg-query (constants replaced by `$n`): text, never values.
 */
export type GuardReportEntry = z.infer<typeof entrySchema>;
/** The JSON file `QueryGuard.writeReport` writes and `tenantry guard report` reads. */
export type GuardReport = z.infer<typeof reportSchema>;

/** Writes a report file (creating its folder). */
export async function writeGuardReport(file: string, entries: GuardReportEntry[], now = new Date()): Promise<void> {
  const report: GuardReport = { version: 1, generatedAt: now.toISOString(), entries };
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
}

/** Reads and validates a report file. */
export async function readGuardReport(file = DEFAULT_REPORT_FILE): Promise<GuardReport> {
  let data: unknown;
  try {
    data = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new ConfigurationError(
        `No guard report at ${file}: run the app with the guard in report mode and call guard.writeReport()`,
      );
    throw new ConfigurationError(`${file} is not valid JSON`, error);
  }
  const result = reportSchema.safeParse(data);
  if (!result.success) throw new ConfigurationError(`${file}: not a guard report (${result.error.issues[0]!.message})`);
  return result.data;
}

/**
 * Merges reports (one per app instance, or per day) by fingerprint: counts add up, first and
 * last seen widen, the earliest sample and call site are kept.
 */
export function mergeGuardEntries(lists: GuardReportEntry[][]): GuardReportEntry[] {
  const merged = new Map<string, GuardReportEntry>();
  for (const entry of lists.flat()) {
    const known = merged.get(entry.fingerprint);
    if (!known) {
      merged.set(entry.fingerprint, { ...entry });
      continue;
    }
    known.count += entry.count;
    if (entry.firstSeen < known.firstSeen)
      Object.assign(known, {
        firstSeen: entry.firstSeen,
        sample: entry.sample,
        callSite: entry.callSite ?? known.callSite,
      });
    if (entry.lastSeen > known.lastSeen) known.lastSeen = entry.lastSeen;
    known.accepted = known.accepted || entry.accepted;
  }
  return [...merged.values()].sort((a, b) => b.count - a.count);
}
