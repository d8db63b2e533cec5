import { z } from 'zod';
import { ArchiveError } from './archive-error.js';

/** The format name every archive's manifest carries. */
export const ARCHIVE_FORMAT = 'tenantry-tenant-archive';
/** The version of the archive layout this library writes and reads. */
export const ARCHIVE_VERSION = 1;
/** The manifest's name inside the archive: always its first entry. */
export const MANIFEST_ENTRY = 'manifest.json';
/** The largest manifest an import reads (it lists tables, not rows). */
export const MANIFEST_MAX_BYTES = 8 * 1024 * 1024;

const name = z.string().min(1).max(63);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);

const tableSchema = z.object({
  /** The table's name without schema: how the import finds it at the target. */
  name,
  /** Pinned (`tenantry.pin_tenant_table`): lives in the home database whatever the tier. */
  pinned: z.boolean(),
  tenantColumn: name,
  columns: z.array(z.object({ name, type: z.string().min(1).max(200) })).min(1),
  /** Primary key columns. */
  key: z.array(name),
  /**
   * Columns that hold globally unique ids given fresh values by a restore-as-new (`--as`): uuid
   * primary key columns, and every column referencing one of them (foreign keys among the
   * archive's tables). A key column that references a table outside the archive keeps its value.
   */
  remap: z.array(name),
  /** The archive entry holding the rows (COPY text format, gzip). */
  file: z.string().regex(/^data\/[0-9]{4}-[a-z0-9_]{1,63}\.copy\.gz$/),
  rows: z.number().int().nonnegative(),
  /** Bytes of the rows in COPY text format, before compression. */
  bytes: z.number().int().nonnegative(),
  /** SHA-256 of those bytes. */
  sha256,
});

/** The manifest: everything an import checks before and after loading a single row. */
export const manifestSchema = z.object({
  format: z.literal(ARCHIVE_FORMAT),
  version: z.number().int(),
  createdAt: z.string(),
  tenant: z.object({
    id: uuid,
    slug: z.string().min(1).max(63),
    name: z.string().min(1).max(200),
    status: z.enum(['active', 'suspended', 'deleted', 'provisioning']),
    settings: z.record(z.string(), z.unknown()),
    createdAt: z.string(),
    placement: z.object({
      tier: z.enum(['shared', 'schema', 'database']),
      cluster: z.string(),
      database: z.string().nullable(),
      schema: z.string().nullable(),
    }),
  }),
  /** The library schema of the source's home database: the highest migration applied per feature. */
  library: z.record(z.string(), z.number().int()),
  /** The application's migration version at the tenant's location (`tenantry migrate`), or null. */
  appMigrationVersion: z.number().int().nullable(),
  /** Tables in foreign-key order: parents first (the order the import loads them in). */
  tables: z.array(tableSchema),
  /**
   * The tenant's rows of the library's own owner-only tables (settings, flags, brand: see
   * lifecycle/export/library-tables.ts), after the data tables in the archive; loaded with the
   * catalog row at the switch. Absent in archives made before they travelled: none is loaded.
   */
  libraryTables: z.array(tableSchema).default([]),
});

export type ArchiveManifest = z.infer<typeof manifestSchema>;
export type ArchiveTable = ArchiveManifest['tables'][number];

/** Parses and checks a manifest's text; ARCHIVE_CORRUPT or ARCHIVE_VERSION_UNSUPPORTED. */
export function parseManifest(text: string): ArchiveManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ArchiveError('ARCHIVE_CORRUPT', 'The archive manifest is not JSON', { cause: error });
  }
  const format = (json as { format?: unknown; version?: unknown } | null)?.format;
  const version = (json as { version?: unknown } | null)?.version;
  if (format !== ARCHIVE_FORMAT)
    throw new ArchiveError('ARCHIVE_CORRUPT', 'Not a tenantry tenant archive (manifest format unknown)');
  if (version !== ARCHIVE_VERSION)
    throw new ArchiveError(
      'ARCHIVE_VERSION_UNSUPPORTED',
      `Archive format version ${String(version)} is not supported (this tenantry reads version ${ARCHIVE_VERSION})`,
      { details: { version, supported: ARCHIVE_VERSION } },
    );
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ArchiveError('ARCHIVE_CORRUPT', `The archive manifest is invalid at ${issue.path.join('.')}`, {
      details: { path: issue.path.join('.') },
    });
  }
  const files = new Set<string>();
  for (const t of [...parsed.data.tables, ...parsed.data.libraryTables]) {
    if (files.has(t.file)) throw new ArchiveError('ARCHIVE_CORRUPT', `The manifest lists ${t.file} twice`);
    files.add(t.file);
    const columns = new Set(t.columns.map((c) => c.name));
    for (const c of [t.tenantColumn, ...t.key, ...t.remap])
      if (!columns.has(c))
        throw new ArchiveError('ARCHIVE_CORRUPT', `The manifest names column ${c} that table ${t.name} lacks`, {
          details: { table: t.name, column: c },
        });
  }
  return parsed.data;
}
