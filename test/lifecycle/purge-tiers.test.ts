// The purge across tiers and clusters: a schema-tier tenant (its schema dropped), a database-tier
// tenant on a second server (its database dropped), a shared-tier tenant on the second server with
// rows left behind in the home database by an earlier move. After each purge, the owner's scan of
// every table with a tenant_id column in every database finds nothing of it, and every other
// tenant's counts, in every database, are what they were.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { TenantCatalog } from '../../src/catalog/tenant-catalog.js';
import { TenantPurger } from '../../src/lifecycle/index.js';
import { Placements } from '../../src/tiers/placements.js';
import { createTenantSchema } from '../../src/tiers/provision.js';
import { useTestClusters, type ClusterDatabase } from '../support/clusters.js';
import { APP_DDL, nonEmpty, rowsOfTenant, seedTenant } from './support/purge-fixtures.js';

const fleet = useTestClusters(2);
let home: ClusterDatabase;
let c2: ClusterDatabase;
let tenantDb: ClusterDatabase;
let placements: Placements;
let catalog: TenantCatalog;
const ids: Record<string, string> = {};

beforeAll(async () => {
  const [one, two] = fleet().clusters;
  home = await one!.createDatabase('app');
  c2 = await two!.createDatabase('app');
  tenantDb = await two!.createDatabase('tenant_d');
  for (const db of [home, c2, tenantDb]) await db.owner.query(APP_DDL);
  // the purge drops tenant_d: this file's own idle connections to it are cut (57P01)
  tenantDb.owner.on('error', () => undefined);
  tenantDb.admin.on('error', () => undefined);
  placements = new Placements({ catalog: home.owner, owners: { home: home.ownerUrl, c2: c2.ownerUrl } });
  await placements.addCluster('c2');
  catalog = new TenantCatalog(home.owner, { placements });
  for (const slug of ['s', 'd', 'x', 'o-shared', 'o-schema', 'o-c2'])
    ids[slug] = (await catalog.create({ slug, name: slug })).id;

  await createTenantSchema(home.owner, 't_s', APP_DDL);
  await placements.assign(ids.s!, { tier: 'schema', cluster: 'home', schema: 't_s' });
  await seedTenant(home.owner, ids.s!, 300, { schema: 't_s' });
  await placements.assign(ids.d!, { tier: 'database', cluster: 'c2', database: 'tenant_d' });
  await seedTenant(tenantDb.owner, ids.d!, 300, { identity: false });
  await seedTenant(home.owner, ids.d!, 0, {}); // its sessions, keys… stay at home
  await placements.assign(ids.x!, { tier: 'shared', cluster: 'c2' });
  await seedTenant(c2.owner, ids.x!, 300, { identity: false });
  await seedTenant(home.owner, ids.x!, 40); // left behind at home by a move not cleaned up

  await seedTenant(home.owner, ids['o-shared']!, 50);
  await createTenantSchema(home.owner, 't_o', APP_DDL);
  await placements.assign(ids['o-schema']!, { tier: 'schema', cluster: 'home', schema: 't_o' });
  await seedTenant(home.owner, ids['o-schema']!, 50, { schema: 't_o' });
  await placements.assign(ids['o-c2']!, { tier: 'shared', cluster: 'c2' });
  await seedTenant(c2.owner, ids['o-c2']!, 50, { identity: false });
  for (const slug of ['s', 'd', 'x']) await catalog.softDelete(ids[slug]!);
});

afterAll(async () => {
  await placements?.end();
});

/** Every database's scan (owner role) for one tenant. */
async function everywhere(tenantId: string): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  const dbs: Array<[string, pg.Pool]> = [
    ['home/app', home.owner],
    ['c2/app', c2.owner],
  ];
  const exists = await c2.admin.query(`select 1 from pg_database where datname = 'tenant_d'`);
  if (exists.rows.length > 0) dbs.push(['c2/tenant_d', tenantDb.owner]);
  for (const [name, pool] of dbs) out[name] = await rowsOfTenant(pool, tenantId);
  return out;
}

