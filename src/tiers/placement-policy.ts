import type { Queryable } from '../catalog/tenant-catalog.js';
import { isTenantId } from '../context/tenant-id.js';
import { ConfigurationError, TenantryError } from '../errors/tenantry-error.js';
import type { PlacementTarget } from './placements.js';
import type { Tier } from './tenant-router.js';

/** A cluster as a policy sees it: its capacity and how many tenants it holds, by tier. */
export interface ClusterLoad {
  name: string;
  status: 'active' | 'draining' | 'disabled';
  capacity: number;
  tenants: number;
  /** tenants / capacity (Infinity for a cluster with no capacity). */
  load: number;
}

/** What a policy is asked. */
export interface PlacementQuestion {
  tenant: { id: string; slug: string; settings: Record<string, unknown> };
  /** The plan to place for; default `tenant.settings.plan`. */
  plan?: string;
  clusters: ClusterLoad[];
}

/** A policy's answer: where, and why (for `tenantry tenants place`). */
export interface PlacementDecision {
  target: PlacementTarget;
  reasons: string[];
}

/** Decides where a tenant goes. */
export interface PlacementPolicy {
  decide(question: PlacementQuestion): PlacementDecision;
}

/** Options of {@link planPlacementPolicy}. */
export interface PlanPolicyOptions {
  /** Tier per plan, e.g. `{ enterprise: 'database', business: 'schema' }`; other plans get `defaultTier`. */
  tiers?: Record<string, Tier>;
  /** Default `shared`. */
  defaultTier?: Tier;
  /** Clusters a tier may use (default: every active cluster). */
  clustersByTier?: Partial<Record<Tier, string[]>>;
  /** Naming of schemas and databases; default `t_<slug>` and `tenant_<slug>` (hyphens become underscores). */
  schemaName?: (slug: string) => string;
  databaseName?: (slug: string) => string;
}

/**
 * The default policy: the tier comes from the tenant's plan, the cluster is the least-loaded
 * active one allowed for that tier (tenants per unit of capacity; ties by name).
 *
 * @example
 * const policy = planPlacementPolicy({ tiers: { enterprise: 'database', business: 'schema' } });
 * const { target, reasons } = policy.decide(await placementQuestion(catalog, tenant));
 */
export function planPlacementPolicy(options: PlanPolicyOptions = {}): PlacementPolicy {
  const tiers = options.tiers ?? { enterprise: 'database', business: 'schema' };
  const defaultTier = options.defaultTier ?? 'shared';
  for (const tier of [...Object.values(tiers), defaultTier]) {
    if (tier !== 'shared' && tier !== 'schema' && tier !== 'database')
      throw new ConfigurationError(`Unknown tier ${String(tier)}`);
  }
  const schemaName = options.schemaName ?? ((slug) => `t_${slug.replaceAll('-', '_')}`);
  const databaseName = options.databaseName ?? ((slug) => `tenant_${slug.replaceAll('-', '_')}`);
  return {
    decide({ tenant, plan, clusters }) {
      const reasons: string[] = [];
      const chosenPlan = plan ?? (typeof tenant.settings.plan === 'string' ? tenant.settings.plan : undefined);
      const ownTier = chosenPlan !== undefined && Object.hasOwn(tiers, chosenPlan) ? tiers[chosenPlan] : undefined;
      const tier = ownTier ?? defaultTier;
      reasons.push(
        chosenPlan === undefined
          ? `no plan: the default tier ${tier}`
          : ownTier !== undefined
            ? `plan ${chosenPlan} → tier ${tier}`
            : `plan ${chosenPlan} has no tier of its own: the default tier ${tier}`,
      );
      const allowed = options.clustersByTier?.[tier];
      const candidates = clusters.filter(
        (c) => c.status === 'active' && (allowed === undefined || allowed.includes(c.name)),
      );
      if (candidates.length === 0) {
        throw new TenantryError('CLUSTER_UNKNOWN', `No active cluster may take the ${tier} tier`, {
          status: 503,
          details: { tier },
        });
      }
      const best = [...candidates].sort((a, b) => a.load - b.load || a.name.localeCompare(b.name))[0]!;
      reasons.push(
        candidates.length === 1
          ? `cluster ${best.name}: the only active cluster${allowed ? ' allowed for this tier' : ''}`
          : `cluster ${best.name}: least loaded (${best.tenants} tenants / capacity ${best.capacity}) of ${candidates.map((c) => `${c.name} ${(c.load * 100).toFixed(1)}%`).join(', ')}`,
      );
      for (const c of clusters.filter((c) => c.status !== 'active'))
        reasons.push(`cluster ${c.name} skipped: ${c.status}`);
      const name =
        tier === 'schema' ? schemaName(tenant.slug) : tier === 'database' ? databaseName(tenant.slug) : undefined;
      if (name !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
        throw new TenantryError(
          'INVALID_IDENTIFIER',
          `The ${tier} name for tenant ${tenant.slug} is not a valid name of 1-63 characters: give the policy a schemaName/databaseName`,
          { status: 400 },
        );
      }
      const target: PlacementTarget =
        tier === 'schema'
          ? { tier, cluster: best.name, schema: schemaName(tenant.slug) }
          : tier === 'database'
            ? { tier, cluster: best.name, database: databaseName(tenant.slug) }
            : { tier, cluster: best.name };
      return { target, reasons };
    },
  };
}

/**
 * SQL counting the tenants of cluster `<alias>.name`: its placements, plus (home cluster, whose
 * name is the parameter `homeParam`) the tenants without a placement. Not cheap: the home count
 * reads every tenant row (TenantOnboarding caches it, see there).
 */
export function clusterTenantsSql(alias: string, homeParam: string): string {
  return `((select count(*) from tenantry.placements p where p.cluster = ${alias}.name)
              + case when ${alias}.name = ${homeParam} then (select count(*) from tenantry.tenants t
                                             where t.status <> 'deleted' and not exists (select from tenantry.placements p where p.tenant_id = t.id))
                     else 0 end)`;
}

/**
 * Reads what a policy needs from the catalog (home database, owner role): the tenant and every
 * cluster's load. Tenants without a placement count on the home cluster.
 */
export async function placementQuestion(
  catalog: Queryable,
  tenantRef: string,
  options: { plan?: string; homeCluster?: string } = {},
): Promise<PlacementQuestion> {
  const byId = isTenantId(tenantRef);
  const { rows: tenants } = await catalog.query<{ id: string; slug: string; settings: Record<string, unknown> }>(
    `select id, slug, settings from tenantry.tenants where ${byId ? 'id = $1::uuid' : 'slug = $1'}`,
    [byId ? tenantRef.toLowerCase() : tenantRef],
  );
  if (!tenants[0]) throw new TenantryError('TENANT_NOT_FOUND', 'Tenant not found', { status: 404 });
  const { rows } = await catalog.query<{
    name: string;
    status: ClusterLoad['status'];
    capacity: number;
    tenants: string;
  }>(
    `select c.name, c.status, c.capacity, ${clusterTenantsSql('c', '$1')} as tenants
       from tenantry.clusters c order by c.name`,
    [options.homeCluster ?? 'home'],
  );
  const clusters = rows.map((r) => {
    const count = Number(r.tenants);
    return {
      name: r.name,
      status: r.status,
      capacity: r.capacity,
      tenants: count,
      load: r.capacity > 0 ? count / r.capacity : Infinity,
    };
  });
  return { tenant: tenants[0], ...(options.plan ? { plan: options.plan } : {}), clusters };
}
