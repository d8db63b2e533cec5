import { existsSync } from 'node:fs';
import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import pg from 'pg';
import type { InstallOptions } from '../policy/install-sql.js';
import { install, planInstall, type InstallReport } from '../policy/installer.js';
import { installEverywhere, type InstallEverywhereReport } from '../tiers/install-everywhere.js';
import { secretVariable, type LocalDatabase, type LocalSecretName } from '../embedded/local-database.js';
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
  citus?: boolean;
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
  // a database whose install failed has its line already
  const notInstalled = new Set(report.databases.filter((d) => !d.ok).map((d) => `${d.cluster}/${d.database}`));
  for (const h of report.holds.databases)
    if (!notInstalled.has(`${h.cluster}/${h.database}`) && (h.error !== null || h.written + h.released > 0))
      lines.push(
        h.error === null
          ? `holds  ${h.cluster}/${h.database}: ${h.written} suspended/deleted tenant(s) held, ${h.released} released (repaired to match the catalog)`
          : `FAILED ${h.cluster}/${h.database}: holds of suspended/deleted tenants not checked: ${h.error.replace(/\s*\n\s*/g, ' ')}`,
      );
  const failed = report.databases.filter((d) => !d.ok).length;
  lines.push(
    `tenantry install --everywhere: ${report.databases.length} database${report.databases.length === 1 ? '' : 's'}, ${report.databases.length - failed} installed, ${failed} failed ` +
      `(${report.roles.contextMode} context, app role ${report.roles.appRole}, owner role ${report.roles.ownerRole}).`,
  );
  return lines.join('\n');
}

/**
 * Where the secrets handed to install came from, in words (`TENANTRY_CONTEXT_SECRET`, `.tenantry/config.json`),
 * so that a warning names the real origin; a secret absent here was not given at all.
 */
export interface InstallSecretOrigins {
  contextSecret?: string;
  /** By role name. */
  passwords?: Record<string, string>;
  /** Secrets nobody gave (no variable, no config file): not passed to install. */
  missing?: { contextSecret?: string; passwords?: Record<string, string> };
  /** Set when the config file is missing and was not written (see `held` for why). */
  unrecordedConfig?: string;
  /**
   * Why it was not written: whether this database has a context key, and which of the roles whose
   * passwords a new file must hold (this install's app and owner roles) exist on the server.
   */
  held?: { roles: string[]; contextKey: boolean };
}

/** The secrets handed to install. */
interface InstallSecrets {
  contextSecret?: string;
  appPassword?: string;
  ownerPassword?: string;
  supportPassword?: string;
  routerPassword?: string;
}

/**
 * The secrets of `db` that install may use (those a variable or the config file gives; a secret
 * generated for this run only is not one: storing it would leave credentials nobody knows), and
 * where each came from.
 */
export function installSecrets(
  db: LocalDatabase,
  roles: { appRole: string; ownerRole: string; supportRole?: string; routerRole?: string },
): {
  secrets: InstallSecrets;
  origins: InstallSecretOrigins;
} {
  const secrets: InstallSecrets = {};
  const origins: InstallSecretOrigins = { passwords: {}, missing: { passwords: {} } };
  const originOf = (name: LocalSecretName) =>
    db.secretSources[name] === 'env' ? secretVariable(name) : `${db.configFile} (${secretVariable(name)} is not set)`;
  // a file that exists lacks a support or router password only where the role existed already
  // when it was written (another database's install on the server): its password is not known here
  const recorded = existsSync(db.configFile);
  const missingWords = (name: LocalSecretName, role: string | undefined) =>
    !recorded
      ? `${secretVariable(name)} is not set and ${db.configFile} is missing`
      : `${secretVariable(name)} is not set and ${db.configFile} does not record it` +
        (role === undefined ? '' : `: the role ${role} existed on this server already, its password is not known here`);
  const entries: [Exclude<LocalSecretName, 'jwtSecret'>, string | undefined][] = [
    ['contextSecret', undefined],
    ['appPassword', roles.appRole],
    ['ownerPassword', roles.ownerRole],
    ['supportPassword', roles.supportRole],
    ['routerPassword', roles.routerRole],
  ];
  for (const [name, role] of entries) {
    if ((name === 'supportPassword' || name === 'routerPassword') && role === undefined) continue;
    const given = db.secretSources[name] !== 'generated';
    if (given) secrets[name] = db[name];
    if (name === 'contextSecret') {
      if (given) origins.contextSecret = originOf(name);
      else origins.missing!.contextSecret = missingWords(name, undefined);
    } else if (given) origins.passwords![role!] = originOf(name);
    else origins.missing!.passwords![role!] = missingWords(name, role);
  }
  if (!recorded && Object.values(db.secretSources).includes('generated')) {
    origins.unrecordedConfig = db.configFile;
    // only the roles a new file needs the passwords of keep it from being written (see
    // openLocalDatabase): another role of the server (a default name this install does not use)
    // is no reason, and is not named
    if (db.held)
      origins.held = {
        roles: db.held.roles.filter((r) => r === roles.appRole || r === roles.ownerRole),
        contextKey: db.held.contextKey,
      };
  }
  return { secrets, origins };
}

