import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Placements } from '../../src/tiers/placements.js';
import { placementQuestion, planPlacementPolicy, type ClusterLoad } from '../../src/tiers/placement-policy.js';
import { createTenantSchema } from '../../src/tiers/provision.js';
import { NOTES_DDL } from '../support/notes-table.js';
import { createTestDatabase, ROLE_PASSWORD, type TestDatabase } from '../support/test-database.js';

const cluster = (
  name: string,
  tenants: number,
  capacity = 100,
  status: ClusterLoad['status'] = 'active',
): ClusterLoad => ({
  name,
  status,
  capacity,
  tenants,
  load: capacity > 0 ? tenants / capacity : Infinity,
});
const tenant = (slug: string, settings: Record<string, unknown> = {}) => ({
  id: '00000000-0000-4000-8000-000000000001',
  slug,
  settings,
});

describe('the plan policy', () => {
  const policy = planPlacementPolicy({ tiers: { enterprise: 'database', business: 'schema' } });

  it('takes the tier from the plan and the least-loaded active cluster, and says why', () => {
    const decision = policy.decide({
      tenant: tenant('big-corp', { plan: 'enterprise' }),
      clusters: [cluster('home', 80), cluster('eu', 10, 50), cluster('us', 5, 100, 'draining')],
    });
    expect(decision.target).toEqual({ tier: 'database', cluster: 'eu', database: 'tenant_big_corp' });
    expect(decision.reasons[0]).toBe('plan enterprise → tier database');
    expect(decision.reasons[1]).toMatch(/^cluster eu: least loaded \(10 tenants \/ capacity 50\)/);
    expect(decision.reasons).toContain('cluster us skipped: draining');
  });

  it('places unknown plans and tenants without a plan in the default tier', () => {
    expect(policy.decide({ tenant: tenant('small'), clusters: [cluster('home', 1)] }).target).toEqual({
      tier: 'shared',
      cluster: 'home',
    });
    const trial = policy.decide({ tenant: tenant('trial', { plan: 'trial' }), clusters: [cluster('home', 1)] });
    expect(trial.target.tier).toBe('shared');
    expect(trial.reasons[0]).toBe('plan trial has no tier of its own: the default tier shared');
    expect(
      policy.decide({ tenant: tenant('mid-co'), plan: 'business', clusters: [cluster('home', 1)] }).target,
    ).toEqual({ tier: 'schema', cluster: 'home', schema: 't_mid_co' });
  });

  it('keeps tiers to their clusters, and refuses when none may take one', () => {
    const pinned = planPlacementPolicy({
      tiers: { enterprise: 'database' },
      clustersByTier: { database: ['dedicated'] },
    });
    expect(
      pinned.decide({
        tenant: tenant('x', { plan: 'enterprise' }),
        clusters: [cluster('home', 0), cluster('dedicated', 90)],
      }).target.cluster,
    ).toBe('dedicated');
    expect(() =>
      pinned.decide({
        tenant: tenant('x', { plan: 'enterprise' }),
        clusters: [cluster('home', 0), cluster('dedicated', 0, 100, 'disabled')],
      }),
    ).toThrow(/No active cluster/);
    expect(() => planPlacementPolicy({ tiers: { gold: 'vault' as 'shared' } })).toThrow(/Unknown tier/);
  });
});

