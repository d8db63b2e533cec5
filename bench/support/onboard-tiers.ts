import { createHash } from 'node:crypto';
import pg from 'pg';
import { TenantOnboarding } from '../../src/lifecycle/onboard/tenant-onboarding.js';
import { migrateLocation } from '../../src/tiers/migrate/migrate-location.js';
import type { Migration } from '../../src/tiers/migrate/migration-files.js';
import { planPlacementPolicy } from '../../src/tiers/placement-policy.js';
import type { BenchRoles } from './dataset.js';
import { LatencyRecorder } from './latency.js';
import type { BenchServer } from './server.js';

/** The application of the benchmark: one tenant table (what a new schema or database gets). */
const NOTES = `create table notes (
  tenant_id uuid not null default tenantry.current_tenant_id(),
  id uuid not null default gen_random_uuid(),
  body text not null,
  primary key (tenant_id, id)
);
select tenantry.register_tenant_table('notes');`;
const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: '001_notes.sql',
    scope: 'tenant',
    sql: NOTES,
    checksum: createHash('sha256').update(NOTES).digest('hex'),
  },
];

/** p50/p99/max and client CPU per onboarding of one tier. */
export interface TierRun {
  tier: 'shared' | 'schema' | 'database';
  count: number;
  p50: number;
  p99: number;
  max: number;
  cpuMsPerOp: number;
}

/** Tenant databases the run created (to drop at the end). */
export const onboardDatabase = (slug: string) => `tenantry_bench_${slug.replaceAll('-', '_')}`;

/**
 * Onboards `counts[tier]` tenants per tier, one after another, with `TenantOnboarding` (create and
 * place, provision, migrate, route, done; no seed or invitation hooks): the library's own cost.
 */
export async function benchOnboarding(
  server: BenchServer,
  database: string,
  roles: BenchRoles,
  counts: Record<TierRun['tier'], number>,
): Promise<TierRun[]> {
  const ownerUrl = server.url(database, roles.owner);
  await migrateLocation({ clusters: { home: ownerUrl }, cluster: 'home', migrations: MIGRATIONS });
  const catalog = new pg.Pool({ connectionString: ownerUrl, max: 1 });
  // the databases are dropped (FORCE) and the server stopped at the end: an idle client's 57P01 is expected
  catalog.on('error', () => undefined);
  const onboarding = new TenantOnboarding({
    catalog,
    owners: { home: ownerUrl },
    admins: { home: server.url(database) },
    install: {
      appRole: roles.app.name,
      ownerRole: roles.owner.name,
      appPassword: roles.app.password,
      ownerPassword: roles.owner.password,
      routerRole: roles.router.name,
      routerPassword: roles.router.password,
      contextSecret: roles.contextSecret,
    },
    policy: planPlacementPolicy({ databaseName: onboardDatabase }),
    migrations: MIGRATIONS,
  });
  const plans = { shared: undefined, schema: 'business', database: 'enterprise' } as const;
  const runs: TierRun[] = [];
  try {
    // warm-up: connections, caches, the migrations' plan (one of each tier, not measured)
    for (const tier of ['shared', 'schema', 'database'] as const)
      await onboarding.run({ slug: `warm-${tier}`, name: 'Warm-up', ...(plans[tier] ? { plan: plans[tier] } : {}) });
    for (const tier of ['shared', 'schema', 'database'] as const) {
      const n = counts[tier];
      const recorder = new LatencyRecorder(n);
      const cpu = process.cpuUsage();
      for (let i = 0; i < n; i++) {
        const t0 = process.hrtime.bigint();
        const result = await onboarding.run({
          slug: `on-${tier}-${i}`,
          name: `Onboarded ${i}`,
          ...(plans[tier] ? { plan: plans[tier] } : {}),
        });
        recorder.record(Number(process.hrtime.bigint() - t0));
        if (result.target.tier !== tier || result.outcome !== 'onboarded')
          throw new Error(`expected a ${tier} onboarding, got ${result.target.tier} ${result.outcome}`);
      }
      const used = process.cpuUsage(cpu);
      const [p50, p99, max] = recorder.percentiles(50, 99, 100);
      runs.push({ tier, count: n, p50: p50!, p99: p99!, max: max!, cpuMsPerOp: (used.user + used.system) / 1000 / n });
    }
    return runs;
  } finally {
    await onboarding.end();
    await catalog.end();
  }
}
