import { Command } from 'commander';
import { formatDoctorReport, runDoctor } from '../policy/doctor.js';
import { withDatabase, type ConnectionOptions } from './connection.js';
import { withClusters } from './migrate-command.js';
import { doctorEverywhere } from '../tiers/migrate/doctor-everywhere.js';
import pg from 'pg';
import { acceptDefinerFunction } from '../policy/doctor/reviewed-functions.js';
import { formatPoolerReport, poolerReport } from './pooler-report.js';
import type { LocalDatabase } from '../embedded/local-database.js';

/** `tenantry doctor`: audits the live database; exits 1 when any error-level finding exists. */
export function doctorCommand(globals: () => ConnectionOptions): Command {
  const doctor = new Command('doctor')
    .description('audit the database for isolation defects; exits non-zero when any is found')
    .option('--app-role <name>', 'application role (default: the one recorded by install)')
    .option('--schema <names...>', 'schemas to audit (default: the ones recorded by install)')
    .option('--citus', 'also check that the schema would distribute on Citus by tenant column (docs/citus.md)')
    .option(
      '--placements',
      "audit every placement in the catalog: each cluster's shared database, each tenant database, each tenant schema",
    )
    .option(
      '--clusters <json>',
      'with --placements: other clusters\' URLs, JSON { "name": "postgres://…" } (default: TENANTRY_CLUSTERS)',
    )
    .option('--json', 'print the report as JSON')
    .option(
      '--app-url <url>',
      "URL the application connects with, for the pooler self-test (default: TENANTRY_APP_DATABASE_URL, or the app role's on this server)",
    )
    .option('--no-pooler', 'skip the pooler self-test')
    .action(
      async (flags: {
        appRole?: string;
        schema?: string[];
        citus?: boolean;
        json?: boolean;
        placements?: boolean;
        clusters?: string;
        appUrl?: string;
        pooler?: boolean;
      }) => {
        if (flags.placements) {
          const audit = await withClusters(globals(), flags, (catalog, clusters) =>
            doctorEverywhere({ catalog, clusters }),
          );
          if (flags.json) console.log(JSON.stringify(audit, null, 2));
          else {
            for (const d of audit.databases) {
              console.log(`== ${d.cluster}/${d.database} (schemas: ${d.schemas.join(', ') || '-'})`);
              console.log(d.report ? formatDoctorReport(d.report) : `could not be audited: ${d.error}`);
            }
          }
          if (!audit.ok) process.exitCode = 1;
          return;
        }
        const { report, pooler } = await withDatabase(globals(), async (db) => ({
          report: await runDoctor(db.adminUrl, {
            appRole: flags.appRole,
            schemas: flags.schema,
            citus: flags.citus === true,
          }),
          pooler:
            flags.pooler === false
              ? undefined
              : await poolerReport(flags.appUrl ?? (await appUrlOf(db, flags.appRole))),
        }));
        if (flags.json) console.log(JSON.stringify(pooler ? { ...report, pooler } : report, null, 2));
        else
          console.log(
            formatDoctorReport(report) +
              (pooler
                ? `
${formatPoolerReport(pooler)}`
                : ''),
          );
        if (!report.ok) process.exitCode = 1;
      },
    );
  doctor.addCommand(acceptFunctionCommand(globals));
  return doctor;
}

/**
 * `tenantry doctor accept-function <signature> --reason <why>`: records that a reviewer accepted
 * a SECURITY DEFINER function the app role can run (DEFINER_NOT_REVIEWED), bound to the hash of
 * its body: doctor reports it again once the body changes.
 */
function acceptFunctionCommand(globals: () => ConnectionOptions): Command {
  return new Command('accept-function')
    .description('record the review of a SECURITY DEFINER function the app role can run (until its body changes)')
    .argument('<signature>', "the function with its argument types, e.g. 'app.sign_in(text, text, text, integer)'")
    .requiredOption('--reason <text>', 'why the function may reach the rows it reaches (stored with the review)')
    .option('--sha256 <hash>', 'the body hash that was reviewed, as doctor printed it (default: the current body)')
    .action(async (signature: string, flags: { reason: string; sha256?: string }) => {
      const reviewed = await withDatabase(globals(), async (db) => {
        const client = new pg.Client({ connectionString: db.adminUrl, application_name: 'tenantry doctor' });
        await client.connect();
        try {
          return await acceptDefinerFunction(client, signature, flags.reason, { bodySha256: flags.sha256 });
        } finally {
          await client.end().catch(() => undefined);
        }
      });
      console.log(`accepted ${reviewed.signature} (body sha256 ${reviewed.bodySha256})`);
    });
}

/**
 * The app role's URL for the pooler self-test: TENANTRY_APP_DATABASE_URL as given, else the
 * default URL with the role of `--app-role` or the one install recorded (`install --app-role`):
 * the default role's name would fail to log in (28000) where another was installed.
 */
async function appUrlOf(db: LocalDatabase, appRole: string | undefined): Promise<string> {
  if (process.env.TENANTRY_APP_DATABASE_URL) return db.appUrl;
  let role = appRole;
  if (role === undefined) {
    const client = new pg.Client({ connectionString: db.adminUrl, application_name: 'tenantry doctor' });
    await client.connect();
    try {
      const { rows } = await client
        .query<{ value: string }>(`select value from tenantry.meta where key = 'app_role'`)
        .catch(() => ({ rows: [] as { value: string }[] }));
      role = rows[0]?.value;
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  if (role === undefined || role === '' || role === db.appRole) return db.appUrl;
  const url = new URL(db.appUrl);
  url.username = encodeURIComponent(role);
  return url.toString();
}
