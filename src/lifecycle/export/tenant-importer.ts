import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type pg from 'pg';
import { TenantCatalog } from '../../catalog/tenant-catalog.js';
import { slugSchema, type Tenant } from '../../catalog/tenant.js';
import { InvalidArgumentError } from '../../errors/tenantry-error.js';
import { SqlState, sqlStateOf } from '../../errors/sqlstate.js';
import { validIdentifier } from '../../policy/identifiers.js';
import type { PlacementTarget, Placements } from '../../tiers/placements.js';
import { normalizeTarget, samePlacement } from '../../tiers/move/move-location.js';
import { findSharedTarget } from '../../tiers/target-guard.js';
import type { Tier } from '../../tiers/tenant-router.js';
import { ArchiveError } from './archive-error.js';
import { ArchiveReader } from './archive-reader.js';
import { verifyArchiveManifest, type ArchiveSignatureCheck } from './archive-signature.js';
import { IdRemap } from './id-remap.js';
import { loadLibraryTables, planLibraryLoad } from './library-tables.js';
import { ImportJournal } from './import-journal.js';
import type { ArchiveManifest } from './manifest.js';
import { staleWorkMs, type TransferProgress } from './tenant-exporter.js';
import { sweepStaleWorkFolders } from './work-folders.js';
import { appMigrationVersion, tableSites, type TableSite } from './tenant-locations.js';
import { deleteTenantRows, load, summary, type PlannedTable } from './tenant-load.js';

/** Where an import puts the tenant: the tier, and the cluster, schema or database. */
export interface ImportTarget {
  tier: Tier;
  /** Default `home`. */
  cluster?: string;
  /** Schema tier: default `t_<slug>` (hyphens as underscores). */
  schema?: string | null;
  /** Database tier: default `tenant_<slug>`. */
  database?: string | null;
}

/** Options of {@link importTenant}. */
export interface ImportTenantOptions {
  /** The archive written by {@link exportTenant}. */
  file: string;
  /** The home database (the catalog) as the owner role. */
  catalog: pg.Pool;
  /** Owner pools per cluster and location. */
  placements: Placements;
  /** Restore as a new tenant with this slug: a fresh tenant id and fresh global ids (the manifest's `remap` columns). */
  as?: string;
  /** Where to put the tenant (default: the archive's tier on the home cluster). */
  to?: ImportTarget;
  /**
   * Overwrite the existing tenant of the same id (restore a backup over itself): it must not be
   * active (suspend it first), and is restored where it lives. Without it, an existing tenant of
   * the same id or slug refuses the import (IMPORT_TENANT_EXISTS).
   */
  replace?: boolean;
  /** Schemas of the shared tier's tenant tables (default `['public']`). */
  dataSchemas?: string[];
  /**
   * Export work folders (`.tenantry-export-*`) next to `file` that a killed export left behind
   * are removed first when older than this many minutes and not locked by a live process (default 30).
   */
  staleWorkMinutes?: number;
  /**
   * Makes the target ready before loading (a new schema or database: create it and apply the
   * application's migrations, e.g. with `createTenantSchema` / `createTenantDatabase` and
   * `migrateLocation`). Called for a new tenant only; the tables must then exist.
   */
  prepareTarget?: (target: Required<PlacementTarget>, tenantId: string) => Promise<void>;
  /**
   * Accept an archive without a signature (made before archives were signed) or signed by another
   * deployment's key, which cannot be checked here. An archive whose signature does not match a
   * key of this deployment is refused whatever this says (ARCHIVE_SIGNATURE_INVALID). Default false.
   */
  allowUnsigned?: boolean;
  /**
   * Load without PostgreSQL's per-row foreign-key checks where the role may (`session_replication_role
   * = replica`, set locally: a superuser, or `GRANT SET ON PARAMETER session_replication_role`) and
   * the tables have no trigger of their own, then check every foreign key set-based before commit
   * (see replica-load.ts). Default true; false always takes the per-row path.
   */
  replicaLoad?: boolean;
  /**
   * A new tenant's own schema or database: drop its empty tables' indexes and keys for the load
   * and build them again after it, the pg_restore way, where provably safe (see index-rebuild.ts).
   * Default true; false keeps them in place (each row inserted into every index as it loads).
   */
  indexRebuild?: boolean;
  onProgress?: (progress: TransferProgress) => void;
  /** Called as each step begins (tests kill the process there). */
  onStep?: (step: 'loading' | 'verified' | 'loaded' | 'switching', detail?: string) => void | Promise<void>;
}