describe('placement questions from the catalog, and `tenantry tenants place`', () => {
  let db: TestDatabase;
  let dir: string;
  let placements: Placements;

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-place-'));
    placements = new Placements({ catalog: db.owner, owners: { home: db.ownerUrl } });
    await placements.addCluster('eu', { capacity: 10 });
    for (const slug of ['a1', 'a2', 'a3'])
      await db.owner.query(`insert into tenantry.tenants (slug, name) values ($1, $1)`, [slug]);
    await db.owner.query(
      `insert into tenantry.tenants (slug, name, settings) values ('mega', 'Mega', '{"plan":"enterprise"}')`,
    );
  });
  afterAll(async () => {
    await placements?.end();
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('counts tenants without a placement on the home cluster', async () => {
    const q = await placementQuestion(db.owner, 'mega');
    expect(q.clusters.map((c) => [c.name, c.tenants, c.capacity])).toEqual([
      ['eu', 0, 10],
      ['home', 4, 1000],
    ]);
    expect(q.tenant.settings).toEqual({ plan: 'enterprise' });
  });

  /** The CLI as a subprocess against the test database; never throws. */
  async function tenantry(...args: string[]): Promise<{ code: number; stdout: string }> {
    try {
      const { stdout } = await promisify(execFile)(
        path.resolve('node_modules/.bin/tsx'),
        [path.resolve('src/cli/main.ts'), '--database-url', db.adminUrl, '--dir', dir, ...args],
        {
          env: {
            ...process.env,
            TENANTRY_APP_PASSWORD: ROLE_PASSWORD,
            TENANTRY_OWNER_PASSWORD: ROLE_PASSWORD,
            TENANTRY_APP_ROLE: db.appRole,
            TENANTRY_OWNER_ROLE: db.ownerRole,
            TENANTRY_CONTEXT_SECRET: db.contextSecret,
          },
        },
      );
      return { code: 0, stdout };
    } catch (error) {
      const e = error as { code: number; stdout: string };
      return { code: e.code, stdout: e.stdout };
    }
  }

  it('explains where a tenant lives and where it would go, changing nothing', async () => {
    const { stdout } = await tenantry('tenants', 'place', 'mega');
    expect(stdout).toContain('now:    shared on cluster home\n');
    // home holds 4 of 1000 (0.4%), eu none of 10: eu is the least loaded
    expect(stdout).toContain('target: database on cluster eu, database tenant_mega');
    expect(stdout).toContain('plan enterprise → tier database');
    expect(stdout).toContain(
      'Apply it with: tenantry tenants move mega --to database --cluster eu --database tenant_mega',
    );
    expect((await db.owner.query('select count(*)::int as n from tenantry.placements')).rows[0].n).toBe(0);
  });

  it('says where a placed tenant lives now', async () => {
    const { rows } = await db.owner.query<{ id: string }>(`select id from tenantry.tenants where slug = 'a2'`);
    await createTenantSchema(db.owner, 't_a2', NOTES_DDL);
    await placements.assign(rows[0]!.id, { tier: 'schema', cluster: 'home', schema: 't_a2' });
    try {
      const placed = await tenantry('tenants', 'place', 'a2', '--json');
      const answer = JSON.parse(placed.stdout);
      expect(answer.current).toMatchObject({ tier: 'schema', cluster: 'home', schema: 't_a2', database: null });
      expect(answer.openMove).toBe(null);
      expect(answer.alreadyThere).toBe(false);
      const text = await tenantry('tenants', 'place', 'a2');
      expect(text.stdout).toContain('now:    schema on cluster home, schema t_a2\n');
      expect(text.stdout).toContain('target: shared on cluster eu\n');
      expect(text.stdout).toContain('Apply it with: tenantry tenants move a2 --to shared --cluster eu\n');
    } finally {
      await db.owner.query('delete from tenantry.placements where tenant_id = $1', [rows[0]!.id]);
      await db.owner.query('drop schema t_a2 cascade');
    }
  });

  it('doctor --placements audits every tenant schema too, and finds a defect planted in one', async () => {
    const { rows } = await db.owner.query<{ id: string }>(`select id from tenantry.tenants where slug = 'a1'`);
    await createTenantSchema(db.owner, 't_a1', NOTES_DDL);
    await placements.assign(rows[0]!.id, { tier: 'schema', cluster: 'home', schema: 't_a1' });
    // a registered cluster without a connection is reported, never skipped silently
    const unreachable = await tenantry('doctor', '--placements');
    expect(unreachable.code).toBe(1);
    expect(unreachable.stdout).toContain('could not be audited: No connection is configured for cluster eu');
    const clusters = JSON.stringify({ eu: db.ownerUrl }); // this test's "eu" is the same server
    const clean = await tenantry('doctor', '--placements', '--clusters', clusters);
    expect(clean.code, clean.stdout).toBe(0);
    expect(clean.stdout).toContain('schemas: public, t_a1');
    await db.owner.query('alter table t_a1.notes no force row level security');
    const dirty = await tenantry('doctor', '--placements', '--clusters', clusters);
    expect(dirty.code).toBe(1);
    expect(dirty.stdout).toMatch(/TENANT_TABLE_RLS_NOT_FORCED[\s\S]*t_a1\.notes/);
  });
});
