import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import type { InstallOptions } from '../policy/install-sql.js';
import { install, planInstall, type InstallReport } from '../policy/installer.js';
import { installEverywhere, type InstallEverywhereReport } from '../tiers/install-everywhere.js';
import { withDatabase, type ConnectionOptions } from './connection.js';
import { withClusters } from './migrate-command.js';

interface InstallFlags {
  dryRun?: boolean;
  appRole?: string;
  ownerRole?: string;
  supportRole?: string;
  routerRole?: string;
  schema?: string[];
  unsigned?: boolean;
  eventTrigger: boolean;
  everywhere?: boolean;
  clusters?: string;
  concurrency: number;
  json?: boolean;
}

/** Options `--everywhere` takes from the home database instead (`tenantry.meta`). */
const RECORDED_OPTIONS = {
  appRole: '--app-role',
  ownerRole: '--owner-role',
  supportRole: '--support-role',
  routerRole: '--router-role',
  schema: '--schema',
  unsigned: '--unsigned',
} as const;

const positive = (raw: string): number => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new CommanderArgumentError('a whole number from 1 to 64');
  return n;
};

/** One line per database, then a summary. */
function formatInstallReport(report: InstallEverywhereReport): string {
  const lines = report.databases.map(
    (d) =>
      `${d.ok ? 'ok    ' : 'FAILED'} ${d.cluster}/${d.database} (${d.kind})${d.ok ? (d.applied.length > 0 ? `: applied ${d.applied.join(', ')}` : ': current') : `: ${(d.error ?? '').replace(/\s*\n\s*/g, ' ')}`}`,
  );
  const failed = report.databases.filter((d) => !d.ok).length;
  lines.push(
    `tenantry install --everywhere: ${report.databases.length} database${report.databases.length === 1 ? '' : 's'}, ${report.databases.length - failed} installed, ${failed} failed ` +
      `(${report.roles.contextMode} context, app role ${report.roles.appRole}, owner role ${report.roles.ownerRole}).`,
  );
  return lines.join('\n');
}

/** What one install did, for people: migrations applied, and every credential it kept. */
export function formatSingleInstall(report: InstallReport): string[] {
  const lines = [
    report.applied.length > 0
      ? `applied ${report.applied.length} library migration${report.applied.length === 1 ? '' : 's'}${report.baselined ? ' (an install from before the versioned schema, now versioned)' : ''}: ${report.applied.join(', ')}`
      : 'library schema current: no pending migration',
  ];
  for (const p of report.passwords)
    lines.push(
      p.action === 'set'
        ? `password of ${p.role} set (the role had none)`
        : `password of ${p.role} kept (install never changes an existing one: tenantry rotate password --role …)`,
    );
  if (report.contextSecret === 'kept')
    lines.push(
      'WARNING: the context secret given differs from the key installed here, which was kept: an app signing with the given secret would fail with TR001. ' +
        "Use the deployment's TENANTRY_CONTEXT_SECRET, or change it with tenantry rotate context-secret.",
    );
  return lines;
}

