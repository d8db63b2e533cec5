import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import pg from 'pg';
import { migrateEverywhere, type MigrationProgress, type TargetResult } from '../tiers/migrate/migrate-everywhere.js';
import { migrationStatus } from '../tiers/migrate/migration-status.js';
import type { LocalDatabase } from '../embedded/local-database.js';
import { commandPool, withDatabase, type ConnectionOptions } from './connection.js';
import { progressReporter, type ProgressReporter } from './progress-reporter.js';
import { textTable } from './text-table.js';
import type { Migration } from '../tiers/migrate/migration-files.js';
import { migrationsWithPlugins, PLUGINS_OPTION_HELP } from './plugins-definition.js';

interface MigrateFlags {
  migrations: string;
  plugins?: string;
  clusters?: string;
  concurrency: number;
  lockTimeout?: number;
  json?: boolean;
}

const positive = (raw: string): number => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new CommanderArgumentError('a whole number from 1 to 256');
  return n;
};

/**
 * Which role a command needs on every cluster: `owner` (migrate, doctor: the owner role is enough)
 * or `admin` (install: a superuser, who creates roles and the event trigger).
 */
export type ClusterRole = 'owner' | 'admin';

/**
 * The cluster URLs: the home cluster is the command's own database (as the owner role when
 * TENANTRY_OWNER_DATABASE_URL is set or the database is the embedded one, else the superuser URL:
 * the migrator runs every transaction as the owner role anyway; always the superuser URL for
 * `admin`); other clusters come from `--clusters` or TENANTRY_CLUSTERS, JSON
 * `{ "eu": "postgres://…" }` or `{ "eu": { "ownerUrl": "…", "adminUrl": "…" } }` (`admin` takes adminUrl).
 */
function clusterUrls(
  globals: ConnectionOptions,
  flags: Pick<MigrateFlags, 'clusters'>,
  db: { adminUrl: string; ownerUrl: string },
  as: ClusterRole,
): Record<string, string> {
  const home =
    as === 'admin'
      ? db.adminUrl
      : (process.env.TENANTRY_OWNER_DATABASE_URL ??
        (globals.databaseUrl || process.env.DATABASE_URL ? db.adminUrl : db.ownerUrl));
  const raw = flags.clusters ?? process.env.TENANTRY_CLUSTERS;
  const urls: Record<string, string> = { home };
  if (!raw) return urls;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new CommanderArgumentError('--clusters / TENANTRY_CLUSTERS must be JSON: { "name": "postgres://…" }');
  }
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    const v = value as { ownerUrl?: unknown; adminUrl?: unknown } | string;
    const url = typeof v === 'string' ? v : as === 'admin' ? v?.adminUrl : (v?.ownerUrl ?? v?.adminUrl);
    if (typeof url !== 'string') {
      throw new CommanderArgumentError(
        as === 'admin'
          ? `cluster ${name}: give a superuser URL, or { "adminUrl": "…" }`
          : `cluster ${name}: give a URL, or { "ownerUrl": "…" }`,
      );
    }
    urls[name] = url;
  }
  return urls;
}

/**
 * Runs `fn` with the catalog (home, owner; superuser for `admin`) and every cluster's URL: for
 * `migrate`, `doctor --placements` and (`admin`) `install --everywhere`.
 */
export async function withClusters<T>(
  globals: ConnectionOptions,
  flags: Pick<MigrateFlags, 'clusters'>,
  fn: (catalog: pg.Pool, clusters: Record<string, string>, db: LocalDatabase) => Promise<T>,
  as: ClusterRole = 'owner',
): Promise<T> {
  return withDatabase(globals, async (db) => {
    const clusters = clusterUrls(globals, flags, db, as);
    const catalog = commandPool({ connectionString: clusters.home, max: 2 });
    try {
      return await fn(catalog, clusters, db);
    } finally {
      await catalog.end();
    }
  });
}

/** `migrate`'s progress: targets done of all, failures so far; each failed target as a line of its own. */
function migrateProgress(progress: ProgressReporter): (p: MigrationProgress) => void {
  return (p) => {
    if (p.last.status === 'failed' || p.last.status === 'blocked')
      progress.note(`${p.last.status} ${p.last.target.key}`);
    progress.update({
      phase: 'migrate',
      done: p.done,
      total: p.total,
      unit: 'targets',
      detail: [p.failed ? `${p.failed} failed` : '', p.last.target.key].filter(Boolean).join('  '),
    });
  };
}

function failureLine(r: TargetResult): string {
  const f = r.failure!;
  return `${r.status.toUpperCase()} ${r.target.key}  ${f.migration ?? '-'}  ${f.sqlstate ?? '-'}  ${f.message.replace(/\s*\n\s*/g, ' ')}`;
}

