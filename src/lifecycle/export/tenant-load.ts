import type pg from 'pg';
import { SqlState, sqlStateOf } from '../../errors/sqlstate.js';
import type { PlacementTarget } from '../../tiers/placements.js';
import { ident } from '../../tiers/move/move-tables.js';
import { ArchiveError } from './archive-error.js';
import type { ArchiveReader } from './archive-reader.js';
import type { IdRemap } from './id-remap.js';
import { beginIndexRebuild, finishIndexRebuild, type IndexRebuild } from './index-rebuild.js';
import { readLibraryEntries, type HeldLibraryTable } from './library-tables.js';
import type { ArchiveManifest } from './manifest.js';
import { beginReplicaLoad, endReplicaLoad, type ReplicaLoad } from './replica-load.js';
import { loadTable, verifyTable, type LoadTable, type LoadedTable } from './table-loader.js';
import type { TransferProgress } from './tenant-exporter.js';
import type { ImportResult, ImportTenantOptions } from './tenant-importer.js';
import type { TableSite } from './tenant-locations.js';
import { COPY_SETTINGS, planTables, type TenantTable } from './tenant-tables.js';

/** An archived table paired with the target's table of the same name, and the database it is in. */
export interface PlannedTable {
  archived: ArchiveManifest['tables'][number];
  site: TableSite;
  table: TenantTable;
}

/** What one load needs to know besides the archive and the plan. */
export interface LoadRun {
  tenantId: string;
  from: string;
  remap: IdRemap | undefined;
  /** A new tenant: the target refuses its route until the switch. */
  guard: Required<PlacementTarget> | undefined;
  replicaLoad: boolean;
  indexRebuild: boolean;
  progress: (p: TransferProgress) => void;
  step: NonNullable<ImportTenantOptions['onStep']>;
}

// One transaction per database: the tenant's rows there deleted (leftovers, or the tenant being
// replaced), the archive loaded and checked; all committed only when every table matched.
export async function load(
  archive: ArchiveReader,
  plan: PlannedTable[],
  sites: TableSite[],
  manifest: ArchiveManifest,
  run: LoadRun,
): Promise<{
  bytes: number;
  library: HeldLibraryTable[];
  foreignKeyChecks: ImportResult['foreignKeyChecks'];
  rebuilt: Set<TenantTable>;
}> {
  const clients = new Map<TableSite, pg.PoolClient>();
  const replica = new Map<TableSite, ReplicaLoad>();
  const rebuild = new Map<TableSite, IndexRebuild>();
  const loadedAt = (site: TableSite) => plan.filter((p) => p.site === site).map((p) => p.table);
  try {
    for (const site of sites) {
      const client = await site.pool.connect();
      clients.set(site, client);
      await client.query('begin');
      await client.query(COPY_SETTINGS);
      // the capture functions and app triggers skip what an import writes (its events are rows of the archive)
      await client.query(`select set_config('tenantry.moving', 'on', true)`);
      if (run.guard && site.where === run.guard && run.guard.schema)
        await claimSchema(client, run.guard.schema, run.tenantId);
      if (run.guard && site.where === run.guard)
        await client.query(
          `insert into tenantry.local_tenants (tenant_key, state, epoch, schema) values ($1, 'moved', 0, $2)
           on conflict (tenant_key) do update set state = 'moved', epoch = 0, schema = excluded.schema, updated_at = excluded.updated_at`,
          [run.tenantId, run.guard.schema],
        );
      await deleteTenantRows(client, site.tables, run.tenantId);
      // a new tenant's own schema or database: its empty tables loaded the pg_restore way (index-rebuild.ts)
      if (run.indexRebuild && run.guard && site.where === run.guard && run.guard.tier !== 'shared') {
        const own = loadedAt(site).filter((t) => !t.pinned && (!run.guard!.schema || t.schema === run.guard!.schema));
        const begun = await beginIndexRebuild(client, own);
        if (!('skipped' in begun)) rebuild.set(site, begun);
      }
      // after the deletes (their ON DELETE actions fire), before the first row goes in
      const fast = run.replicaLoad ? await beginReplicaLoad(client, loadedAt(site)) : undefined;
      if (fast) replica.set(site, fast);
    }
    const loaded: LoadedTable[] = [];
    let bytes = 0;
    for (const p of plan) {
      const entry = await archive.next(p.archived.file);
      const table: LoadTable = { archived: p.archived, target: p.table, client: clients.get(p.site)! };
      run.progress({ step: 'loading', table: p.archived.name, rows: 0, total: p.archived.rows });
      loaded.push(
        await loadTable(entry, table, { from: run.from, to: run.tenantId, remap: run.remap }, (rows) =>
          run.progress({ step: 'loading', table: p.archived.name, rows, total: p.archived.rows }),
        ),
      );
      bytes += p.archived.bytes;
    }
    // the library tables' entries come last: held (compressed, bounded) until the switch
    const library = await readLibraryEntries(archive, manifest.libraryTables);
    await archive.end();
    // the foreign keys the replica mode did not check row by row: checked whole, before anything is read back
    for (const [site, fast] of replica) await endReplicaLoad(clients.get(site)!, fast, loadedAt(site), run.tenantId);
    // then the indexes and keys dropped for the load, the foreign keys between the tables last (one check each)
    for (const [site, r] of rebuild) await finishIndexRebuild(clients.get(site)!, r, loadedAt(site));
    for (const l of loaded) {
      run.progress({
        step: 'verifying',
        table: l.table.archived.name,
        rows: l.table.archived.rows,
        total: l.table.archived.rows,
      });
      await verifyTable(l, run.tenantId);
    }
    for (const p of plan)
      await bumpSequences(
        clients.get(p.site)!,
        p.table,
        p.archived.columns.map((c) => c.name),
      );
    await run.step('verified');
    for (const client of clients.values()) await client.query('commit');
    // set-based where replica mode ran, or where the rebuild re-added every foreign key of the tables loaded
    const setBased = (s: TableSite) =>
      replica.has(s) || (rebuild.get(s)?.keptForeignKeys === 0 && rebuild.get(s)!.tables.length === loadedAt(s).length);
    const foreignKeyChecks = summary(sites.filter((s) => loadedAt(s).length).map(setBased), 'set-based', 'per-row');
    const rebuilt = new Set([...rebuild].flatMap(([s, r]) => loadedAt(s).filter((t) => r.tables.includes(t.oid))));
    return { bytes, library, foreignKeyChecks, rebuilt };
  } catch (error) {
    for (const client of clients.values()) await client.query('rollback').catch(() => undefined);
    throw error;
  } finally {
    for (const client of clients.values()) client.release();
  }
}

