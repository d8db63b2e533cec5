import { Command } from 'commander';
import { exportTenant, type TransferProgress } from '../lifecycle/export/tenant-exporter.js';
import { importTenant } from '../lifecycle/export/tenant-importer.js';
import { ArchiveReader } from '../lifecycle/export/archive-reader.js';
import { ArchiveError } from '../lifecycle/export/archive-error.js';
import { TenantCatalog } from '../catalog/tenant-catalog.js';
import type pg from 'pg';
import { InvalidArgumentError } from '../errors/tenantry-error.js';
import { Placements } from '../tiers/placements.js';
import type { Tier } from '../tiers/tenant-router.js';
import { commandPool, withDatabase, type ConnectionOptions } from './connection.js';
import { PLUGINS_OPTION_HELP } from './plugins-definition.js';
import { prepareMoveTarget } from './prepare-move-target.js';
import { namedUrls } from './move-command.js';
import { progressReporter, type ProgressUpdate } from './progress-reporter.js';

/** An export's or import's progress, as the reporter shows it. */
export function transferProgressUpdate(p: TransferProgress): ProgressUpdate {
  const phase = [p.step, p.table].filter(Boolean).join(' ');
  return p.rows === undefined ? { phase } : { phase, done: p.rows, total: p.total, unit: 'rows' };
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);

/** `tenantry tenants export <tenant> --out <file>`: the tenant's rows, from wherever it lives, to a portable archive. */
export function exportCommand(globals: () => ConnectionOptions): Command {
  return new Command('export')
    .argument('<tenant>', 'tenant id or slug (any status)')
    .description('write a tenant to a portable archive (manifest, tables as COPY, SHA-256 per table; gzip)')
    .requiredOption('--out <file>', 'archive to write')
    .option(
      '--cluster-url <name=url>',
      'owner URL of another cluster (repeatable)',
      (v: string, all: string[] = []) => [...all, v],
    )
    .option('--json', 'print the manifest as JSON')
    .action(async (ref: string, opts: { out: string; clusterUrl?: string[]; json?: boolean }) => {
      await withDatabase(globals(), async (db) => {
        const g = globals();
        const ownerUrl =
          process.env.TENANTRY_OWNER_DATABASE_URL ??
          (g.databaseUrl || process.env.DATABASE_URL ? db.adminUrl : db.ownerUrl);
        const catalog = commandPool({ connectionString: ownerUrl, max: 3 });
        const placements = new Placements({
          catalog,
          owners: { home: ownerUrl, ...namedUrls(opts.clusterUrl ?? [], 'cluster-url') },
        });
        const progress = progressReporter();
        const began = performance.now();
        try {
          const result = await exportTenant({
            catalog,
            placements,
            tenant: ref,
            out: opts.out,
            onProgress: (p) => progress.update(transferProgressUpdate(p)),
          });
          progress.stop();
          const s = (performance.now() - began) / 1000;
          const bytes = result.manifest.tables.reduce((n, t) => n + t.bytes, 0);
          const rows = result.manifest.tables.reduce((n, t) => n + t.rows, 0);
          if (opts.json) console.log(JSON.stringify(result.manifest, null, 2));
          else
            console.log(
              `exported ${result.manifest.tenant.slug}: ${rows} rows in ${result.manifest.tables.length} tables, ` +
                `${mb(bytes)} MB of rows, archive ${mb(result.archiveBytes)} MB, ${s.toFixed(1)} s → ${result.file}`,
            );
        } finally {
          progress.stop();
          await placements.end();
          await catalog.end();
        }
      });
    });
}

interface ImportOptions {
  as?: string;
  to?: Tier;
  cluster: string;
  schema?: string;
  database?: string;
  ddl?: string;
  plugins?: string;
  clusterUrl?: string[];
  replace?: string;
  allowUnsigned?: boolean;
  json?: boolean;
}

/**
 * `tenantry tenants import <file> [--as <slug>] [--to <tier>] [--cluster <name>] [--replace]`:
 * loads an archive, verifies it against its manifest, and only then makes the tenant visible.
 */
