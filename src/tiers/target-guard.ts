import type pg from 'pg';
import type { Queryable } from '../catalog/tenant-catalog.js';
import { SqlState, sqlStateOf } from '../errors/sqlstate.js';
import { quoteIdent } from '../policy/identifiers.js';
import type { PlacementTarget, Placements } from './placements.js';

/**
 * Why a schema or database cannot take a tenant by import or move: it is someone else's.
 *
 * - `catalog_database`: the home database (it holds the catalog, `tenantry.tenants`).
 * - `shared_database`: a cluster's shared database (it serves the shared tier).
 * - `tenant_database`: a database serving other tenants (routes, claimed schemas, placements).
 * - `reserved_schema`: PostgreSQL's or Tenantry's own schema.
 * - `data_schema`: a schema of the shared tier's tables (`tenantry.meta` data_schemas, or `dataSchemas`).
 * - `shared_tables`: a schema holding shared (global) tables.
 * - `tenant_schema`: a schema claimed by, or placed for, another tenant.
 * - `tenant_rows`: a table there holds rows of another tenant.
 * - `system_database`: a template database (`template0`, `template1`, any `datistemplate`: every
 *   database created later copies it), one that takes no connections, or `postgres`.
 */
export type SharedTargetReason =
  | 'catalog_database'
  | 'shared_database'
  | 'tenant_database'
  | 'reserved_schema'
  | 'data_schema'
  | 'shared_tables'
  | 'tenant_schema'
  | 'tenant_rows'
  | 'system_database';

/** A refused target: why, and a message that names the schema or database only. */
export interface SharedTarget {
  reason: SharedTargetReason;
  message: string;
}

/** Schemas that are never a tenant's, whatever the database says: PostgreSQL's and Tenantry's own. */
const SYSTEM_SCHEMAS = /^(pg_.*|information_schema|tenantry.*)$/;

/**
 * Whether `target` is a place only `tenantId` may take: a schema or database of its own, not the
 * catalog, a shared database, a data schema, or a place holding another tenant. Read-only; asked
 * by `importTenant` and `TenantMover.start` before they change anything (a crafted target there
 * once turned every shared tenant's route stale, claimed `public` for one tenant, and let a purge
 * drop the home database). Returns null when the target is free; a target database that does not
 * exist yet is free (a prepare step creates it).
 */
export async function findSharedTarget(options: {
  placements: Placements;
  /** The home database (the catalog) as the owner role. */
  catalog: Queryable;
  tenantId: string;
  target: Required<PlacementTarget>;
  /** Schemas of the shared tier's tenant tables, as the caller knows them (default `['public']`). */
  dataSchemas?: string[];
}): Promise<SharedTarget | null> {
  const { placements, catalog, tenantId, target } = options;
  if (target.tier === 'shared') return null;
  const dataSchemas = options.dataSchemas ?? ['public'];
  const where = target.database ? `database ${target.database}` : `schema ${target.schema}`;
  if (target.schema !== null) {
    if (SYSTEM_SCHEMAS.test(target.schema))
      return { reason: 'reserved_schema', message: `Schema ${target.schema} is a system schema, not a tenant schema` };
    if (dataSchemas.includes(target.schema)) return dataSchema(target.schema);
  }
  // the catalog's view: another tenant placed in that database (any tier) or in that schema
  const { rows: placed } = await catalog.query(
    `select from tenantry.placements
      where tenant_id <> $1 and cluster = $2 and coalesce(database, '') = $3
        and ($4::text is null or database is not null or schema = $4)
      limit 1`,
    [tenantId, target.cluster, target.database ?? '', target.schema],
  );
  if (placed.length)
    return {
      reason: target.database ? 'tenant_database' : 'tenant_schema',
      message: `Another tenant lives in ${where}`,
    };
  if (target.database) {
    // asked of the cluster before connecting there: a template's rows would reach every database
    // created after it (try-out of issue 11: an import into template1 spread a tenant's rows into
    // every later tenant database), and template0 takes no connections at all
    const system = await systemDatabase(placements, target);
    if (system) return system;
  }
  const pool = placements.ownerPool(target);
  const fingerprint = await databaseFingerprint(pool).catch((error: unknown) => {
    // a database that does not exist yet is the tenant's to create
    if (target.database && sqlStateOf(error) === SqlState.invalidCatalogName) return null;
    throw error;
  });
  if (fingerprint === null) return null;
  if (target.database) {
    const shared = await sharedDatabaseOf(placements, fingerprint);
    if (shared)
      return shared === placements.homeCluster
        ? { reason: 'catalog_database', message: `Database ${target.database} is the home database (the catalog)` }
        : { reason: 'shared_database', message: `Database ${target.database} is the shared database of a cluster` };
  }
  return findInDatabase(pool, tenantId, target, dataSchemas, where);
}

/** The maintenance database every cluster has: never a tenant's. */
const MAINTENANCE_DATABASE = 'postgres';

