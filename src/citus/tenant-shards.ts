import type { Queryable } from '../catalog/tenant-catalog.js';
import { TenantryError } from '../errors/tenantry-error.js';

/** Where one tenant's rows live on a Citus cluster: its shard group and the worker holding it. */
export interface TenantShardPlacement {
  /** The shard of the tenant in the first table of its colocation group (the one Citus moves the group by). */
  shardId: number;
  /** True when the shard holds this tenant alone (after {@link isolateTenantShard}). */
  isolated: boolean;
  nodeName: string;
  nodePort: number;
}

/**
 * Citus's `shard_transfer_mode`: `auto`/`force_logical` copy with logical replication (writes go
 * on during the copy), `block_writes` blocks writes to the shard while it is copied.
 */
export type ShardTransferMode = 'auto' | 'force_logical' | 'block_writes';

/** A Citus refusal or a missing table/tenant, with a stable code. */
export class CitusShardError extends TenantryError {
  constructor(message: string, cause?: unknown) {
    super('CITUS_SHARD', message, { status: 500, cause });
    this.name = 'CitusShardError';
  }
}

/**
 * Citus's reason for a refusal: its message and SQLSTATE, never its DETAIL (where PostgreSQL puts
 * row values, e.g. a key's) nor its HINT. Citus's messages of these functions name tables,
 * shards and nodes, never a tenant's rows.
 */
