import type pg from 'pg';
import type { Queryable } from '../../catalog/tenant-catalog.js';
import { listMigrationTargets } from '../../tiers/migrate/migration-target.js';
import { Placements, type Placement } from '../../tiers/placements.js';
import { findSharedTarget } from '../../tiers/target-guard.js';
import { PurgeError } from './purge-error.js';
import type { PurgeDatabases } from './purge-databases.js';
import type { PurgeParticipant } from './purge-participant.js';
import type { AuditPolicy } from './purge-policy.js';

/** What a step of a purge works on. */
export type PurgeStepKind = 'fence' | 'participant' | 'table' | 'library' | 'schema' | 'database' | 'catalog';

/**
 * What it does: `delete` rows in batches, `anonymise` or `keep` audit entries, `drop` a schema or
 * database, `dropped` a table that goes with its schema or database, `fence` the tenant's route,
 * `purge` through a participant.
 */
export type PurgeAction = 'delete' | 'anonymise' | 'keep' | 'drop' | 'dropped' | 'fence' | 'purge';

/** One step of a purge plan, and (after the run) its outcome. */
export interface PurgeStep {
  /** Stable within a plan: `kind:cluster/database:table` (or the participant's name). */
  key: string;
  kind: PurgeStepKind;
  action: PurgeAction;
  cluster: string | null;
  database: string | null;
  schema: string | null;
  /** `schema.table`, as PostgreSQL spells it. */
  table: string | null;
  /** A participant's name. */
  name: string | null;
  /** The rows are those whose `column` is one of `values` (the tenant's id; a migration target; move ids). */
  column: string | null;
  values: string[];
  valueType: 'uuid' | 'text';
  /** Rows (tables), items (participants), tables (schema, database) or databases (fence) when the purge began. */
  rowsBefore: number;
  /** Counted again after the run: 0, or null before it. */
  rowsAfter: number | null;
  done: boolean;
}

/** A table with a `tenant_id` column that nothing purges: the purge refuses to run while there is one. */
export interface UnaccountedTable {
  cluster: string;
  database: string;
  table: string;
}

/** What a purge would do (the dry run) and what it found nobody accounts for. */
export interface PurgeScan {
  steps: PurgeStep[];
  unaccounted: UnaccountedTable[];
  /** Clusters whose superuser URL the purge needs (to drop a database) and was not given. */
  missingAdmins: string[];
}

interface LibraryTable {
  table: string;
  column: string;
  /** the column's type when not uuid (the tenant's id as text) */
  valueType?: 'text';
  /** the audit log: its action is the policy's */
  audit?: boolean;
  /** removed with the audit entries (delete, anonymise), kept with them (keep) */
  auditCounter?: boolean;
  /** accounted for, purged by the catalog step or kept on purpose */
  noStep?: boolean;
}

/**
 * Tenantry's own tables with a tenant column, in deletion order. `tenantry.placements` goes with
 * the catalog row (the last step); `tenantry.purges` is the purge's own record, kept as the proof.
 */
export const LIBRARY_TENANT_TABLES: readonly LibraryTable[] = Object.freeze([
  { table: 'tenantry_private.staff_grants', column: 'tenant_id' },
  { table: 'tenantry_private.sessions', column: 'tenant_id' },
  { table: 'tenantry_private.one_time_codes', column: 'tenant_id' },
  { table: 'tenantry_private.api_keys', column: 'tenant_id' },
  { table: 'tenantry_private.domains', column: 'tenant_id' },
  { table: 'tenantry.audit_log', column: 'tenant_id', audit: true },
  { table: 'tenantry_private.audit_counters', column: 'tenant_id', auditCounter: true },
  { table: 'tenantry.moves', column: 'tenant_id' },
  // which tenant a schema belongs to (tiers/003), in the database holding the schema
  { table: 'tenantry.tenant_schemas', column: 'tenant_id' },
  // lifecycle/export's import journal
  { table: 'tenantry.tenant_imports', column: 'tenant_id' },
  // tenantry/jobs' ledgers (its purgeTenantJobs clears them too; pg-boss's own tables need it as a participant)
  { table: 'tenantry_private.job_backlog', column: 'tenant_key', valueType: 'text' },
  // the pools' published per-tenant activity (data/migrations/001), read by `tenantry tenants top`
  { table: 'tenantry_private.tenant_activity', column: 'tenant_key', valueType: 'text' },
  { table: 'tenantry_private.job_fanout', column: 'tenant_id' },
  // lifecycle/onboard's progress record (one row per tenant)
  { table: 'tenantry.onboardings', column: 'tenant_id' },
  // tenantry/metering's ledgers: after the tenant's tables (whose deletes the trigger meters)
  { table: 'tenantry.usage_row_deltas', column: 'tenant_id' },
  { table: 'tenantry.usage_events', column: 'tenant_id' },
  // tenantry/settings: overrides, their history, flag overrides and the tenant's flag changes
  { table: 'tenantry_private.tenant_settings_history', column: 'tenant_id' },
  { table: 'tenantry_private.tenant_settings', column: 'tenant_id' },
  { table: 'tenantry_private.tenant_settings_heads', column: 'tenant_id' },
  { table: 'tenantry_private.tenant_flags', column: 'tenant_id' },
  { table: 'tenantry_private.flag_changes', column: 'tenant_id' },
  // tenantry/branding: the brand, its history and its logos
  { table: 'tenantry_private.tenant_brand_history', column: 'tenant_id' },
  { table: 'tenantry_private.tenant_brands', column: 'tenant_id' },
  { table: 'tenantry_private.tenant_brand_logos', column: 'tenant_id' },
  { table: 'tenantry.placements', column: 'tenant_id', noStep: true },
  { table: 'tenantry.purges', column: 'tenant_id', noStep: true },
]);

