import type pg from 'pg';
import type { PlacementTarget } from '../../src/index.js';
import type { TenantTiers } from './tenant-tiers.js';

/** Where `npm start` puts the demo tenants: one per tier, all served by the same server. */
export const DEMO_PLACEMENTS: ReadonlyArray<{ slug: string; target: PlacementTarget }> = [
  { slug: 'globex', target: { tier: 'schema', cluster: 'home', schema: 't_globex' } },
  { slug: 'initech', target: { tier: 'database', cluster: 'home', database: 'tenant_initech' } },
];

/**
 * Moves the demo tenants to their tiers, online, the first time (seeded into the shared tables,
 * then moved like any customer would be: copy, freeze, verify, switch), then deletes the
 * copies left in the shared tables. A tenant with a placement or a move on record is left as it
 * is: moved back by hand, it stays where it was put. Returns what it moved.
 */
export async function placeDemoTenants(tiers: TenantTiers, owner: pg.Pool): Promise<string[]> {
  const moved: string[] = [];
  for (const { slug, target } of DEMO_PLACEMENTS) {
    const { rows } = await owner.query<{ id: string }>(
      `select t.id from tenantry.tenants t
        where t.slug = $1
          and not exists (select from tenantry.placements p where p.tenant_id = t.id)
          and not exists (select from tenantry.moves m where m.tenant_id = t.id)`,
      [slug],
    );
    if (!rows[0]) continue;
    const move = await tiers.move(rows[0].id, target);
    await tiers.cleanup(move.id);
    moved.push(`${slug} → ${target.tier}${target.schema ? ` ${target.schema}` : ''}${target.database ? ` ${target.database}` : ''}`);
  }
  return moved;
}