/** What an import did. */
export interface ImportResult {
  importId: string;
  tenant: Tenant;
  placement: Required<PlacementTarget>;
  /**
   * Rows loaded per table, and how its indexes were kept: `rebuilt` (dropped before the COPY and
   * built again after it, the pg_restore way: a new tenant's own, empty table; see index-rebuild.ts)
   * or `per-row` (each row inserted into every index as it is loaded).
   */
  tables: Array<{ name: string; rows: number; indexes: 'rebuilt' | 'per-row' }>;
  /** Rows loaded per library table (the tenant's settings, flags and brand). */
  libraryTables: Array<{ name: string; rows: number }>;
  /** Bytes of rows (COPY text) loaded. */
  bytes: number;
  replaced: boolean;
  /** `verified` with this deployment's key; `unsigned` or `unverifiable` when `allowUnsigned` let it in. */
  signature: ArchiveSignatureCheck;
  /**
   * How the foreign keys were checked: `set-based` (loaded in replica mode, one check per key
   * before commit; or every key of the database's loaded tables dropped and added again after the
   * load, validated by ADD CONSTRAINT), `per-row` (PostgreSQL's own triggers), `mixed` (per
   * database: some of each).
   */
  foreignKeyChecks: 'set-based' | 'per-row' | 'mixed';
  /** The tables' `indexes`, summed up: `rebuilt` for every table, `per-row` for every one, or `mixed`. */
  indexes: 'rebuilt' | 'per-row' | 'mixed';
}

/**
 * Loads a tenant archive into any tier and cluster, and makes it visible only once every table
 * matches the manifest. In order: the manifest is checked (format version, the app's migration
 * version at the target, every table and column present); the import is journaled
 * (`tenantry.tenant_imports`) and its slug locked; each database's tables are loaded in ONE
 * transaction (COPY FROM, rows checked to be the archived tenant's, ids remapped with `as`), the
 * archive's bytes checked against the manifest's SHA-256 and counts, and the rows read back and
 * compared with what was sent; then committed under a route nobody holds (the target refuses the
 * tenant until the switch); then the switch: the target database accepts the new route and the
 * catalog row and placement are inserted in one transaction. A crash before that leaves nothing
 * visible, and the next run removes what an earlier attempt committed.
 *
 * @example
 * const result = await importTenant({ file: 'acme.tenant', catalog: ownerPool, placements, as: 'acme-copy' });
 */