export function citusReason(error: unknown): string {
  const e = error as { message?: unknown; code?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message.split('\n')[0]!.slice(0, 300) : 'unknown error';
  return typeof e?.code === 'string' ? `${message} (SQLSTATE ${e.code})` : message;
}

/**
 * Refuses a table that is not a distributed tenant table: it must exist, be registered as a
 * tenant table and be hash-distributed by its tenant column. A reference table (one shard for
 * every tenant: `tenantry.local_route`), a Citus local table or a plain one would otherwise
 * answer a shard that is not the tenant's.
 */
export async function assertDistributedTenantTable(admin: Queryable, table: string): Promise<void> {
  const { rows } = await admin.query<{ exists: boolean; tenant: boolean; method: string | null; column: boolean }>(
    `SELECT to_regclass($1) IS NOT NULL AS exists,
            EXISTS (SELECT FROM tenantry.registered_tables r WHERE r.relid = to_regclass($1) AND r.kind = 'tenant') AS tenant,
            (SELECT p.partmethod::text FROM pg_dist_partition p WHERE p.logicalrelid = to_regclass($1)) AS method,
            EXISTS (SELECT FROM pg_dist_partition p JOIN tenantry.registered_tables r ON r.relid = p.logicalrelid
                     WHERE p.logicalrelid = to_regclass($1) AND p.partmethod = 'h'
                       AND column_to_column_name(p.logicalrelid, p.partkey) = r.tenant_column) AS column`,
    [table],
  );
  const r = rows[0]!;
  if (!r.exists) throw new CitusShardError(`No table ${table}: name a distributed tenant table`);
  const what =
    r.method === 'n'
      ? 'a reference table or a Citus local table (one shard for every tenant)'
      : r.method === null
        ? 'not distributed'
        : r.method !== 'h'
          ? `distributed by ${r.method === 'r' ? 'range' : r.method === 'a' ? 'append' : 'another method'}, not by hash`
          : !r.tenant
            ? 'not a registered tenant table'
            : !r.column
              ? 'not distributed by its tenant column'
              : undefined;
  if (what !== undefined)
    throw new CitusShardError(
      `${table} is ${what}: name a distributed tenant table (one made with tenantry.citus_tenant_table)`,
    );
}

/**
 * Where `tenantId`'s rows of `table` (a distributed tenant table; every table colocated with it
 * follows) live: `get_shard_id_for_distribution_column` and the shard's placement. Another
 * table is refused ({@link assertDistributedTenantTable}).
 */
export async function tenantShardPlacement(
  admin: Queryable,
  table: string,
  tenantId: string,
): Promise<TenantShardPlacement> {
  await assertDistributedTenantTable(admin, table);
  const { rows } = await admin.query<{
    shard_id: string;
    isolated: boolean;
    nodename: string;
    nodeport: number;
  }>(
    `SELECT s.shardid AS shard_id, s.shardminvalue = s.shardmaxvalue AS isolated, n.nodename, n.nodeport
       FROM pg_dist_shard s
       JOIN pg_dist_placement p ON p.shardid = s.shardid
       JOIN pg_dist_node n ON n.groupid = p.groupid
      WHERE s.shardid = get_shard_id_for_distribution_column($1::regclass, $2::uuid)`,
    [table, tenantId],
  );
  const row = rows[0];
  if (!row)
    throw new CitusShardError(`No shard of ${table} holds that tenant: is ${table} distributed by its tenant column?`);
  return { shardId: Number(row.shard_id), isolated: row.isolated, nodeName: row.nodename, nodePort: row.nodeport };
}

/**
 * Gives a tenant a shard of its own in every table colocated with `table`
 * (`isolate_tenant_to_new_shard(…, 'CASCADE')`): its rows then move alone, and a tenant that
 * outgrows a shared worker goes to one of its own with {@link moveTenantShard}. Idempotent: a
 * tenant already alone in its shard is left as it is.
 */
export async function isolateTenantShard(
  admin: Queryable,
  table: string,
  tenantId: string,
  transferMode: ShardTransferMode = 'auto',
): Promise<TenantShardPlacement> {
  const before = await tenantShardPlacement(admin, table, tenantId);
  if (before.isolated) return before;
  try {
    await withoutForcedRls(admin, table, transferMode, () =>
      admin.query(
        `SELECT isolate_tenant_to_new_shard($1::regclass, $2::uuid, 'CASCADE', shard_transfer_mode => $3::citus.shard_transfer_mode)`,
        [table, tenantId, transferMode],
      ),
    );
  } catch (error) {
    if (error instanceof CitusShardError) throw error;
    throw new CitusShardError(
      `Citus refused to isolate the tenant to a shard of its own: ${citusReason(error)}`,
      error,
    );
  }
  return tenantShardPlacement(admin, table, tenantId);
}

/**
 * Moves the shard group holding `tenantId` to another worker with Citus's own
 * `citus_move_shard_placement` (logical replication by default: reads and writes go on during
 * the copy, then a short block while Citus switches the placement). Isolate the tenant first
 * unless its shard neighbours should move with it.
 */
export async function moveTenantShard(
  admin: Queryable,
  table: string,
  tenantId: string,
  target: { nodeName: string; nodePort: number },
  transferMode: ShardTransferMode = 'auto',
): Promise<TenantShardPlacement> {
  const from = await tenantShardPlacement(admin, table, tenantId);
  if (from.nodeName === target.nodeName && from.nodePort === target.nodePort) return from;
  try {
    await withoutForcedRls(admin, table, transferMode, () =>
      admin.query(
        `SELECT citus_move_shard_placement($1::bigint, $2, $3, $4, $5, shard_transfer_mode => $6::citus.shard_transfer_mode)`,
        [from.shardId, from.nodeName, from.nodePort, target.nodeName, target.nodePort, transferMode],
      ),
    );
  } catch (error) {
    if (error instanceof CitusShardError) throw error;
    throw new CitusShardError(`Citus refused to move the tenant shard: ${citusReason(error)}`, error);
  }
  return tenantShardPlacement(admin, table, tenantId);
}

/**
 * The tables colocated with `table` (itself included) that FORCE row level security: Tenantry's
 * tenant tables do, so that their owner role is held by the policy too.
 */
export async function forcedRlsColocatedTables(admin: Queryable, table: string): Promise<string[]> {
  // and the registered tenant tables of the group without it: left so by a transfer that crashed
  const { rows } = await admin.query<{ name: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name
       FROM pg_dist_partition p
       JOIN pg_class c ON c.oid = p.logicalrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE p.colocationid = (SELECT x.colocationid FROM pg_dist_partition x WHERE x.logicalrelid = $1::regclass)
        AND (c.relforcerowsecurity
             OR EXISTS (SELECT FROM tenantry.registered_tables r WHERE r.relid = c.oid AND r.kind = 'tenant'))
      ORDER BY 1`,
    [table],
  );
  return rows.map((r) => r.name);
}

/**
 * Runs a logical shard transfer (`auto`, `force_logical`) with FORCE ROW LEVEL SECURITY lifted
 * from the colocated tables, and puts it back after (also when the transfer fails).
 *
 * Why: Citus applies the copied changes with a subscription owned by a role of its own that is a
 * member of the table owner (`citus_shard_move_subscription_role_…`, no superuser), and
 * PostgreSQL's apply worker refuses a table where row level security applies to that role:
 * "cannot replicate into relation with row-level security enabled". With FORCE it applies to the
 * owner too; without FORCE the owner (and members of it) are exempt, and RLS still applies to the
 * application role (verified on Citus 13.2.2). While it runs, only the OWNER role reads and
 * writes past the policy: the app role stays held. `block_writes` copies without a subscription,
 * and needs none of this. A crash in between leaves FORCE off: the next call (and `tenantry
 * citus prepare`) puts it back on the registered tenant tables.
 */
export async function withoutForcedRls<T>(
  admin: Queryable,
  table: string,
  transferMode: ShardTransferMode,
  run: () => Promise<T>,
): Promise<T> {
  if (transferMode === 'block_writes') return run();
  await assertCitusOutputPlugin(admin);
  const forced = await forcedRlsColocatedTables(admin, table);
  for (const t of forced) await admin.query(`ALTER TABLE ${t} NO FORCE ROW LEVEL SECURITY`);
  try {
    return await run();
  } finally {
    for (const t of forced) await admin.query(`ALTER TABLE ${t} FORCE ROW LEVEL SECURITY`);
  }
}

/**
 * Logical transfers create replication slots with Citus's own output plugin (`citus`) on the
 * source worker. PostgreSQL releases that have `output_plugin_libraries` (15.20 on Debian is one)
 * refuse a library that setting does not name: 'library "citus" may not be used as an output
 * plugin'. Checked on every worker before the transfer starts, so the refusal names the fix.
 */
export async function assertCitusOutputPlugin(admin: Queryable): Promise<void> {
  const { rows } = await admin.query<{ nodename: string; nodeport: number; success: boolean; result: string }>(
    `SELECT nodename, nodeport, success, result FROM run_command_on_workers($$SELECT coalesce(current_setting('output_plugin_libraries', true), '*')$$)`,
  );
  const refusing = rows.filter(
    (r) =>
      r.success &&
      r.result !== '*' &&
      !r.result
        .split(',')
        .map((x) => x.trim())
        .includes('citus'),
  );
  if (refusing.length > 0)
    throw new CitusShardError(
      `Logical shard transfers need output_plugin_libraries to name citus on every node (missing on ${refusing
        .map((r) => `${r.nodename}:${r.nodeport}`)
        .join(', ')}): add citus to it in postgresql.conf and reload, or use --mode block_writes`,
    );
}