/** Quotes a name read from the system catalogs (any spelling PostgreSQL accepted). */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `"schema"."table"` from `schema.table` as the catalogs spell it (names with a dot are not supported). */
export function qualified(table: string): string {
  const at = table.indexOf('.');
  return `${ident(table.slice(0, at))}.${ident(table.slice(at + 1))}`;
}

/** What a scan needs to know. */
export interface ScanInput {
  catalog: Queryable;
  owners: Record<string, string>;
  dbs: PurgeDatabases;
  tenantId: string;
  placement: Placement;
  participants: readonly PurgeParticipant[];
  /** Further `schema.table` names (any database) whose `tenant_id` rows the purge deletes. */
  extraTables: readonly string[];
  audit: AuditPolicy;
  /** Skip the participants (the verification pass counts them on its own). */
  withParticipants?: boolean;
  /** The catalog's cluster (default `home`): its shared database lists every library table, even empty. */
  homeCluster?: string;
}

/**
 * Refuses (PURGE_TARGET_SHARED) to drop a schema or database that is not the tenant's alone: the
 * catalog, a cluster's shared database, a data schema or system schema, a place holding another
 * tenant. Asked when the plan is made and again just before a drop runs.
 */
export async function refuseSharedDrop(input: {
  catalog: Queryable;
  owners: Record<string, string>;
  homeCluster?: string;
  tenantId: string;
  target: Pick<Placement, 'tier' | 'cluster' | 'database' | 'schema'>;
}): Promise<void> {
  const { target } = input;
  const placements = new Placements({ catalog: input.catalog, owners: input.owners, homeCluster: input.homeCluster });
  try {
    const shared = await findSharedTarget({
      placements,
      catalog: input.catalog,
      tenantId: input.tenantId,
      target: { tier: target.tier, cluster: target.cluster, database: target.database, schema: target.schema },
    });
    if (shared)
      throw new PurgeError(
        'PURGE_TARGET_SHARED',
        `${shared.message}: a purge drops only a schema or database of the tenant's own; nothing was dropped`,
        {
          details: { cluster: target.cluster, database: target.database, schema: target.schema, reason: shared.reason },
        },
      );
  } finally {
    await placements.end();
  }
}

interface Registered {
  oid: number;
  schema: string;
  name: string;
  column: string;
}

/**
 * Scans the live catalog: every database it knows (each cluster's shared database, each
 * database-tier tenant's database), every registered tenant table there (every schema), the
 * library's tables, the tenant's schema or database, the participants; counts the tenant's rows
 * in each, and lists every table with a `tenant_id` column that none of these accounts for.
 */
