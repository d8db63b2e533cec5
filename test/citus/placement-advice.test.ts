// The advice of `tenantry tenants top --citus-table` and the Citus placement policy's decisions
// (pure: no cluster needed; test/citus/shards.test.ts applies them on a real Citus cluster).
import { describe, expect, it } from 'vitest';
import { adviseOnLoad, type TenantLoad } from '../../src/tiers/placement-advice.js';
import { citusPlacementPolicy, type CitusPlacementQuestion } from '../../src/citus/citus-placement.js';
import { citusPlaceCommand } from '../../src/cli/citus-command.js';

const load = (slug: string, dbShare: number): TenantLoad => ({
  tenantId: `id-${slug}`,
  slug,
  tier: 'shared',
  dbShare,
  statements: 10,
  timeouts: 0,
  waits: 0,
  waitMs: 0,
});

describe('Citus placement advice and policy', () => {
  it('advises a shard of its own for a hot tenant on Citus, a database elsewhere', () => {
    const loads = [load('acme', 0.6), load('globex', 0.3), load('quiet', 0.1)];
    const citus = adviseOnLoad(loads, { window: 'this hour', citus: { table: 'public.notes' } });
    expect(citus).toEqual([
      'acme used 60 % of DB time this hour: give it a shard of its own on the least loaded worker: tenantry citus place acme --table public.notes --share 0.60 --apply',
      'globex used 30 % of DB time this hour: give it a shard of its own on the least loaded worker: tenantry citus place globex --table public.notes --share 0.30 --apply',
    ]);
    expect(adviseOnLoad(loads, { window: 'this hour' })[0]).toMatch(/^acme used 60 % .*own database/);
  });

  it('isolates by plan or load, on the worker with the fewest shard bytes (staying put on a tie)', () => {
    const q: CitusPlacementQuestion = {
      tenant: { id: 't', slug: 'acme', settings: { plan: 'starter' } },
      current: { shardId: 1, isolated: false, nodeName: 'w1', nodePort: 5432 },
      workers: [
        { nodeName: 'w1', nodePort: 5432, shardBytes: 900 },
        { nodeName: 'w2', nodePort: 5432, shardBytes: 100 },
      ],
    };
    const policy = citusPlacementPolicy({ isolatePlans: ['enterprise'], hotShare: 0.5 });
    expect(policy.decide(q).action).toBe('stay');
    expect(policy.decide({ ...q, dbShare: 0.49 }).action).toBe('stay');
    const hot = policy.decide({ ...q, dbShare: 0.5 });
    expect(hot).toMatchObject({ action: 'isolate', worker: { nodeName: 'w2', nodePort: 5432 } });
    const byPlan = policy.decide({ ...q, plan: 'enterprise' });
    expect(byPlan.action).toBe('isolate');
    expect(byPlan.reasons[0]).toBe('plan enterprise → a shard of its own');
    const tie = policy.decide({
      ...q,
      plan: 'enterprise',
      workers: q.workers.map((w) => ({ ...w, shardBytes: 100 })),
    });
    expect(tie.worker).toEqual({ nodeName: 'w1', nodePort: 5432 });
  });

  it('the command `citus place` suggests repeats every option that shaped the decision', () => {
    expect(
      citusPlaceCommand('acme', { table: 'public.notes', share: 0.6, isolatePlans: 'enterprise', mode: 'auto' }),
    ).toBe('tenantry citus place acme --table public.notes --share 0.6 --apply');
    expect(
      citusPlaceCommand('acme', {
        table: 'public.notes',
        plan: 'pro',
        isolatePlans: 'pro,enterprise',
        mode: 'block_writes',
      }),
    ).toBe(
      'tenantry citus place acme --table public.notes --plan pro --isolate-plans pro,enterprise --mode block_writes --apply',
    );
    expect(citusPlaceCommand("o'hara", { table: 'public."My Notes"', share: 0.25 })).toBe(
      `tenantry citus place 'o'\\''hara' --table 'public."My Notes"' --share 0.25 --apply`,
    );
  });
});
