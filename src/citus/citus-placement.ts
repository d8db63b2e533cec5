import type { Queryable } from '../catalog/tenant-catalog.js';
import {
  isolateTenantShard,
  moveTenantShard,
  tenantShardPlacement,
  type ShardTransferMode,
  type TenantShardPlacement,
} from './tenant-shards.js';

/** A worker as the Citus placement policy sees it: the bytes of the shards it holds. */
export interface CitusWorkerLoad {
  nodeName: string;
  nodePort: number;
  shardBytes: number;
}

/** What the Citus placement policy is asked about one tenant. */
export interface CitusPlacementQuestion {
  tenant: { id: string; slug: string; settings: Record<string, unknown> };
  /** The plan to place for; default `tenant.settings.plan`. */
  plan?: string;
  /** The tenant's share of the database time over a window (0-1), e.g. from `tenantry tenants top`. */
  dbShare?: number;
  /** Where the tenant's shard is now. */
  current: TenantShardPlacement;
  /** The active workers and their shard bytes. */
  workers: CitusWorkerLoad[];
}

/** The policy's answer: leave the tenant in its shared shard, or give it a shard of its own (and where). */
export interface CitusPlacementDecision {
  action: 'stay' | 'isolate';
  /** With `isolate`: the worker its own shard should be on (its current one when that is the least loaded). */
  worker?: { nodeName: string; nodePort: number };
  reasons: string[];
}

/** Options of {@link citusPlacementPolicy}. */
export interface CitusPlacementOptions {
  /** Plans whose tenants get a shard of their own (default `['enterprise']`). */
  isolatePlans?: string[];
  /** A tenant past this share of the database time gets a shard of its own (default 0.25, as `adviseOnLoad`). */
  hotShare?: number;
}

/**
 * The placement policy on a Citus cluster: tenants share hash-distributed shards, and a tenant of
 * an isolating plan, or a hot one (past `hotShare` of the database time), gets a shard of its own
 * (`isolate_tenant_to_new_shard`) on the worker holding the fewest shard bytes
 * (`citus_move_shard_placement`). The tiers of {@link planPlacementPolicy} (schema, database) are
 * not used on Citus: Citus moves the tenant's rows itself.
 *
 * @example
 * const policy = citusPlacementPolicy({ isolatePlans: ['enterprise'] });
 * const decision = policy.decide(await citusPlacementQuestion(admin, 'notes', tenantId));
 * if (decision.action === 'isolate') await applyCitusPlacement(admin, 'notes', tenantId, decision);
 */
export function citusPlacementPolicy(options: CitusPlacementOptions = {}): {
  decide(question: CitusPlacementQuestion): CitusPlacementDecision;
} {
  const isolatePlans = options.isolatePlans ?? ['enterprise'];
  const hotShare = options.hotShare ?? 0.25;
  return {
    decide({ tenant, plan, dbShare, current, workers }) {
      const reasons: string[] = [];
      const chosenPlan = plan ?? (typeof tenant.settings.plan === 'string' ? tenant.settings.plan : undefined);
      const byPlan = chosenPlan !== undefined && isolatePlans.includes(chosenPlan);
      const hot = dbShare !== undefined && dbShare >= hotShare;
      if (byPlan) reasons.push(`plan ${chosenPlan} → a shard of its own`);
      if (hot)
        reasons.push(
          `${Math.round(dbShare * 100)} % of the database time (≥ ${Math.round(hotShare * 100)} %) → a shard of its own`,
        );
      if (!byPlan && !hot) {
        reasons.push(
          chosenPlan === undefined
            ? 'no plan and not hot: stays in its shared shard'
            : `plan ${chosenPlan}, not hot: stays in its shared shard`,
        );
        return { action: 'stay', reasons };
      }
      // the bytes of the tenant's shard group count where it is: moving it there and back is no gain
      const sorted = [...workers].sort(
        (a, b) => a.shardBytes - b.shardBytes || a.nodeName.localeCompare(b.nodeName) || a.nodePort - b.nodePort,
      );
      const least = sorted[0];
      const here = workers.find((w) => w.nodeName === current.nodeName && w.nodePort === current.nodePort);
      const worker =
        least === undefined || (here !== undefined && here.shardBytes <= least.shardBytes)
          ? { nodeName: current.nodeName, nodePort: current.nodePort }
          : { nodeName: least.nodeName, nodePort: least.nodePort };
      reasons.push(
        worker.nodeName === current.nodeName && worker.nodePort === current.nodePort
          ? `worker ${worker.nodeName}:${worker.nodePort}: where it is, and the least loaded`
          : `worker ${worker.nodeName}:${worker.nodePort}: the fewest shard bytes of ${sorted.map((w) => `${w.nodeName}:${w.nodePort} ${w.shardBytes} B`).join(', ')}`,
      );
      if (current.isolated) reasons.push('already alone in its shard');
      return { action: 'isolate', worker, reasons };
    },
  };
}

/** Reads what {@link citusPlacementPolicy} needs from the coordinator (a superuser connection). */
export async function citusPlacementQuestion(
  admin: Queryable,
  table: string,
  tenantId: string,
  options: { plan?: string; dbShare?: number } = {},
): Promise<CitusPlacementQuestion> {
  const current = await tenantShardPlacement(admin, table, tenantId);
  const { rows: tenants } = await admin.query<{ id: string; slug: string; settings: Record<string, unknown> }>(
    `select id::text as id, slug, settings from tenantry.tenants where id = $1::uuid`,
    [tenantId],
  );
  const tenant = tenants[0] ?? { id: tenantId, slug: tenantId, settings: {} };
  const { rows } = await admin.query<{ nodename: string; nodeport: number; bytes: string }>(
    `select n.nodename, n.nodeport, coalesce(sum(s.shard_size), 0)::bigint::text as bytes
       from pg_dist_node n left join citus_shards s on s.nodename = n.nodename and s.nodeport = n.nodeport
      where n.isactive and n.noderole = 'primary' and n.shouldhaveshards and n.groupid <> 0
      group by n.nodename, n.nodeport order by n.nodename, n.nodeport`,
  );
  return {
    tenant,
    ...(options.plan ? { plan: options.plan } : {}),
    ...(options.dbShare !== undefined ? { dbShare: options.dbShare } : {}),
    current,
    workers: rows.map((r) => ({ nodeName: r.nodename, nodePort: r.nodeport, shardBytes: Number(r.bytes) })),
  };
}

/** Carries out an `isolate` decision: a shard of its own, then the move to the chosen worker. */
export async function applyCitusPlacement(
  admin: Queryable,
  table: string,
  tenantId: string,
  decision: CitusPlacementDecision,
  transferMode: ShardTransferMode = 'auto',
): Promise<TenantShardPlacement> {
  if (decision.action === 'stay') return tenantShardPlacement(admin, table, tenantId);
  const isolated = await isolateTenantShard(admin, table, tenantId, transferMode);
  if (!decision.worker) return isolated;
  return moveTenantShard(admin, table, tenantId, decision.worker, transferMode);
}
