import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import tar from 'tar-stream';
import { TenantCatalog } from '../../catalog/tenant-catalog.js';
import { InvalidArgumentError } from '../../errors/tenantry-error.js';
import { appliedLibraryMigrations } from '../../policy/library-migrations.js';
import { validIdentifier } from '../../policy/identifiers.js';
import type { Placements } from '../../tiers/placements.js';
import {
  ARCHIVE_FORMAT,
  ARCHIVE_VERSION,
  MANIFEST_ENTRY,
  type ArchiveManifest,
  type ArchiveTable,
} from './manifest.js';
import { SIGNATURE_ENTRY, signArchiveManifest } from './archive-signature.js';
import { exportLibraryTables } from './library-tables.js';
import { appMigrationVersion, tableSites } from './tenant-locations.js';
import { createWorkFolder, sweepStaleWorkFolders } from './work-folders.js';
import { COPY_SETTINGS, copyTableToFile, planTables } from './tenant-tables.js';

/** Progress of an export or an import: the table being streamed and its rows so far. */
export interface TransferProgress {
  step: 'exporting' | 'packing' | 'loading' | 'verifying' | 'switching';
  table?: string;
  rows?: number;
  /** The table's rows in the manifest (import). */
  total?: number;
}

/** Options of {@link exportTenant}. */
export interface ExportTenantOptions {
  /** The home database (the catalog) as the owner role. */
  catalog: pg.Pool;
  /** Owner pools per location (the tenant is read wherever it lives). */
  placements: Placements;
  /** Tenant id or slug, whatever its status. */
  tenant: string;
  /** The archive to write (replaced atomically: written next to it, then renamed). */
  out: string;
  /** Schemas of the shared tier's tenant tables (default `['public']`). */
  dataSchemas?: string[];
  /** gzip level, 1 (fastest) to 9 (smallest); default 3. */
  compressionLevel?: number;
  /**
   * Work folders (`.tenantry-export-*`) next to `out` that an export killed with -9 left behind
   * are removed first when older than this many minutes and not locked by a live process (default 30).
   */
  staleWorkMinutes?: number;
  onProgress?: (progress: TransferProgress) => void;
}

/** What an export wrote. */
export interface ExportResult {
  file: string;
  manifest: ArchiveManifest;
  /** Size of the archive file. */
  archiveBytes: number;
}

/**
 * Writes one tenant to a portable archive: a tar whose first entry is `manifest.json` (library
 * schema, the app's migration version, the tenant's catalog row, the tables in foreign-key order
 * with their columns, row counts, byte counts and a SHA-256 each), then `manifest.sig` (the
 * manifest's HMAC-SHA256 with the deployment's archive key), then one gzip entry per table
 * holding the tenant's rows in COPY text format. Every table of a database is read in one
 * REPEATABLE READ snapshot, as the owner role, `COPY (select … where tenant = '<id>') TO STDOUT`
 * streamed to a temporary file (tar needs each entry's size first), so memory stays bounded
 * whatever the tenant's size. The tenant's rows of the library's settings, flags and brand tables
 * follow the data tables. Identity rows (sessions, API keys, one-time codes, domains, staff
 * grants, the audit log) are not exported: see docs/export-import.md.
 *
 * @example
 * await exportTenant({ catalog: ownerPool, placements, tenant: 'acme', out: 'acme.tenant' });
 */