/** `all` when every flag is set, `none` when none is, else `mixed`. */
export function summary<A extends string, N extends string>(flags: boolean[], all: A, none: N): A | N | 'mixed' {
  return flags.every(Boolean) ? all : flags.some(Boolean) ? 'mixed' : none;
}

// ids loaded as they were must not be handed out again by the target's sequences
async function bumpSequences(client: pg.ClientBase, table: TenantTable, columns: string[]): Promise<void> {
  const { rows } = await client.query<{ column: string; sequence: string }>(
    `select c as column, pg_get_serial_sequence($1, c) as sequence from unnest($2::text[]) as c
      where pg_get_serial_sequence($1, c) is not null`,
    [table.qualified, columns],
  );
  for (const r of rows)
    await client.query(
      `select setval($1, greatest(m, nextval($1) - 1), true) from (select max("${r.column.replaceAll('"', '""')}") as m from ${table.qualified}) x where m is not null`,
      [r.sequence],
    );
}

/** Deletes a tenant's rows from tables of one database, children first. */
export async function deleteTenantRows(
  db: pg.Pool | pg.ClientBase,
  tables: TenantTable[],
  tenantId: string,
): Promise<void> {
  for (const t of (await planTables(db, tables)).reverse())
    await db.query(`delete from ${t.qualified} where ${ident(t.tenantColumn)} = $1`, [tenantId]);
}

/**
 * A tenant schema's tables refuse every other tenant's rows once claimed (tiers/003): the schema
 * is claimed for the imported tenant in the load's transaction (IMPORT_TARGET_TAKEN when it is
 * another tenant's). Skipped on a database installed before the guard existed.
 */
async function claimSchema(client: pg.ClientBase, schema: string, tenantId: string): Promise<void> {
  const { rows } = await client.query<{ ok: boolean }>(
    `select to_regprocedure('tenantry.claim_tenant_schema(text, uuid)') is not null as ok`,
  );
  if (!rows[0]?.ok) return;
  try {
    await client.query('savepoint claim');
    await client.query('select tenantry.claim_tenant_schema($1, $2)', [schema, tenantId]);
    await client.query('release savepoint claim');
  } catch (error) {
    if (sqlStateOf(error) === SqlState.tenantSchemaTaken)
      throw new ArchiveError('IMPORT_TARGET_TAKEN', `Schema ${schema} belongs to another tenant`, {
        details: { schema },
        cause: error,
      });
    throw error;
  }
}