/** The tables holding rows of the tenant, per database (databases where it holds none left out). */
function held(scan: Record<string, Record<string, number>>): Record<string, Record<string, number>> {
  return Object.fromEntries(
    Object.entries(scan)
      .map(([db, counts]) => [db, nonEmpty(counts)] as const)
      .filter(([, counts]) => Object.keys(counts).length > 0),
  );
}

describe('purge across tiers and clusters', () => {
  it('drops the schema-tier tenant schema, the database-tier tenant database, finds moved-away leftovers, and nothing else changes', async () => {
    const others = ['o-shared', 'o-schema', 'o-c2'];
    const othersBefore = Object.fromEntries(await Promise.all(others.map(async (o) => [o, await everywhere(ids[o]!)])));
    expect(held(await everywhere(ids.x!))).toMatchObject({
      'home/app': { 'public.notes': 40 },
      'c2/app': { 'public.notes': 300 },
    });

    // without a superuser URL of c2, the database-tier tenant's purge is refused up front
    const noAdmin = new TenantPurger({ catalog: home.owner, owners: { home: home.ownerUrl, c2: c2.ownerUrl } });
    await expect(noAdmin.run('d', { confirm: 'd', operator: 'ops', ignoreRetention: true })).rejects.toMatchObject({
      code: 'PURGE_NOT_READY',
    });
    await noAdmin.end();

    const purger = new TenantPurger({
      catalog: home.owner,
      owners: { home: home.ownerUrl, c2: c2.ownerUrl },
      admins: { c2: fleet().clusters[1]!.adminUrl },
      batchSize: 64,
    });
    const plan = await purger.plan('s', { ignoreRetention: true });
    expect(plan.blockers).toEqual([]);
    expect(plan.steps.find((s) => s.kind === 'schema')).toMatchObject({ schema: 't_s', action: 'drop' });
    expect(plan.steps.find((s) => s.table === 't_s.notes')).toMatchObject({ action: 'dropped', rowsBefore: 300 });

    const reports = [];
    for (const slug of ['s', 'd', 'x'])
      reports.push(await purger.run(slug, { confirm: slug, operator: 'ops', ignoreRetention: true }));
    await purger.end();

    for (const slug of ['s', 'd', 'x']) {
      const scan = await everywhere(ids[slug]!);
      expect(Object.keys(scan).sort()).toEqual(['c2/app', 'home/app']); // tenant_d is gone
      expect(held(scan)).toEqual({});
    }
    // every other tenant: the same rows in the same tables of the same databases
    for (const o of others) {
      expect(held(await everywhere(ids[o]!))).toEqual(held(othersBefore[o]));
      expect(Object.keys(held(othersBefore[o])).length).toBeGreaterThan(0);
    }
    expect((await home.admin.query(`select 1 from pg_namespace where nspname = 't_s'`)).rows).toEqual([]);
    expect((await home.admin.query(`select 1 from pg_namespace where nspname = 't_o'`)).rows).toHaveLength(1);
    expect((await c2.admin.query(`select 1 from pg_database where datname = 'tenant_d'`)).rows).toEqual([]);
    expect((await home.owner.query('select count(*)::int as n from tenantry.placements')).rows[0].n).toBe(2);

    const [s, d, x] = reports.map((r) => r.report);
    expect(reports.every((r) => r.valid)).toBe(true);
    expect(s!.steps.filter((st) => st.dropped).map((st) => st.table ?? st.schema)).toEqual(
      expect.arrayContaining(['t_s.notes', 't_s.comments', 't_s']),
    );
    expect(d!.steps.find((st) => st.kind === 'database')).toMatchObject({
      cluster: 'c2',
      database: 'tenant_d',
      dropped: true,
      rowsAfter: 0,
    });
    expect(
      x!.steps.filter((st) => st.table === 'public.notes').map((st) => [st.cluster, st.rowsBefore, st.rowsAfter]),
    ).toEqual(
      expect.arrayContaining([
        ['home', 40, 0],
        ['c2', 300, 0],
      ]),
    );
  });
});