/** What one install did, for people: migrations applied, and every credential it kept. */
export function formatSingleInstall(report: InstallReport, origins: InstallSecretOrigins = {}): string[] {
  const lines = [
    report.applied.length > 0
      ? `applied ${report.applied.length} library migration${report.applied.length === 1 ? '' : 's'}${report.baselined ? ' (an install from before the versioned schema, now versioned)' : ''}: ${report.applied.join(', ')}`
      : 'library schema current: no pending migration',
  ];
  for (const p of report.passwords) {
    const from = origins.passwords?.[p.role];
    if (p.action === 'set') lines.push(`password of ${p.role} set (the role had none)${from ? `, from ${from}` : ''}`);
    else if (p.matches === false)
      lines.push(
        `WARNING: password of ${p.role} kept, and the one ${from ? `from ${from}` : 'given'} is not it: a client connecting with that one is refused (28P01). ` +
          `Use the deployment's password, or change the role's with tenantry rotate password --role ${p.role}.`,
      );
    else
      lines.push(
        `password of ${p.role} kept${p.matches ? ` (it is the one ${from ? `from ${from}` : 'given'})` : ''} (install never changes an existing one: tenantry rotate password --role …)`,
      );
  }
  for (const [role, why] of Object.entries(origins.missing?.passwords ?? {}))
    lines.push(`password of ${role}: none given (${why}); the role's own is left as it is`);
  const secretFrom = origins.contextSecret ? `from ${origins.contextSecret}` : 'given';
  if (report.contextSecret === 'kept')
    lines.push(
      `WARNING: the context secret ${secretFrom} differs from the key installed here, which was kept: an app signing with that secret would fail with TR001. ` +
        "Use the deployment's TENANTRY_CONTEXT_SECRET, or change the key with tenantry rotate context-secret.",
    );
  else if (report.contextSecret === 'unchanged')
    lines.push(`context secret: the installed key is the one ${secretFrom}`);
  else if (report.contextSecret === 'set') lines.push(`context secret: stored, the one ${secretFrom}`);
  else if (origins.missing?.contextSecret)
    lines.push(
      `context secret: none given (${origins.missing.contextSecret}); the key installed here, if any, is kept`,
    );
  // a new database of a server (or Citus cluster) whose roles exist already holds no install: say what is there
  if (origins.unrecordedConfig && origins.held && !origins.held.contextKey && origins.held.roles.length > 0) {
    const roles = origins.held.roles;
    lines.push(
      `WARNING: ${origins.unrecordedConfig} is missing and was not written: it would hold the password of ${roles.join(' and ')}, ` +
        `and ${roles.length === 1 ? 'that role exists' : 'these roles exist'} already on this server (roles are shared by all its databases; this database had no install) ` +
        "with a password not known here (a new one would not match). Give the deployment's TENANTRY_* secrets, " +
        'restore the file, choose roles of your own (--app-role, --owner-role), or set new passwords with tenantry rotate and record them.',
    );
  } else if (origins.unrecordedConfig)
    lines.push(
      `WARNING: ${origins.unrecordedConfig} is missing and this database holds an install already, so it was not written ` +
        "(new secrets would not match the credentials installed here). Give the deployment's TENANTRY_* secrets, " +
        'restore the file, or set new ones with tenantry rotate and record them.',
    );
  return lines;
}