export async function scanPurge(input: ScanInput): Promise<PurgeScan> {
  const { tenantId, placement, dbs } = input;
  const targets = (await listMigrationTargets(input.catalog, input.owners)).filter((t) => t.schema === null);
  const { rows: placed } = await input.catalog.query<{
    tenant_id: string;
    cluster: string;
    database: string | null;
    schema: string | null;
  }>(`select tenant_id, cluster, database, schema from tenantry.placements where tier in ('schema', 'database')`);
  const { rows: moveRows } = await input.catalog.query<{ id: string }>(
    'select id from tenantry.moves where tenant_id = $1',
    [tenantId],
  );
  const moveIds = moveRows.map((r) => r.id);
  const placementDb = (cluster: string, database: string | null) => database ?? dbs.sharedDatabase(cluster) ?? '?';
  const ownDb =
    placement.tier === 'database' &&
    !placed.some(
      (p) => p.tenant_id !== tenantId && p.cluster === placement.cluster && p.database === placement.database,
    )
      ? `${placement.cluster}/${placement.database}`
      : null;
  const ownSchema =
    placement.tier === 'schema' &&
    !placed.some(
      (p) =>
        p.tenant_id !== tenantId &&
        p.cluster === placement.cluster &&
        placementDb(p.cluster, p.database) === placementDb(placement.cluster, placement.database) &&
        p.schema === placement.schema,
    )
      ? `${placement.cluster}/${placementDb(placement.cluster, placement.database)}/${placement.schema}`
      : null;
  // only a schema or database that is the tenant's alone is dropped: never the catalog, a shared
  // database, a data schema, or a place holding another tenant (a crafted or mistaken placement)
  if (ownDb !== null || ownSchema !== null) await refuseSharedDrop({ ...input, target: placement });
  const accountedElsewhere = new Set(input.participants.flatMap((p) => p.tables ?? []));
  const extra = new Set(input.extraTables);
  const library = new Map(LIBRARY_TENANT_TABLES.map((t) => [t.table, t]));

  const steps: PurgeStep[] = [];
  const unaccounted: UnaccountedTable[] = [];
  const missingAdmins: string[] = [];
  const base = {
    schema: null,
    table: null,
    name: null,
    column: null,
    values: [] as string[],
    valueType: 'uuid' as const,
    rowsAfter: null,
    done: false,
  };

  if (input.withParticipants !== false)
    for (const p of input.participants)
      steps.push({
        ...base,
        key: `participant:${p.name}`,
        kind: 'participant',
        action: 'purge',
        cluster: null,
        database: null,
        name: p.name,
        rowsBefore: await p.plan(tenantId),
      });

  const tail: PurgeStep[] = [];
  for (const target of targets) {
    const location = `${target.cluster}/${target.database}`;
    const own = location === ownDb;
    if (own && !(await dbs.databaseExists(target.cluster, target.database))) continue; // dropped by this purge already
    const db = dbs.pool(target.cluster, target.database);
    const at = { cluster: target.cluster, database: target.database };
    const count = async (table: string, column: string, values: string[], type: 'uuid' | 'text') =>
      Number(
        (
          await db.query<{ n: string }>(
            `select count(*) as n from ${qualified(table)} where ${ident(column)} = any($1::${type}[])`,
            [values],
          )
        ).rows[0]!.n,
      );

    const registered = (
      await db.query<Registered>(
        `select c.oid::int as oid, n.nspname as schema, c.relname as name, r.tenant_column::text as column
           from tenantry.registered_tables r join pg_class c on c.oid = r.relid join pg_namespace n on n.oid = c.relnamespace
          where r.kind = 'tenant' order by n.nspname, c.relname`,
      )
    ).rows;
    const edges = (
      await db.query<{ child: number; parent: number }>(
        `select conrelid::int as child, confrelid::int as parent from pg_constraint where contype = 'f' and conrelid <> confrelid`,
      )
    ).rows;
    const otherSchemas = new Set(
      placed
        .filter(
          (p) =>
            p.tenant_id !== tenantId &&
            p.schema &&
            p.cluster === target.cluster &&
            placementDb(p.cluster, p.database) === target.database,
        )
        .map((p) => p.schema!),
    );
    const inTenantLocation =
      placement.cluster === target.cluster && placementDb(placement.cluster, placement.database) === target.database;
    for (const t of childrenFirst(registered, edges)) {
      const table = `${t.schema}.${t.name}`;
      const dropped = own || (ownSchema !== null && ownSchema === `${location}/${t.schema}`);
      const rows = await count(table, t.column, [tenantId], 'uuid');
      if (rows === 0 && (!inTenantLocation || otherSchemas.has(t.schema))) continue;
      steps.push({
        ...base,
        ...at,
        key: `table:${location}:${table}`,
        kind: 'table',
        action: dropped ? 'dropped' : 'delete',
        schema: t.schema,
        table,
        column: t.column,
        values: [tenantId],
        rowsBefore: rows,
      });
    }
    if (own) {
      if (!dbs.hasAdmin(target.cluster)) missingAdmins.push(target.cluster);
      tail.push({
        ...base,
        ...at,
        key: `database:${location}`,
        kind: 'database',
        action: 'drop',
        rowsBefore: registered.length,
      });
      continue; // everything else in it goes with it
    }

    // tables with a tenant_id column that nothing accounts for
    const candidates = (
      await db.query<{ schema: string; name: string }>(
        `select n.nspname as schema, c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where c.relkind in ('r', 'p') and not c.relispartition
            and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_'
            and exists (select from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and a.attnum > 0 and not a.attisdropped)
            and not exists (select from tenantry.registered_tables r where r.relid = c.oid and r.kind = 'tenant')
          order by 1, 2`,
      )
    ).rows;
    for (const c of candidates) {
      const table = `${c.schema}.${c.name}`;
      if (library.has(table) || accountedElsewhere.has(table)) continue;
      if (extra.has(table)) {
        steps.push({
          ...base,
          ...at,
          key: `table:${location}:${table}`,
          kind: 'table',
          action: 'delete',
          schema: c.schema,
          table,
          column: 'tenant_id',
          values: [tenantId],
          rowsBefore: await count(table, 'tenant_id', [tenantId], 'uuid'),
        });
        continue;
      }
      unaccounted.push({ ...at, table });
    }

    // the library's own tables (present where the library is installed)
    const present = new Set(
      (
        await db.query<{ t: string }>(`select t from unnest($1::text[]) t where to_regclass(t) is not null`, [
          [...LIBRARY_TENANT_TABLES.map((l) => l.table), 'tenantry_private.move_changes', 'tenantry.schema_migrations'],
        ])
      ).rows.map((r) => r.t),
    );
    const home = target.cluster === (input.homeCluster ?? 'home') && target.kind === 'shared';
    for (const l of LIBRARY_TENANT_TABLES) {
      if (l.noStep || !present.has(l.table)) continue;
      const rows = await count(l.table, l.column, [tenantId], l.valueType ?? 'uuid');
      if (rows === 0 && !home) continue;
      const action = l.audit ? input.audit : l.auditCounter && input.audit === 'keep' ? 'keep' : 'delete';
      steps.push({
        ...base,
        ...at,
        key: `library:${location}:${l.table}`,
        kind: 'library',
        action: action === 'anonymise' || action === 'keep' ? action : 'delete',
        schema: l.table.split('.')[0]!,
        table: l.table,
        column: l.column,
        values: [tenantId],
        valueType: l.valueType ?? 'uuid',
        rowsBefore: rows,
      });
    }
    if (moveIds.length > 0 && present.has('tenantry_private.move_changes')) {
      const rows = await count('tenantry_private.move_changes', 'move_id', moveIds, 'uuid');
      if (rows > 0)
        steps.push({
          ...base,
          ...at,
          key: `library:${location}:tenantry_private.move_changes`,
          kind: 'library',
          action: 'delete',
          schema: 'tenantry_private',
          table: 'tenantry_private.move_changes',
          column: 'move_id',
          values: moveIds,
          rowsBefore: rows,
        });
    }
    if (ownSchema?.startsWith(`${location}/`)) {
      const schema = ownSchema.slice(location.length + 1);
      const exists = (await db.query('select 1 from pg_namespace where nspname = $1', [schema])).rows.length > 0;
      if (present.has('tenantry.schema_migrations')) {
        const rows = await count('tenantry.schema_migrations', 'target', [ownSchema], 'text');
        if (rows > 0)
          steps.push({
            ...base,
            ...at,
            key: `library:${location}:tenantry.schema_migrations`,
            kind: 'library',
            action: 'delete',
            schema: 'tenantry',
            table: 'tenantry.schema_migrations',
            column: 'target',
            values: [ownSchema],
            valueType: 'text',
            rowsBefore: rows,
          });
      }
      if (exists)
        tail.unshift({
          ...base,
          ...at,
          key: `schema:${location}/${schema}`,
          kind: 'schema',
          action: 'drop',
          schema,
          rowsBefore: registered.filter((r) => r.schema === schema).length,
        });
    }
  }
  return { steps: [...steps, ...tail], unaccounted, missingAdmins };
}

