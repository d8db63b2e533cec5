import path from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type pg from 'pg';
import type { Queryable } from '../../catalog/tenant-catalog.js';
import { ident } from '../../tiers/move/move-tables.js';
import { ArchiveError } from './archive-error.js';
import { archiveFailure, type ArchiveReader } from './archive-reader.js';
import type { ArchiveTable } from './manifest.js';
import { StreamDigest } from './row-digest.js';
import { loadTable, verifyTable } from './table-loader.js';
import type { TransferProgress } from './tenant-exporter.js';
import { COPY_SETTINGS, copyTableToFile, TABLE_SHAPE_COLUMNS, type TenantTable } from './tenant-tables.js';

/**
 * The library's own tenant tables that travel with a tenant (owner-only, in the home database):
 * its settings overrides and their history, its feature flag overrides (plugin enablement is the
 * `plugins.<name>` flags) and their change log, its brand, the brand's history and logos. Each
 * references `tenantry.tenants`, so an import loads them in the switch's catalog transaction,
 * with the tenant row. Not here (see docs/export-import.md): credentials (sessions, API keys,
 * one-time codes), domains, staff grants and the audit log, the ledgers of jobs, metering and
 * limits, and the deployment-wide flag rows (`tenant_id` null).
 */
export const PORTABLE_LIBRARY_TABLES: readonly { name: string; omit?: string[] }[] = Object.freeze([
  { name: 'tenant_settings_heads' },
  { name: 'tenant_settings' },
  { name: 'tenant_settings_history' },
  { name: 'tenant_flags' },
  // `id` is a deployment-wide identity: the target draws new ones (in the archive's order)
  { name: 'flag_changes', omit: ['id'] },
  { name: 'tenant_brand_logos' },
  { name: 'tenant_brands' },
  { name: 'tenant_brand_history' },
]);

const SCHEMA = 'tenantry_private';
/** The most an import holds of the library tables' entries (compressed) until the switch. */
export const LIBRARY_ENTRIES_MAX_BYTES = 128 * 1024 * 1024;

/** The portable library tables present in the database `db` is connected to, as export and import see them. */
export async function libraryTenantTables(db: Queryable): Promise<TenantTable[]> {
  const { rows } = await db.query<Omit<TenantTable, 'qualified' | 'pinned'> & { key: string[] | null }>(
    `select c.oid::int as oid, n.nspname as schema, c.relname as name, 'tenant_id' as "tenantColumn",
            ${TABLE_SHAPE_COLUMNS}
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = $1 and c.relname = any($2) and c.relkind in ('r', 'p')`,
    [SCHEMA, PORTABLE_LIBRARY_TABLES.map((t) => t.name)],
  );
  const byName = new Map(rows.map((r) => [r.name, r]));
  return PORTABLE_LIBRARY_TABLES.flatMap(({ name, omit = [] }) => {
    const r = byName.get(name);
    if (!r) return [];
    return [
      {
        ...r,
        pinned: false,
        key: r.key ?? [],
        columns: r.columns.filter((c) => !omit.includes(c.name)),
        qualified: `${ident(r.schema)}.${ident(r.name)}`,
      },
    ];
  });
}

/**
 * Writes the tenant's rows of the portable library tables (one REPEATABLE READ snapshot of the
 * home database) to gzip files in `work`, numbered after the data tables; returns their manifest entries.
 */
export async function exportLibraryTables(input: {
  catalog: pg.Pool;
  tenantId: string;
  work: string;
  firstNumber: number;
  compressionLevel: number;
  progress: (p: TransferProgress) => void;
}): Promise<ArchiveTable[]> {
  const client = await input.catalog.connect();
  const out: ArchiveTable[] = [];
  try {
    await client.query('begin isolation level repeatable read read only');
    await client.query(COPY_SETTINGS);
    for (const t of await libraryTenantTables(client)) {
      const file = `data/${String(input.firstNumber + out.length).padStart(4, '0')}-${t.name}.copy.gz`;
      const columns = t.columns.map((c) => c.name);
      const facts = await copyTableToFile({
        client,
        table: t,
        columns,
        tenantId: input.tenantId,
        path: path.join(input.work, path.basename(file)),
        compressionLevel: input.compressionLevel,
        progress: (rows) => input.progress({ step: 'exporting', table: t.name, rows }),
      });
      // the key only where all its columns travel (flag_changes' id does not)
      const key = t.key.every((k) => columns.includes(k)) ? t.key : [];
      out.push({
        name: t.name,
        pinned: false,
        tenantColumn: 'tenant_id',
        columns: t.columns,
        key,
        remap: [],
        file,
        ...facts,
      });
    }
    await client.query('commit');
  } finally {
    client.release();
  }
  return out;
}