export async function exportTenant(options: ExportTenantOptions): Promise<ExportResult> {
  const dataSchemas = (options.dataSchemas ?? ['public']).map((s) => validIdentifier(s, 'schema'));
  const progress = options.onProgress ?? (() => undefined);
  const tenant = await new TenantCatalog(options.catalog).get(options.tenant);
  const placement = await options.placements.get(tenant.id);
  const sites = await tableSites(options.placements, placement, dataSchemas);
  const out = path.resolve(options.out);
  await sweepStaleWorkFolders(path.dirname(out), staleWorkMs(options.staleWorkMinutes));
  // the temporary files go next to the archive: the final rename stays on one file system
  const work = await createWorkFolder(path.dirname(out)).catch((error: unknown) => {
    throw new InvalidArgumentError(`Cannot write next to ${out}: ${(error as Error).message}`, 'out');
  });
  try {
    const tables: ArchiveTable[] = [];
    let appVersion: number | null = null;
    for (const site of sites) {
      const client = await site.pool.connect();
      try {
        await client.query('begin isolation level repeatable read read only');
        await client.query(COPY_SETTINGS);
        if (site.where === placement || sites.length === 1) appVersion = await appMigrationVersion(client, placement);
        for (const t of await planTables(client, site.tables)) {
          const file = `data/${String(tables.length + 1).padStart(4, '0')}-${t.name.toLowerCase().replace(/[^a-z0-9_]/g, '_')}.copy.gz`;
          const columns = t.columns.map((c) => c.name);
          const facts = await copyTableToFile({
            client,
            table: t,
            columns,
            tenantId: tenant.id,
            path: path.join(work, path.basename(file)),
            compressionLevel: options.compressionLevel ?? 3,
            progress: (rows) => progress({ step: 'exporting', table: t.name, rows }),
          });
          tables.push({
            name: t.name,
            pinned: t.pinned,
            tenantColumn: t.tenantColumn,
            columns: t.columns,
            key: t.key,
            remap: t.remap,
            file,
            ...facts,
          });
        }
        await client.query('commit');
      } finally {
        client.release();
      }
    }
    // the tenant's settings, flags and brand: the library's owner-only tables in the home database
    const libraryTables = await exportLibraryTables({
      catalog: options.catalog,
      tenantId: tenant.id,
      work,
      firstNumber: tables.length + 1,
      compressionLevel: options.compressionLevel ?? 3,
      progress,
    });
    const library: Record<string, number> = {};
    for (const m of await appliedLibraryMigrations(options.catalog))
      library[m.feature] = Math.max(library[m.feature] ?? 0, m.version);
    const manifest: ArchiveManifest = {
      format: ARCHIVE_FORMAT,
      version: ARCHIVE_VERSION,
      createdAt: new Date().toISOString(),
      tenant: {
        id: tenant.id,
        slug: tenant.slug,
        name: tenant.name,
        status: tenant.status,
        settings: tenant.settings,
        createdAt: tenant.createdAt.toISOString(),
        placement: {
          tier: placement.tier,
          cluster: placement.cluster,
          database: placement.database,
          schema: placement.schema,
        },
      },
      library,
      appMigrationVersion: appVersion,
      tables,
      libraryTables,
    };
    progress({ step: 'packing' });
    const partial = path.join(work, 'archive.tar');
    const text = Buffer.from(JSON.stringify(manifest, null, 2));
    // signed with the deployment's archive key: an import refuses an edited manifest, and the
    // manifest vouches for every table's bytes
    const signature = await signArchiveManifest(options.catalog, text);
    await writeTar(partial, manifest, text, signature, work);
    await rename(partial, out);
    return { file: out, manifest, archiveBytes: (await stat(out)).size };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** `staleWorkMinutes` in ms: a whole number of minutes from 1 to 10080 (a week), default 30. */
export function staleWorkMs(minutes = 30): number {
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 10_080)
    throw new InvalidArgumentError(
      'staleWorkMinutes must be a whole number of minutes from 1 to 10080',
      'staleWorkMinutes',
    );
  return minutes * 60_000;
}

// manifest first (the import checks it before loading anything), then the tables in order
async function writeTar(
  file: string,
  manifest: ArchiveManifest,
  text: Buffer,
  signature: string,
  work: string,
): Promise<void> {
  const pack = tar.pack();
  // the archive holds the tenant's data (members' emails too): readable by its owner only
  const written = pipeline(pack, createWriteStream(file, { mode: 0o600 }));
  const addEntry = (name: string, size: number, body: NodeJS.ReadableStream | Buffer) =>
    new Promise<void>((resolve, reject) => {
      const entry = pack.entry({ name, size, mode: 0o644, mtime: new Date(manifest.createdAt) }, (error) =>
        error ? reject(error) : resolve(),
      );
      if (Buffer.isBuffer(body)) entry.end(body);
      else pipeline(body, entry).catch(reject);
    });
  try {
    await addEntry(MANIFEST_ENTRY, text.length, text);
    const sig = Buffer.from(signature);
    await addEntry(SIGNATURE_ENTRY, sig.length, sig);
    for (const t of [...manifest.tables, ...manifest.libraryTables]) {
      const local = path.join(work, path.basename(t.file));
      await addEntry(t.file, (await stat(local)).size, createReadStream(local));
    }
    pack.finalize();
  } catch (error) {
    pack.destroy(error as Error);
  }
  await written;
}