/** `tenantry install`: roles, catalog, registry, deny-by-default, private schema. Idempotent. */
export function installCommand(globals: () => ConnectionOptions): Command {
  return new Command('install')
    .description('install the isolation layer into the database (idempotent)')
    .option('--dry-run', 'print what is pending (SQL) instead of running it (passwords masked, secrets never printed)')
    .option('--app-role <name>', 'role the application connects as', process.env.TENANTRY_APP_ROLE ?? 'tenantry_app')
    .option(
      '--owner-role <name>',
      'role that owns tables and runs DDL',
      process.env.TENANTRY_OWNER_ROLE ?? 'tenantry_owner',
    )
    .option(
      '--support-role <name>',
      'read-only role for audited staff reads across tenants (not created when omitted)',
      process.env.TENANTRY_SUPPORT_ROLE,
    )
    .option(
      '--router-role <name>',
      "role the data plane's tenant router connects as: it reads where tenants live, nothing else",
      process.env.TENANTRY_ROUTER_ROLE ?? 'tenantry_router',
    )
    .option('--schema <names...>', 'schemas holding application tables', ['public'])
    .option(
      '--unsigned',
      'unsigned tenant context: faster, but injected SQL can choose its tenant (see docs/security.md)',
    )
    .option('--no-event-trigger', 'skip the event trigger that locks new tables (it needs a superuser)')
    .option(
      '--everywhere',
      "install (again) in every database the catalog knows: this one (home), each cluster's shared database, each tenant database; with the roles and context mode recorded here",
    )
    .option(
      '--clusters <json>',
      'with --everywhere: other clusters\' superuser URLs, JSON { "name": "postgres://…" } or { "name": { "adminUrl": "…" } } (default: TENANTRY_CLUSTERS)',
    )
    .option('--concurrency <n>', 'with --everywhere: databases installed at once', positive, 4)
    .option('--json', 'with --everywhere: print the report as JSON')
    .action(async (flags: InstallFlags, cmd: Command) => {
      if (flags.everywhere) {
        const given = Object.entries(RECORDED_OPTIONS)
          .filter(([key]) => cmd.getOptionValueSource(key) === 'cli')
          .map(([, flag]) => flag);
        if (given.length > 0)
          cmd.error(
            `--everywhere takes the roles and context mode recorded in the home database, and each database's own data schemas: leave out ${given.join(', ')}`,
          );
        if (flags.dryRun) cmd.error('--dry-run prints what one database has pending: leave out --everywhere');
        const report = await withClusters(
          globals(),
          flags,
          async (catalog, clusters, db) => {
            const { rows } = await catalog.query<{ key: string; value: string }>(
              `select key, value from tenantry.meta where key in ('support_role', 'router_role')`,
            );
            const meta = new Map(rows.map((r) => [r.key, r.value]));
            const supportRole = meta.get('support_role') || undefined;
            const routerRole = meta.get('router_role') || 'tenantry_router';
            return installEverywhere({
              catalog,
              clusters,
              appPassword: db.appPassword,
              ownerPassword: db.ownerPassword,
              supportPassword:
                supportRole !== undefined && supportRole === db.supportRole ? db.supportPassword : undefined,
              routerPassword: routerRole === db.routerRole ? db.routerPassword : undefined,
              contextSecret: db.contextSecret,
              eventTrigger: flags.eventTrigger,
              concurrency: flags.concurrency,
            });
          },
          'admin',
        );
        console.log(flags.json ? JSON.stringify(report, null, 2) : formatInstallReport(report));
        if (!report.ok) process.exitCode = 1;
        return;
      }
      const options: InstallOptions = {
        appRole: flags.appRole,
        ownerRole: flags.ownerRole,
        supportRole: flags.supportRole,
        routerRole: flags.routerRole,
        dataSchemas: flags.schema,
        contextMode: flags.unsigned ? 'unsigned' : 'signed',
        eventTrigger: flags.eventTrigger,
      };
      if (flags.dryRun) {
        await withDatabase(globals(), async (db) => {
          const plan = await planInstall(db.adminUrl, {
            ...options,
            appPassword: db.appPassword,
            ownerPassword: db.ownerPassword,
            ...(options.supportRole ? { supportPassword: db.supportPassword } : {}),
            routerPassword: db.routerPassword,
          });
          process.stdout.write(
            `-- pending library migrations: ${plan.pending.length === 0 ? 'none' : plan.pending.join(', ')}\n${plan.sql}` +
              `-- then, in signed mode on a first install: the context secret's HMAC pads are stored in tenantry_private.context_key (not printed)\n`,
          );
        });
        return;
      }
      await withDatabase(globals(), async (db) => {
        const report = await install(db.adminUrl, {
          ...options,
          appPassword: db.appPassword,
          ownerPassword: db.ownerPassword,
          ...(options.supportRole
            ? { supportPassword: options.supportRole === db.supportRole ? db.supportPassword : undefined }
            : {}),
          routerPassword: options.routerRole === db.routerRole ? db.routerPassword : undefined,
          contextSecret: db.contextSecret,
        });
        console.log(
          `tenantry installed (${options.contextMode} context) for app role ${options.appRole}, owner role ${options.ownerRole}`,
        );
        for (const line of formatSingleInstall(report))
          (line.startsWith('WARNING') ? console.error : console.log)(line);
      });
    });
}