/** Role options and where a database that has an install records each (tenantry.meta), with the variable that also sets it. */
const RECORDED_ROLES = [
  ['appRole', 'app_role', 'TENANTRY_APP_ROLE', '--app-role'],
  ['ownerRole', 'owner_role', 'TENANTRY_OWNER_ROLE', '--owner-role'],
  ['supportRole', 'support_role', 'TENANTRY_SUPPORT_ROLE', '--support-role'],
  ['routerRole', 'router_role', 'TENANTRY_ROUTER_ROLE', '--router-role'],
] as const;

/**
 * For a database that has an install: each role neither its flag nor its variable names is the
 * one recorded there, not the default name (a re-run without the flags would otherwise move the
 * install to the default roles: the router's grants to a role nobody chose). Returns what it took
 * from the record, for people.
 */
async function recordedRoleDefaults(adminUrl: string, options: InstallOptions, cmd: Command): Promise<string[]> {
  const client = new pg.Client({ connectionString: adminUrl, application_name: 'tenantry install' });
  client.on('error', () => undefined);
  await client.connect();
  let meta: Map<string, string>;
  try {
    const { rows } = await client
      .query<{ key: string; value: string }>(`select key, value from tenantry.meta where key = any($1)`, [
        RECORDED_ROLES.map(([, key]) => key),
      ])
      .catch((error: unknown) => {
        // no install yet (42P01): nothing recorded
        if ((error as { code?: string }).code === '42P01') return { rows: [] };
        throw error;
      });
    meta = new Map(rows.map((r) => [r.key, r.value]));
  } finally {
    await client.end().catch(() => undefined);
  }
  const taken: string[] = [];
  for (const [option, key, variable, flag] of RECORDED_ROLES) {
    const recorded = meta.get(key);
    if (!recorded || cmd.getOptionValueSource(option) === 'cli' || (process.env[variable] ?? '') !== '') continue;
    if (options[option] === recorded) continue;
    options[option] = recorded;
    taken.push(`${flag} ${recorded} (as this database records; give ${flag} or ${variable} to change it)`);
  }
  return taken;
}

/**
 * Every variable install reads, one line each, for `--help` (names only: a value is never printed).
 * The secrets' names come from the table openLocalDatabase reads them by, so the two stay in step.
 */
export function installEnvironmentHelp(): string {
  const lines: [string, string][] = [
    ['DATABASE_URL', 'server to install into (a superuser URL), as --database-url'],
    ['TENANTRY_DIR', 'project folder (config.json, the embedded server), as --dir'],
    ...RECORDED_ROLES.map(([, , variable, flag]): [string, string] => [variable, `${flag}'s default`]),
    [secretVariable('contextSecret'), 'the context secret (signed mode): stored on a first install only'],
    [secretVariable('appPassword'), "the app role's password: set only where the role has none"],
    [secretVariable('ownerPassword'), "the owner role's password: set only where the role has none"],
    [secretVariable('supportPassword'), "the support role's password (with --support-role): likewise"],
    [secretVariable('routerPassword'), "the router role's password: likewise"],
    [secretVariable('jwtSecret'), "the reference server's JWT secret: only recorded in a new config.json"],
    ['TENANTRY_CLUSTERS', "with --everywhere: other clusters' superuser URLs, as --clusters"],
  ];
  const width = Math.max(...lines.map(([name]) => name.length));
  return [
    '',
    'Environment (install reads these; it never prints a secret):',
    ...lines.map(([name, what]) => `  ${name.padEnd(width)}  ${what}`),
    '',
    'A secret whose variable is not set comes from <dir>/config.json, written on a first install',
    '(docs/embedded.md); install never changes an existing password or key (tenantry rotate does).',
  ].join('\n');
}