export async function importTenant(options: ImportTenantOptions): Promise<ImportResult> {
  const dataSchemas = (options.dataSchemas ?? ['public']).map((s) => validIdentifier(s, 'schema'));
  const progress = options.onProgress ?? (() => undefined);
  const step = options.onStep ?? (() => undefined);
  const catalog = new TenantCatalog(options.catalog);
  if (options.as !== undefined && !slugSchema.safeParse(options.as).success)
    throw new InvalidArgumentError('--as takes a slug: 1-63 of [a-z0-9-]', 'as');
  // before anything is read or written: a replace is the tenant over itself, never a new copy
  if (options.replace && options.as !== undefined)
    throw new ArchiveError(
      'IMPORT_REPLACE_UNSUPPORTED',
      '--replace restores the tenant over itself: it takes no --as (import --as alone makes a copy)',
    );
  // where exports are written: what a killed one left there goes first
  await sweepStaleWorkFolders(path.dirname(path.resolve(options.file)), staleWorkMs(options.staleWorkMinutes));
  const archive = await ArchiveReader.open(options.file);
  let signature: ArchiveSignatureCheck;
  try {
    // before anything else: an edited manifest (and so any table it vouches for) goes no further
    signature = await verifyArchiveManifest(
      options.catalog,
      archive.manifestBytes,
      archive.signature,
      options.allowUnsigned,
    );
  } catch (error) {
    archive.close();
    throw error;
  }
  const journal = await ImportJournal.open(options.catalog);
  try {
    const manifest = archive.manifest;
    const slug = options.as ?? manifest.tenant.slug;
    const fresh = options.as !== undefined;
    await journal.lock(slug);
    const bySlug = await catalog.find(slug);
    const byId = fresh ? undefined : await catalog.find(manifest.tenant.id);
    const existing = byId ?? bySlug;
    if (existing && !options.replace)
      throw new ArchiveError(
        'IMPORT_TENANT_EXISTS',
        `A tenant with this ${byId ? 'id' : 'slug'} exists: pass --replace to overwrite it, or --as <new-slug>`,
        {
          details: { slug },
        },
      );
    if (existing && (fresh || existing.id !== manifest.tenant.id || (bySlug && bySlug.id !== existing.id)))
      throw new ArchiveError(
        'IMPORT_REPLACE_UNSUPPORTED',
        '--replace restores a tenant over itself (same id); another tenant holds this slug: delete it first, or import --as another slug',
        { details: { slug } },
      );
    // where it lives, or IMPORT_REPLACE_UNSUPPORTED: checked before its status (an unsupported ask whatever the status)
    const replacing = existing ? await replaceTarget(options, existing.id) : undefined;
    if (existing?.status === 'active')
      throw new ArchiveError('IMPORT_TENANT_ACTIVE', 'The tenant to replace is active: suspend it first', {
        details: { slug },
      });
    const tenantId = existing?.id ?? (fresh ? randomUUID() : manifest.tenant.id);
    // an earlier attempt of this slug that died first (its rows, claim or route left in its target):
    // cleaned before the target is judged, or they would make the same target look like another
    // tenant's and the same command could never run again (try-out of issue 11)
    await journal.abandonOpen(slug, async (open) => removeLeftovers(options.placements, open, dataSchemas));
    const target = replacing ?? (await newTarget(options, manifest, slug, tenantId, dataSchemas));
    const importId = await journal.start({
      tenantId,
      slug,
      manifestSha256: archive.manifestSha256,
      target,
      replace: !!existing,
      signature,
    });
    try {
      if (!existing) await options.prepareTarget?.(target, tenantId);
      await requireInstall(options.placements, target);
      const sites = await tableSites(options.placements, target, dataSchemas);
      const plan = planLoad(manifest, sites);
      const libraryTargets = await planLibraryLoad(options.catalog, manifest.libraryTables);
      const version = await appMigrationVersion(options.placements.ownerPool(target), target);
      if (manifest.appMigrationVersion !== null && version !== null && version < manifest.appMigrationVersion)
        throw new ArchiveError(
          'IMPORT_VERSION_MISMATCH',
          `The archive was made at migration version ${manifest.appMigrationVersion}; the target is at ${version}: migrate it first`,
          { details: { archive: manifest.appMigrationVersion, target: version } },
        );
      await step('loading');
      const {
        bytes: loaded,
        library,
        foreignKeyChecks,
        rebuilt,
      } = await load(archive, plan, sites, manifest, {
        replicaLoad: options.replicaLoad ?? true,
        indexRebuild: options.indexRebuild ?? true,
        tenantId,
        from: manifest.tenant.id,
        remap: fresh ? new IdRemap() : undefined,
        guard: existing ? undefined : target,
        progress,
        step,
      });
      await journal.advance(importId, 'loaded');
      await step('switching');
      progress({ step: 'switching' });
      // the settings, flags and brand reference the catalog row: they commit with it
      const loadLibrary = (client: pg.ClientBase) =>
        loadLibraryTables(client, library, libraryTargets, { from: manifest.tenant.id, to: tenantId });
      const tenant = existing
        ? await journal.finishReplace(importId, existing.id, manifest, loadLibrary)
        : await journal.finishNew(importId, {
            tenantId,
            slug,
            manifest,
            target,
            placements: options.placements,
            loadLibrary,
          });
      return {
        importId,
        tenant,
        placement: target,
        tables: plan.map((p) => ({
          name: p.archived.name,
          rows: p.archived.rows,
          indexes: rebuilt.has(p.table) ? ('rebuilt' as const) : ('per-row' as const),
        })),
        libraryTables: manifest.libraryTables.map((t) => ({ name: t.name, rows: t.rows })),
        bytes: loaded,
        replaced: !!existing,
        signature,
        foreignKeyChecks,
        indexes: summary(
          plan.map((p) => rebuilt.has(p.table)),
          'rebuilt',
          'per-row',
        ),
      };
    } catch (error) {
      // closed as failed, with its reason, once what it committed for an unseen tenant is gone
      await journal.fail(importId, error, (open) => removeLeftovers(options.placements, open, dataSchemas));
      throw error;
    }
  } finally {
    archive.close();
    await journal.close();
  }
}

async function replaceTarget(options: ImportTenantOptions, tenantId: string): Promise<Required<PlacementTarget>> {
  const now = await options.placements.get(tenantId);
  const where = { tier: now.tier, cluster: now.cluster, database: now.database, schema: now.schema };
  if (options.to) {
    const refuse = () =>
      new ArchiveError(
        'IMPORT_REPLACE_UNSUPPORTED',
        '--replace restores the tenant where it lives: move it with `tenantry tenants move` afterwards',
      );
    // another tier is another placement: refused as such, before its schema or database is asked for
    if (options.to.tier !== undefined && options.to.tier !== where.tier) throw refuse();
    const asked = normalizeTarget({
      tier: where.tier,
      cluster: options.to.cluster ?? 'home',
      schema: where.tier === 'schema' ? (options.to.schema ?? where.schema) : null,
      database: where.tier === 'database' ? (options.to.database ?? where.database) : null,
    });
    if (!samePlacement(where, asked)) throw refuse();
  }
  return where;
}

