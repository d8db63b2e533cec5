import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  activityTag,
  publishingInstances,
  liveActivityBlindness,
  readLiveActivity,
  watchTenantActivity,
  readPublishedActivity,
  adviseOnLoad,
  placementQuestion,
  planPlacementPolicy,
  type PlacementTarget,
  type Queryable,
  type TenantLoad,
} from 'tenantry';
import { parseInput } from '../http/validation.js';

const topQuery = z
  .object({
    window: z.enum(['5', '15', '60']).default('15'),
    limit: z.coerce.number().int().min(1).max(100).default(20),
  })
  .strict();

/** One tenant's line on the console's "Top tenants now" page. */
export interface TopTenant {
  tenantId: string;
  slug: string;
  plan: string | null;
  tier: string;
  cluster: string;
  dbTimeMs: number;
  dbShare: number;
  statements: number;
  rows: number;
  errors: number;
  timeouts: number;
  waits: number;
  waitMs: number;
  connections: number;
  activeNow: number;
  lockWaitsNow: number;
  longestNowMs: number;
}

/** The placement policy's advice to move a tenant, as the page links it to the move form. */
export interface MoveAdvice {
  slug: string;
  dbShare: number;
  target: PlacementTarget;
  reasons: string[];
}

/** A tenant taking more than this share of DB time, outside a database of its own, is advised to move. */
const MOVE_SHARE = 0.25;

/**
 * `GET /console/api/top?window=5|15|60&limit=`: the tenants using the database now, from the same
 * sources as `tenantry tenants top` (docs/monitoring.md): the pools' counters published to
 * `tenantry_private.tenant_activity`, and `pg_stat_activity`'s tags for what runs now. Written
 * here rather than calling the CLI's reader because the console needs the advice as data (the
 * tenant and the policy's target, for a one-click move) and the CLI's is text; the sentences
 * themselves come from the library's `adviseOnLoad`, so both say the same thing.
 */
export function consoleTopRoutes(api: FastifyInstance, options: { catalogPool: Queryable }): void {
  const { catalogPool } = options;
  api.get('/console/api/top', { config: { query: topQuery } }, async (request) => {
    const q = parseInput(topQuery, request.query, 'query');
    const windowMinutes = Number(q.window);
    const { rows: tenants } = await catalogPool.query<{
      id: string;
      slug: string;
      plan: string | null;
      tier: string;
      cluster: string;
    }>(
      `select t.id, t.slug, t.settings->>'plan' as plan, coalesce(p.tier, 'shared') as tier, coalesce(p.cluster, 'home') as cluster
         from tenantry.tenants t left join tenantry.placements p on p.tenant_id = t.id
        where t.status <> 'deleted'`,
    );
    const byId = new Map(tenants.map((t) => [t.id, t]));
    const byTag = new Map(tenants.map((t) => [activityTag(t.id), t.id]));
    const published = await readPublishedActivity(catalogPool, windowMinutes);
    const instances = await publishingInstances(catalogPool, windowMinutes);
    // the server's pools tag their statements only while someone watches (activityTag 'watched'):
    // this page is someone
    const watching = await watchTenantActivity(catalogPool);
    const live = await readLiveActivity(catalogPool);
    // the catalog pool's role cannot see the app role's backends: say so rather than show 0
    const liveUnavailable = await liveActivityBlindness(catalogPool, live);
    const total = published.reduce((sum, r) => sum + r.dbTimeMs, 0);
    const lines = new Map<string, TopTenant>();
    const line = (tenantId: string): TopTenant | undefined => {
      const t = byId.get(tenantId);
      // figures of statements without a tenant, or of a tenant deleted since: not a tenant to show
      if (!t) return undefined;
      let r = lines.get(tenantId);
      if (!r) {
        r = {
          tenantId,
          slug: t.slug,
          plan: t.plan,
          tier: t.tier,
          cluster: t.cluster,
          dbTimeMs: 0,
          dbShare: 0,
          statements: 0,
          rows: 0,
          errors: 0,
          timeouts: 0,
          waits: 0,
          waitMs: 0,
          connections: 0,
          activeNow: 0,
          lockWaitsNow: 0,
          longestNowMs: 0,
        };
        lines.set(tenantId, r);
      }
      return r;
    };
    for (const p of published) {
      const r = line(p.tenantKey);
      if (!r) continue;
      r.dbTimeMs = Math.round(p.dbTimeMs * 10) / 10;
      r.dbShare = total > 0 ? p.dbTimeMs / total : 0;
      r.statements = p.statements;
      r.rows = p.rows;
      r.errors = p.errors;
      r.timeouts = p.timeouts;
      r.waits = p.waits;
      r.waitMs = Math.round(p.waitMs);
      r.connections = p.connections;
    }
    for (const l of live) {
      const id = byTag.get(l.tag);
      const r = id === undefined ? undefined : line(id);
      if (!r) continue;
      r.activeNow = l.active;
      r.lockWaitsNow = l.lockWaits;
      r.longestNowMs = l.longestMs;
    }
    const sorted = [...lines.values()].sort(
      (a, b) => b.dbTimeMs - a.dbTimeMs || b.activeNow - a.activeNow || a.slug.localeCompare(b.slug),
    );

    // the placement policy: a database of its own on the least-loaded active cluster
    const policy = planPlacementPolicy({ tiers: {}, defaultTier: 'database' });
    const moves: MoveAdvice[] = [];
    const loads = sorted.map((r) => ({ ...r, tier: r.tier as TenantLoad['tier'] }));
    const others = loads.length;
    for (const load of loads)
      if (load.dbShare >= MOVE_SHARE && load.tier !== 'database' && others > 1) {
        const decision = await placementQuestion(catalogPool, load.tenantId)
          .then((question) => policy.decide(question))
          .catch(() => undefined);
        if (decision?.target.tier === 'database')
          moves.push({ slug: load.slug, dbShare: load.dbShare, target: decision.target, reasons: decision.reasons });
      }
    const window = windowMinutes === 60 ? 'this hour' : `in the last ${windowMinutes} min`;
    const advice = adviseOnLoad(loads, {
      window,
      moveShare: MOVE_SHARE,
      target: (load) => {
        const m = moves.find((a) => a.slug === load.slug);
        return m ? { target: m.target, reasons: m.reasons } : undefined;
      },
    });
    return {
      windowMinutes,
      // live: published within the last two intervals; stale: killed (or idle) since
      instances: instances.live,
      staleInstances: instances.stale,
      totalDbTimeMs: Math.round(total * 10) / 10,
      at: new Date().toISOString(),
      tenants: sorted.slice(0, q.limit),
      advice,
      moves,
      ...(liveUnavailable ? { liveUnavailable } : {}),
      ...(watching
        ? {}
        : {
            liveStarting:
              'First look: the live columns (now, locked, longest) fill in from the next refresh (the server tags statements only while this page is open)',
          }),
    };
  });
}