async function systemDatabase(placements: Placements, target: Required<PlacementTarget>): Promise<SharedTarget | null> {
  const message = `Database ${target.database} is a template or system database, not a tenant database`;
  if (target.database === MAINTENANCE_DATABASE) return { reason: 'system_database', message };
  const cluster = placements.ownerPool({ tier: 'shared', cluster: target.cluster });
  const { rows } = await cluster.query<{ template: boolean; connectable: boolean }>(
    'select datistemplate as template, datallowconn as connectable from pg_catalog.pg_database where datname = $1',
    [target.database],
  );
  return rows[0] && (rows[0].template || !rows[0].connectable) ? { reason: 'system_database', message } : null;
}

function dataSchema(schema: string): SharedTarget {
  return {
    reason: 'data_schema',
    message: `Schema ${schema} is a data schema of the database (the shared tier's tables), not a tenant schema`,
  };
}

// what the target database itself holds: a catalog, other tenants' routes, claims and rows
async function findInDatabase(
  pool: pg.Pool,
  tenantId: string,
  target: Required<PlacementTarget>,
  dataSchemas: string[],
  where: string,
): Promise<SharedTarget | null> {
  const { rows: installed } = await pool.query<{ ok: boolean }>(
    `select to_regclass('tenantry.local_tenants') is not null and to_regclass('tenantry.meta') is not null as ok`,
  );
  if (!installed[0]?.ok) return null;
  const { rows } = await pool.query<{ catalog: boolean; claims: boolean; schemas: string | null }>(
    `select to_regclass('tenantry.tenants') is not null as catalog,
            to_regclass('tenantry.tenant_schemas') is not null as claims,
            (select value from tenantry.meta where key = 'data_schemas') as schemas`,
  );
  const state = rows[0]!;
  const has = async (sql: string, params: unknown[]) => (await pool.query(sql, params)).rows.length > 0;
  if (target.schema) {
    const local = (state.schemas || 'public').split(',').filter(Boolean);
    if (local.includes(target.schema) || dataSchemas.includes(target.schema)) return dataSchema(target.schema);
    if (
      state.claims &&
      (await has('select from tenantry.tenant_schemas where schema = $1 and tenant_id::text <> $2 limit 1', [
        target.schema,
        tenantId,
      ]))
    )
      return { reason: 'tenant_schema', message: `Schema ${target.schema} belongs to another tenant` };
    if (
      await has(
        `select from tenantry.registered_tables r join pg_class c on c.oid = r.relid
           join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and r.kind = 'global' limit 1`,
        [target.schema],
      )
    )
      return { reason: 'shared_tables', message: `Schema ${target.schema} holds shared tables` };
  } else {
    if (state.catalog && (await has('select from tenantry.tenants where id::text <> $1 limit 1', [tenantId])))
      return { reason: 'catalog_database', message: `Database ${target.database} holds a tenant catalog` };
    if (
      // `moved` rows are fences (a tenant moved away, or purged: its route refused everywhere), not tenants served
      (await has(`select from tenantry.local_tenants where tenant_key::text <> $1 and state <> 'moved' limit 1`, [
        tenantId,
      ])) ||
      (state.claims &&
        (await has('select from tenantry.tenant_schemas where tenant_id::text <> $1 limit 1', [tenantId])))
    )
      return { reason: 'tenant_database', message: `Database ${target.database} serves other tenants` };
  }
  // rows of another tenant in any table there with a tenant column (registered, or named tenant_id)
  const { rows: tables } = await pool.query<{ schema: string; name: string; column: string }>(
    `select n.nspname as schema, c.relname as name, coalesce(r.tenant_column, a.attname)::text as column
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       left join tenantry.registered_tables r on r.relid = c.oid and r.kind = 'tenant'
       left join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
      where c.relkind in ('r', 'p') and (r.relid is not null or a.attnum is not null)
        and n.nspname !~ '^(pg_|information_schema$|tenantry)'
        and ($1::text is null or n.nspname = $1)`,
    [target.schema],
  );
  for (const t of tables)
    if (
      await has(
        `select from ${quoteIdent(t.schema, 'schema')}.${quoteIdent(t.name, 'table')}
          where ${quoteIdent(t.column, 'column')}::text <> $1 limit 1`,
        [tenantId],
      )
    )
      return { reason: 'tenant_rows', message: `${where} holds rows of other tenants` };
  return null;
}

// the server's start and the database's oid: the same database whatever URL reached it
async function databaseFingerprint(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ f: string }>(
    `select pg_postmaster_start_time()::text || '/' || d.oid::text as f from pg_database d where d.datname = current_database()`,
  );
  return rows[0]!.f;
}

/** The cluster whose shared database has this fingerprint (unreachable clusters are skipped), or null. */
async function sharedDatabaseOf(placements: Placements, fingerprint: string): Promise<string | null> {
  for (const cluster of placements.clusters) {
    const shared = await databaseFingerprint(
      placements.ownerPool({ tier: 'shared', cluster, database: null, schema: null }),
    ).catch(() => null);
    if (shared === fingerprint) return cluster;
  }
  return null;
}