export function importCommand(globals: () => ConnectionOptions): Command {
  return new Command('import')
    .argument('<file>', 'archive written by tenants export')
    .description(
      'load a tenant archive into any tier and cluster; visible only once verified (run again after a crash)',
    )
    .option('--as <slug>', 'restore as a new tenant: this slug, a fresh tenant id and fresh global ids')
    .option('--to <tier>', "shared | schema | database (default: the archive's tier)")
    .option('--cluster <name>', 'target cluster', 'home')
    .option('--schema <name>', 'target schema (schema tier; default t_<slug>)')
    .option('--database <name>', 'target database (database tier; default tenant_<slug>)')
    .option(
      '--ddl <path>',
      'create the target schema or database first: a migrations directory (global/, tenant/) or one SQL file, as tenants move --ddl',
    )
    .option('--plugins <module>', `with --ddl <directory>: ${PLUGINS_OPTION_HELP}`)
    .option(
      '--cluster-url <name=url>',
      'owner URL of another cluster (repeatable)',
      (v: string, all: string[] = []) => [...all, v],
    )
    .option(
      '--replace <slug>',
      "overwrite the existing tenant of the archive's id (it must be suspended or deleted); type its slug to confirm",
    )
    .option(
      '--allow-unsigned',
      'accept an archive without a signature, or signed by another deployment (not checkable here); an altered one is refused anyway',
    )
    .option('--json', 'print the result as JSON')
    .action(async (file: string, opts: ImportOptions) => {
      if (opts.to !== undefined && !['shared', 'schema', 'database'].includes(opts.to))
        throw new InvalidArgumentError('--to takes shared, schema or database', 'to');
      await withDatabase(globals(), async (db) => {
        const g = globals();
        const ownerUrl =
          process.env.TENANTRY_OWNER_DATABASE_URL ??
          (g.databaseUrl || process.env.DATABASE_URL ? db.adminUrl : db.ownerUrl);
        const owners = { home: ownerUrl, ...namedUrls(opts.clusterUrl ?? [], 'cluster-url') };
        const catalog = commandPool({ connectionString: ownerUrl, max: 3 });
        const placements = new Placements({ catalog, owners });
        const progress = progressReporter();
        const began = performance.now();
        try {
          if (opts.replace !== undefined && opts.as !== undefined)
            throw new ArchiveError(
              'IMPORT_REPLACE_UNSUPPORTED',
              '--replace restores the tenant over itself: it takes no --as (import --as alone makes a copy)',
            );
          if (opts.replace !== undefined) await confirmReplace(file, opts.replace, catalog);
          const result = await importTenant({
            file,
            catalog,
            placements,
            as: opts.as,
            replace: !!opts.replace,
            allowUnsigned: !!opts.allowUnsigned,
            to:
              opts.to || opts.cluster !== 'home' || opts.schema || opts.database
                ? {
                    tier: opts.to ?? (opts.database ? 'database' : opts.schema ? 'schema' : 'shared'),
                    cluster: opts.cluster,
                    schema: opts.schema,
                    database: opts.database,
                  }
                : undefined,
            prepareTarget: opts.ddl
              ? async (target, tenant) => {
                  await prepareMoveTarget({
                    target,
                    tenant,
                    path: opts.ddl!,
                    plugins: opts.plugins,
                    placements,
                    catalog,
                    db,
                    owners,
                  });
                }
              : undefined,
            onProgress: (p) => progress.update(transferProgressUpdate(p)),
          });
          progress.stop();
          const s = (performance.now() - began) / 1000;
          const rows = result.tables.reduce((n, t) => n + t.rows, 0);
          const p = result.placement;
          if (opts.json) console.log(JSON.stringify(result, null, 2));
          else
            console.log(
              `imported ${result.tenant.slug} (${result.tenant.id}, ${result.tenant.status})${result.replaced ? ', replacing its rows' : ''}: ` +
                `${rows} rows in ${result.tables.length} tables, ${mb(result.bytes)} MB, ${s.toFixed(1)} s; ` +
                `${p.tier} on ${p.cluster}${p.schema ? ` schema ${p.schema}` : ''}${p.database ? ` database ${p.database}` : ''}; ` +
                `signature ${result.signature === 'verified' ? 'verified' : `not checked (${result.signature}, --allow-unsigned)`}`,
            );
        } finally {
          progress.stop();
          await placements.end();
          await catalog.end();
        }
      });
    });
}

/**
 * `--replace <slug>` is a typed confirmation: the tenant the archive would overwrite (the
 * catalog's tenant of the archive's id) must have that slug, so the operator sees which tenant's
 * rows are about to be replaced before anything changes.
 */
async function confirmReplace(file: string, typed: string, catalog: pg.Pool): Promise<void> {
  const reader = await ArchiveReader.open(file);
  const { id } = reader.manifest.tenant;
  reader.close();
  const existing = await new TenantCatalog(catalog).find(id);
  if (!existing || existing.slug !== typed)
    throw new InvalidArgumentError(
      existing
        ? `--replace: this archive would replace the tenant ${existing.slug}: type that slug to confirm`
        : "--replace: no tenant of this archive's id exists to replace (import it without --replace)",
      'replace',
    );
}