async function newTarget(
  options: ImportTenantOptions,
  manifest: ArchiveManifest,
  slug: string,
  tenantId: string,
  dataSchemas: string[],
): Promise<Required<PlacementTarget>> {
  const tier = options.to?.tier ?? manifest.tenant.placement.tier;
  const base = slug.replaceAll('-', '_');
  const target = normalizeTarget({
    tier,
    cluster: options.to?.cluster ?? 'home',
    schema: tier === 'schema' ? (options.to?.schema ?? `t_${base}`) : null,
    database: tier === 'database' ? (options.to?.database ?? `tenant_${base}`) : null,
  });
  if (target.tier !== 'shared') {
    const { rows } = await options.catalog.query(
      `select from tenantry.placements where cluster = $1 and coalesce(database, '') = $2 and coalesce(schema, '') = $3 limit 1`,
      [target.cluster, target.database ?? '', target.schema ?? ''],
    );
    if (rows.length)
      throw new ArchiveError('IMPORT_TARGET_TAKEN', 'Another tenant lives in that schema or database', {
        details: {
          schema: target.schema,
          database: target.database,
          reason: target.database ? 'tenant_database' : 'tenant_schema',
        },
      });
    // the catalog, a shared database or data schema, another tenant's place: refused before anything changes
    const shared = await findSharedTarget({
      placements: options.placements,
      catalog: options.catalog,
      tenantId,
      target,
      dataSchemas,
    });
    if (shared)
      throw new ArchiveError('IMPORT_TARGET_TAKEN', `${shared.message}: import the tenant into a place of its own`, {
        details: { schema: target.schema, database: target.database, reason: shared.reason },
      });
  }
  return target;
}

/** The target database has Tenantry installed (its registry of tenant tables), or IMPORT_TARGET_NOT_INSTALLED. */
async function requireInstall(placements: Placements, target: Required<PlacementTarget>): Promise<void> {
  // a database that does not exist (3D000) is not installed either: the same answer and hint
  const rows = await placements
    .ownerPool(target)
    .query<{ ok: boolean }>(`select to_regclass('tenantry.registered_tables') is not null as ok`)
    .then(
      (r) => r.rows,
      (error: unknown) => {
        if (sqlStateOf(error) === SqlState.invalidCatalogName) return [];
        throw error;
      },
    );
  if (!rows[0]?.ok)
    throw new ArchiveError(
      'IMPORT_TARGET_NOT_INSTALLED',
      `Tenantry is not installed in ${target.database ? `database ${target.database}` : 'the target database'}: install it there first (tenantry install), or pass --ddl to create a new database`,
      { details: { cluster: target.cluster, database: target.database } },
    );
}

/** Pairs each archived table with the target's table of the same name (pinned ones at home). */
function planLoad(manifest: ArchiveManifest, sites: TableSite[]): PlannedTable[] {
  return manifest.tables.map((archived) => {
    const candidates = sites.flatMap((site) => site.tables.map((table) => ({ site, table })));
    const found =
      candidates.find((c) => c.table.name === archived.name && c.table.pinned === archived.pinned) ??
      candidates.find((c) => c.table.name === archived.name);
    if (!found)
      throw new ArchiveError('IMPORT_SCHEMA_MISMATCH', `The target has no registered tenant table ${archived.name}`, {
        details: { table: archived.name },
      });
    const have = new Set(found.table.columns.map((c) => c.name));
    const missing = archived.columns.find((c) => !have.has(c.name));
    if (missing)
      throw new ArchiveError(
        'IMPORT_SCHEMA_MISMATCH',
        `Table ${archived.name} at the target has no column ${missing.name}`,
        {
          details: { table: archived.name, column: missing.name },
        },
      );
    if (found.table.tenantColumn !== archived.tenantColumn)
      throw new ArchiveError(
        'IMPORT_SCHEMA_MISMATCH',
        `Table ${archived.name} has another tenant column at the target`,
        {
          details: { table: archived.name },
        },
      );
    return { archived, ...found };
  });
}

/** Deletes what an abandoned attempt committed for a tenant the catalog never showed. */
async function removeLeftovers(
  placements: Placements,
  open: { tenantId: string; target: Required<PlacementTarget>; replace: boolean },
  dataSchemas: string[],
): Promise<void> {
  // a replace's rows are the tenant's (reloaded whole by the next run); a new tenant's are invisible leftovers
  if (open.replace) return;
  const sites = await tableSites(placements, open.target, dataSchemas).catch(() => []);
  for (const site of sites) await deleteTenantRows(site.pool, site.tables, open.tenantId);
  const pool = placements.ownerPool(open.target);
  await pool.query('delete from tenantry.local_tenants where tenant_key = $1', [open.tenantId]).catch(() => undefined);
  // the schema's claim for the abandoned tenant id (a re-run with --as draws another id)
  if (open.target.schema)
    await pool
      .query('delete from tenantry.tenant_schemas where schema = $1 and tenant_id = $2', [
        open.target.schema,
        open.tenantId,
      ])
      .catch(() => undefined);
}