/** The directory's migrations, with the plugins' when `--plugins` (or TENANTRY_PLUGINS_MODULE) names them. */
function withPlugins(flags: MigrateFlags): Promise<string | Migration[]> {
  return migrationsWithPlugins(flags.migrations, flags.plugins);
}

/** `tenantry migrate` and `tenantry migrate status`. */
export function migrateCommand(globals: () => ConnectionOptions): Command {
  const common = (c: Command): Command =>
    c
      // not --dir: that global option names the embedded server's folder
      .option(
        '--migrations <path>',
        'migrations directory (global/, tenant/)',
        process.env.TENANTRY_MIGRATIONS_DIR ?? 'migrations',
      )
      .option(
        '--clusters <json>',
        'other clusters\' URLs, JSON { "name": "postgres://…" } (default: TENANTRY_CLUSTERS)',
      )
      .option('--concurrency <n>', 'targets at once (and connections at work)', positive, 8)
      .option('--plugins <module>', PLUGINS_OPTION_HELP)
      .option('--json', 'print JSON');
  // options live on the subcommands: on `migrate` itself they would swallow `migrate status --migrations x`
  const cmd = new Command('migrate').description(
    "apply the application's migrations everywhere (`migrate up`, the default), or show where each target stands (`migrate status`)",
  );
  common(cmd.command('up', { isDefault: true }))
    .description(
      'apply the migrations to the shared database, every tenant schema and every tenant database on every cluster; exits 1 when any target failed',
    )
    .option(
      '--lock-timeout <ms>',
      "fail a target whose migration waits longer than this for a table lock (default: the server's lock_timeout)",
      (raw: string) => {
        const n = Number(raw);
        if (!Number.isInteger(n) || n < 1) throw new CommanderArgumentError('a positive number of milliseconds');
        return n;
      },
    )
    .action(async (flags: MigrateFlags) => {
      const progress = progressReporter();
      const migrations = await withPlugins(flags);
      const report = await withClusters(globals(), flags, (catalog, clusters) =>
        migrateEverywhere({
          catalog,
          clusters,
          migrations,
          concurrency: flags.concurrency,
          lockTimeoutMs: flags.lockTimeout,
          onProgress: migrateProgress(progress),
        }),
      ).finally(() => progress.stop());
      if (!report.ok) process.exitCode = 1;
      if (flags.json) {
        console.log(JSON.stringify(report, null, 2));
        return;
      }
      const count = (s: string) => report.results.filter((r) => r.status === s).length;
      for (const r of report.results.filter((r) => r.failure)) console.log(failureLine(r));
      const seconds = report.durationMs / 1000;
      console.log(
        `tenantry migrate: ${report.results.length} targets in ${seconds.toFixed(1)} s (${(report.results.length / seconds).toFixed(0)} targets/s): ` +
          `${count('applied')} migrated, ${count('current')} already current, ${count('failed')} failed, ${count('blocked')} blocked; latest version ${report.latest ?? 'none'}.`,
      );
    });
  common(cmd.command('status'))
    .description('show which target is at which version, its pending migrations and last failure')
    .option('--behind', 'list only the targets not at the latest version or with a failure')
    .action(async (flags: MigrateFlags & { behind?: boolean }) => {
      const migrations = await withPlugins(flags);
      const report = await withClusters(globals(), flags, (catalog, clusters) =>
        migrationStatus({ catalog, clusters, migrations, concurrency: flags.concurrency }),
      );
      if (flags.json) {
        console.log(JSON.stringify(report, null, 2));
        return;
      }
      const shown = report.targets.filter((t) => !flags.behind || t.pending > 0 || t.lastFailure || t.drift);
      const rows = shown.map((t) => [
        t.target.key,
        t.target.kind,
        t.version === null ? '-' : String(t.version),
        String(t.pending),
        t.drift ??
          (t.lastFailure
            ? `${t.lastFailure.migration ?? '-'} ${t.lastFailure.sqlstate ?? '-'} ${t.lastFailure.message.replace(/\s*\n\s*/g, ' ')}`
            : ''),
      ]);
      console.log(textTable(['TARGET', 'KIND', 'VERSION', 'PENDING', 'LAST ERROR'], rows));
      const summary = report.byVersion.map((v) => `${v.version ?? 'none'}: ${v.targets}`).join(', ');
      console.log(`latest version ${report.latest ?? 'none'}; targets by version: ${summary || '(no targets)'}`);
      if (report.targets.some((t) => t.pending > 0 || t.lastFailure || t.drift)) process.exitCode = 1;
    });
  return cmd;
}
