import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { Command } from 'commander';
import { stringify } from 'csv-stringify/sync';
import { TenantCatalog } from '../catalog/tenant-catalog.js';
import { InvalidArgumentError } from '../errors/tenantry-error.js';
import {
  exportUsageEverywhere,
  usageReportEverywhere,
  type UsageEverywhereOptions,
} from '../metering/usage-everywhere.js';
import type { UsageGranularity } from '../metering/usage-report.js';
import { Placements } from '../tiers/placements.js';
import { commandPool, withDatabase, type ConnectionOptions } from './connection.js';
import { namedUrls } from './move-command.js';
import { textTable } from './text-table.js';

/**
 * A `--from` / `--to` value: an ISO date (`2026-12-01`, midnight UTC) or date-time. A date that is
 * not on the calendar (`2026-02-30`) is refused, not rolled over to the next month.
 */
export function parseUsageTime(value: string, option: string): Date {
  const at = /^\d{4}-\d{2}-\d{2}$/.test(value) ? new Date(`${value}T00:00:00Z`) : new Date(value);
  const ymd = /^(\d{4})-(\d{2})-(\d{2})/.exec(value);
  if (!ymd || Number.isNaN(at.getTime()))
    throw new InvalidArgumentError(
      `--${option} takes an ISO date or date-time (2026-12-01, 2026-12-01T10:00:00Z)`,
      option,
    );
  if (!isCalendarDate(Number(ymd[1]), Number(ymd[2]), Number(ymd[3])))
    throw new InvalidArgumentError(`--${option}: ${ymd[0]} is not a date on the calendar`, option);
  return at;
}

function isCalendarDate(year: number, month: number, day: number): boolean {
  const d = new Date(Date.UTC(year, month - 1, day));
  return d.getUTCFullYear() === year && d.getUTCMonth() === month - 1 && d.getUTCDate() === day;
}

/** Days a range may cover, as the API's: 92 per hour, 366 per day, in total, or exported. */
const MAX_DAYS = { hour: 92, day: 366, total: 366, export: 366 } as const;

/** Refuses `[from, to)` when empty or longer than the API allows for `kind`. */
export function checkUsageRange(from: Date, to: Date, kind: keyof typeof MAX_DAYS): void {
  if (from.getTime() >= to.getTime()) throw new InvalidArgumentError('--from must be before --to', 'from');
  const max = MAX_DAYS[kind];
  if (to.getTime() - from.getTime() > max * 86_400_000)
    throw new InvalidArgumentError(
      `the range covers at most ${max} days${kind === 'export' ? '' : ` with --granularity ${kind}`}: split it`,
      'to',
    );
}

// RFC 3986 URI-reference characters (a CloudEvents `source`): no spaces, no controls, valid escapes
const URI_REFERENCE = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?#[\]]|%[0-9A-Fa-f]{2})+$/;

/** The start of the current month, UTC: the default `--from` (a billing period). */
function monthStart(now = new Date()): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
}

/**
 * Runs `fn` with the owner role's view of every database holding usage (as the other tenants
 * commands do): the catalog's database, and each placement's database through `Placements`
 * (the home cluster's owner URL, and `--cluster-url name=url` for the others).
 */
async function withUsageDatabases<T>(
  globals: ConnectionOptions,
  clusterUrls: string[] | undefined,
  fn: (catalog: ReturnType<typeof commandPool>, everywhere: UsageEverywhereOptions) => Promise<T>,
) {
  const others = namedUrls(clusterUrls ?? [], 'cluster-url');
  return withDatabase({ ...globals, existing: true }, async (db) => {
    const url =
      process.env.TENANTRY_OWNER_DATABASE_URL ??
      (globals.databaseUrl || process.env.DATABASE_URL ? db.adminUrl : db.ownerUrl);
    const pool = commandPool({ connectionString: url, max: 2 });
    const placements = new Placements({ catalog: pool, owners: { ...others, home: url } });
    try {
      return await fn(pool, {
        catalog: pool,
        ownerPool: (where) => placements.ownerPool({ tier: where.database ? 'database' : 'shared', ...where }),
        homeCluster: placements.homeCluster,
      });
    } finally {
      await placements.end();
      await pool.end();
    }
  });
}

const collect = (v: string, all: string[] = []) => [...all, v];

interface UsageOptions {
  from?: string;
  to?: string;
  granularity: string;
  byTable?: boolean;
  csv?: boolean;
  json?: boolean;
  clusterUrl?: string[];
}