/** `tenantry install`: roles, catalog, registry, deny-by-default, private schema. Idempotent. */
export function installCommand(globals: () => ConnectionOptions): Command {
  return new Command('install')
    .description('install the isolation layer into the database (idempotent)')
    .option(
      '--dry-run',
      'print what is pending (SQL) instead of running it; changes nothing, on disk either (passwords masked, secrets never printed)',
    )
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
      '--citus',
      'on a Citus coordinator: roles and schemas first, one statement at a time, then the Citus step (docs/citus.md)',
    )
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
    .addHelpText('after', installEnvironmentHelp())
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
            // only secrets a variable or the config file gives (never ones made up for this run)
            const { secrets } = installSecrets(db, {
              appRole: db.appRole,
              ownerRole: db.ownerRole,
              ...(supportRole !== undefined && supportRole === db.supportRole ? { supportRole } : {}),
              ...(routerRole === db.routerRole ? { routerRole } : {}),
            });
            return installEverywhere({
              catalog,
              clusters,
              appPassword: secrets.appPassword,
              ownerPassword: secrets.ownerPassword,
              supportPassword: secrets.supportPassword,
              routerPassword: secrets.routerPassword,
              contextSecret: secrets.contextSecret,
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
        // nothing on disk either: no folder, no mode change, no config.json
        await withDatabase({ ...globals(), readOnly: true }, async (db) => {
          for (const line of await recordedRoleDefaults(db.adminUrl, options, cmd))
            process.stdout.write(`-- ${line}\n`);
          const plan = await planInstall(db.adminUrl, {
            ...options,
            appPassword: db.appPassword,
            ownerPassword: db.ownerPassword,
            ...(options.supportRole ? { supportPassword: db.supportPassword } : {}),
            routerPassword: db.routerPassword,
            ...(flags.citus === true ? { citus: true } : {}),
          });
          process.stdout.write(
            `-- pending library migrations: ${plan.pending.length === 0 ? 'none' : plan.pending.join(', ')}\n${plan.sql}` +
              // with --citus the plan says it where the install does it (before the Citus step)
              (flags.citus === true
                ? ''
                : `-- then, in signed mode on a first install: the context secret's HMAC pads are stored in tenantry_private.context_key (not printed)\n`),
          );
        });
        return;
      }
      // config.json's app and owner passwords are those of the roles this install uses
      const roles = { appRole: options.appRole, ownerRole: options.ownerRole };
      await withDatabase({ ...globals(), roles }, async (db) => {
        const recorded = await recordedRoleDefaults(db.adminUrl, options, cmd);
        // a support or router role other than the local database's gets a password only from its
        // variable (TENANTRY_SUPPORT_PASSWORD, TENANTRY_ROUTER_PASSWORD): the config file's is the
        // local role's; without one the install says the role has none of ours
        const ours = (role: string | undefined, local: string | undefined, password: LocalSecretName) =>
          role !== undefined && role !== '' && (role === local || db.secretSources[password] === 'env');
        const supportOurs = ours(options.supportRole, db.supportRole, 'supportPassword');
        const routerOurs = ours(options.routerRole, db.routerRole, 'routerPassword');
        const { secrets, origins } = installSecrets(db, {
          appRole: options.appRole!,
          ownerRole: options.ownerRole!,
          ...(supportOurs ? { supportRole: options.supportRole } : {}),
          ...(routerOurs ? { routerRole: options.routerRole } : {}),
        });
        // such a role without its variable: said as any role whose password nobody gave
        for (const [role, ok, variable] of [
          [options.supportRole, supportOurs, 'TENANTRY_SUPPORT_PASSWORD'],
          [options.routerRole, routerOurs, 'TENANTRY_ROUTER_PASSWORD'],
        ] as const)
          if (role && !ok)
            origins.missing!.passwords![role] =
              `${variable} is not set; ${db.configFile} keeps only the passwords of this folder's own roles`;
        const report = await install(db.adminUrl, { ...options, ...secrets, citus: flags.citus === true });
        console.log(
          `tenantry installed (${options.contextMode} context) for app role ${options.appRole}, owner role ${options.ownerRole}`,
        );
        for (const line of recorded) console.log(`role ${line}`);
        for (const line of formatSingleInstall(report, origins))
          (line.startsWith('WARNING') ? console.error : console.log)(line);
      });
    });
}
