import type pg from 'pg';
import type { PlacementTarget } from 'tenantry';
import type { TenantTiers } from './tenant-tiers.js';

/** Where `npm start` puts the demo tenants: one per tier, all served by the same server. */
export const DEMO_PLACEMENTS: ReadonlyArray<{ slug: string; target: PlacementTarget }> = [
  { slug: 'globex', target: { tier: 'schema', cluster: 'home', schema: 't_globex' } },
  { slug: 'initech', target: { tier: 'database', cluster: 'home', database: 'tenant_initech' } },
];

/** What {@link placeDemoTenants} did. */
export interface DemoPlacementOutcome {
  moved: string[];
  /** Moves that failed (the tenant stays where it was, served as before); retried at the next start. */
  failed: string[];
}

/**
 * Moves the demo tenants to their tiers, online, the first time (seeded into the shared tables,
 * then moved like any customer would be: copy, freeze, verify, switch), then deletes the copies
 * left at the source. A move interrupted by a stop (Ctrl+C, a crash) is resumed at the next start,
 * and a finished move whose source was not cleaned yet is cleaned. A tenant already placed, or
 * whose last move was rolled back, is left as it is: moved back by hand, it stays where it was
 * put. A failing move does not stop the server: it is reported, and the tenant is served where
 * it is.
 */
export async function placeDemoTenants(
  tiers: TenantTiers,
  owner: pg.Pool,
  log: (message: string, error?: unknown) => void = () => undefined,
): Promise<DemoPlacementOutcome> {
  const outcome: DemoPlacementOutcome = { moved: [], failed: [] };
  for (const { slug, target } of DEMO_PLACEMENTS) {
    const { rows } = await owner.query<{ id: string; placed: boolean; move_id: string | null; step: string | null }>(
      `select t.id, exists (select from tenantry.placements p where p.tenant_id = t.id) as placed, m.id as move_id, m.step
         from tenantry.tenants t
         left join lateral (select id, step from tenantry.moves where tenant_id = t.id order by created_at desc limit 1) m on true
        where t.slug = $1 and t.deleted_at is null`,
      [slug],
    );
    const tenant = rows[0];
    if (!tenant || tenant.step === 'cleaned' || tenant.step === 'rolled_back') continue;
    if (tenant.placed && tenant.step === null) continue; // placed by hand, not by a move of ours
    const where = `${slug} → ${target.tier}${target.schema ? ` ${target.schema}` : ''}${target.database ? ` ${target.database}` : ''}`;
    try {
      // an open move is resumed where it stopped; a finished one is only cleaned up
      const move =
        tenant.step === 'done'
          ? { id: tenant.move_id!, step: 'done' }
          : tenant.move_id
            ? await tiers.resume(tenant.move_id)
            : await tiers.move(tenant.id, target);
      if (move.step === 'done') await tiers.cleanup(move.id);
      outcome.moved.push(where);
    } catch (error) {
      outcome.failed.push(where);
      log(
        `moving a demo tenant failed (${where}); it is served where it is, and the move is retried at the next start`,
        error,
      );
    }
  }
  return outcome;
}