// Tables referencing others first, so a foreign key without ON DELETE CASCADE never refuses a batch.
function childrenFirst(tables: Registered[], edges: Array<{ child: number; parent: number }>): Registered[] {
  const ids = new Set(tables.map((t) => t.oid));
  const parentsOf = new Map<number, number[]>();
  for (const e of edges)
    if (ids.has(e.child) && ids.has(e.parent)) parentsOf.set(e.child, [...(parentsOf.get(e.child) ?? []), e.parent]);
  // parents first (depth-first), then reversed
  const order: Registered[] = [];
  const seen = new Set<number>();
  const byOid = new Map(tables.map((t) => [t.oid, t]));
  const visit = (oid: number) => {
    if (seen.has(oid)) return; // a cycle keeps the order found
    seen.add(oid);
    for (const p of parentsOf.get(oid) ?? []) visit(p);
    order.push(byOid.get(oid)!);
  };
  for (const t of tables) visit(t.oid);
  return order.reverse();
}

/** Runs `sql` in a short transaction with bounded lock and statement waits. */
export async function shortTransaction<T>(
  pool: pg.Pool,
  timeouts: { lockTimeoutMs: number; statementTimeoutMs: number },
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`select set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`, [
      `${timeouts.lockTimeoutMs}ms`,
      `${timeouts.statementTimeoutMs}ms`,
    ]);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