/** A library table's entry, read from the archive and held (compressed) until the switch. */
export interface HeldLibraryTable {
  archived: ArchiveTable;
  gz: Buffer;
}

/**
 * Reads the library tables' entries (the archive's last ones) into memory, bounded, each checked
 * against the manifest (gunzipped on the way: a cut entry is ARCHIVE_TRUNCATED here, not at the switch).
 */
export async function readLibraryEntries(archive: ArchiveReader, tables: ArchiveTable[]): Promise<HeldLibraryTable[]> {
  const held: HeldLibraryTable[] = [];
  let total = 0;
  for (const archived of tables) {
    const chunks: Buffer[] = [];
    const keep = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        total += chunk.length;
        if (total > LIBRARY_ENTRIES_MAX_BYTES)
          return done(
            new ArchiveError('ARCHIVE_CORRUPT', 'The library tables of the archive are too large', {
              details: { table: archived.name },
            }),
          );
        chunks.push(chunk);
        done(null, chunk);
      },
    });
    const digest = new StreamDigest();
    try {
      await pipeline(
        await archive.next(archived.file),
        keep,
        createGunzip(),
        digest,
        new Writable({ write: (_c, _e, done) => done() }),
      );
    } catch (error) {
      throw archiveFailure(error);
    }
    const facts = digest.facts();
    if (facts.rows !== archived.rows || facts.bytes !== archived.bytes || facts.sha256 !== archived.sha256)
      throw new ArchiveError(
        'ARCHIVE_TABLE_MISMATCH',
        `Table ${archived.name} does not match the manifest (rows, size or SHA-256): the archive was altered or damaged`,
        { details: { table: archived.name, rows: facts.rows, expectedRows: archived.rows } },
      );
    held.push({ archived, gz: Buffer.concat(chunks) });
  }
  return held;
}

/** Checks that the target's home database has every archived library table and column (IMPORT_SCHEMA_MISMATCH). */
export async function planLibraryLoad(catalog: Queryable, tables: ArchiveTable[]): Promise<Map<string, TenantTable>> {
  const present = new Map((await libraryTenantTables(catalog)).map((t) => [t.name, t]));
  for (const archived of tables) {
    const target = present.get(archived.name);
    if (!target || archived.tenantColumn !== 'tenant_id')
      throw new ArchiveError('IMPORT_SCHEMA_MISMATCH', `The target has no library table ${archived.name}`, {
        details: { table: archived.name },
      });
    const have = new Set(target.columns.map((c) => c.name));
    const missing = archived.columns.find((c) => !have.has(c.name));
    if (missing)
      throw new ArchiveError(
        'IMPORT_SCHEMA_MISMATCH',
        `Table ${archived.name} at the target has no column ${missing.name}`,
        {
          details: { table: archived.name, column: missing.name },
        },
      );
  }
  return present;
}

/**
 * Loads the held library tables in the switch's catalog transaction (`client`, begun, after the
 * tenant's row exists): the tenant's rows there are deleted first (a replace), then each entry is
 * loaded as a data table is (rows checked to be the archived tenant's, given the target id;
 * bytes checked against the manifest) and read back.
 */
export async function loadLibraryTables(
  client: pg.ClientBase,
  held: HeldLibraryTable[],
  targets: Map<string, TenantTable>,
  ids: { from: string; to: string },
): Promise<void> {
  if (held.length === 0) return;
  await client.query(COPY_SETTINGS);
  // only the tables the archive carries: an older archive's restore keeps the others as they are
  for (const h of [...held].reverse())
    await client.query(`delete from ${targets.get(h.archived.name)!.qualified} where tenant_id = $1`, [ids.to]);
  for (const h of held) {
    const loaded = await loadTable(
      Readable.from([h.gz]),
      { archived: h.archived, target: targets.get(h.archived.name)!, client },
      { from: ids.from, to: ids.to, remap: undefined },
      () => undefined,
    );
    await verifyTable(loaded, ids.to);
  }
}