/** `tenantry tenants usage <tenant> --from … --to … [--granularity day] [--by-table] [--csv | --json]`. */
export function usageCommand(globals: () => ConnectionOptions): Command {
  return new Command('usage')
    .argument('<tenant>', 'tenant id or slug (any status)')
    .description("a tenant's metered usage (requests, database time, rows written, storage, job runs) in [from, to)")
    .option('--from <time>', 'start, inclusive (ISO date or date-time; default: the first of this month, UTC)')
    .option('--to <time>', 'end, exclusive (default: now)')
    .option('--granularity <g>', 'hour | day | total', 'total')
    .option('--by-table', 'one line per table (rows written, storage) or queue (job runs)')
    .option('--csv', 'print CSV (window_start,meter,subject,quantity)')
    .option('--json', 'print JSON')
    .option(
      '--cluster-url <name=url>',
      'owner URL of another cluster where the tenant lives or lived (repeatable)',
      collect,
    )
    .action(async (ref: string, opts: UsageOptions) => {
      const from = opts.from === undefined ? monthStart() : parseUsageTime(opts.from, 'from');
      const to = opts.to === undefined ? new Date() : parseUsageTime(opts.to, 'to');
      if (!['hour', 'day', 'total'].includes(opts.granularity))
        throw new InvalidArgumentError('--granularity is hour, day or total', 'granularity');
      checkUsageRange(from, to, opts.granularity as UsageGranularity);
      // every database the tenant lives or lived in (its tier's, and a move's source), merged
      const rows = await withUsageDatabases(globals(), opts.clusterUrl, async (pool, everywhere) => {
        const tenant = await new TenantCatalog(pool).get(ref);
        return usageReportEverywhere(everywhere, {
          tenantId: tenant.id,
          from,
          to,
          granularity: opts.granularity as UsageGranularity,
          bySubject: !!opts.byTable,
        });
      });
      if (opts.json) {
        console.log(JSON.stringify(rows, null, 2));
        return;
      }
      const lines = rows.map((r) => [r.windowStart.toISOString(), r.meter, r.subject ?? '', String(r.quantity)]);
      if (opts.csv) {
        process.stdout.write(
          stringify(lines, { header: true, columns: ['window_start', 'meter', 'subject', 'quantity'] }),
        );
        return;
      }
      if (lines.length === 0) {
        console.log('(no usage in this range)');
        return;
      }
      console.log(textTable(['WINDOW', 'METER', 'SUBJECT', 'QUANTITY'], lines));
    });
}

/** `tenantry tenants usage-export --from … --to … [--tenant t] [--source s] [--out file]`: CloudEvents as NDJSON. */
export function usageExportCommand(globals: () => ConnectionOptions): Command {
  return new Command('usage-export')
    .description('every usage record of [from, to) as CloudEvents, one JSON object a line (OpenMeter, Lago, Stripe)')
    .requiredOption('--from <time>', 'start, inclusive (ISO date or date-time)')
    .requiredOption('--to <time>', 'end, exclusive')
    .option('--tenant <tenant>', 'one tenant (id or slug) only')
    .option('--source <source>', 'the CloudEvents source (name the deployment)', 'tenantry')
    .option('--out <file>', 'write to this file (default: standard output)')
    .option('--cluster-url <name=url>', 'owner URL of another cluster holding tenants (repeatable)', collect)
    .action(
      async (opts: {
        from: string;
        to: string;
        tenant?: string;
        source: string;
        out?: string;
        clusterUrl?: string[];
      }) => {
        const from = parseUsageTime(opts.from, 'from');
        const to = parseUsageTime(opts.to, 'to');
        checkUsageRange(from, to, 'export');
        if (opts.source.length > 1000 || !URI_REFERENCE.test(opts.source))
          throw new InvalidArgumentError(
            '--source must be a URI-reference (CloudEvents): e.g. tenantry, /billing, https://app.example/usage',
            'source',
          );
        const out = opts.out ? createWriteStream(opts.out, { mode: 0o600 }) : process.stdout;
        let count = 0;
        await withUsageDatabases(globals(), opts.clusterUrl, async (pool, everywhere) => {
          const tenantId = opts.tenant === undefined ? undefined : (await new TenantCatalog(pool).get(opts.tenant)).id;
          for await (const event of exportUsageEverywhere(everywhere, { from, to, tenantId, source: opts.source })) {
            count++;
            if (!out.write(`${JSON.stringify(event)}\n`)) await once(out, 'drain');
          }
        });
        if (opts.out) {
          out.end();
          await once(out, 'finish');
          console.error(`${count} usage events written to ${opts.out}`);
        }
      },
    );
}
