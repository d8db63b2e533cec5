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
 * Where `tenantId`'s rows of `table` (a distributed tenant table; every table colocated with it
 * follows) live: `get_shard_id_for_distribution_column` and the shard's placement.
 */
export async function tenantShardPlacement(
  admin: Queryable,
  table: string,
  tenantId: string,
): Promise<TenantShardPlacement> {
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
    await admin.query(
      `SELECT isolate_tenant_to_new_shard($1::regclass, $2::uuid, 'CASCADE', shard_transfer_mode => $3::citus.shard_transfer_mode)`,
      [table, tenantId, transferMode],
    );
  } catch (error) {
    throw new CitusShardError('Citus refused to isolate the tenant to a shard of its own', error);
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
    await admin.query(
      `SELECT citus_move_shard_placement($1::bigint, $2, $3, $4, $5, shard_transfer_mode => $6::citus.shard_transfer_mode)`,
      [from.shardId, from.nodeName, from.nodePort, target.nodeName, target.nodePort, transferMode],
    );
  } catch (error) {
    throw new CitusShardError('Citus refused to move the tenant shard', error);
  }
  return tenantShardPlacement(admin, table, tenantId);
}
