// Three real PostgreSQL servers on loopback: the catalog on the first, tenants placed across all
// three (shared tables on two clusters, an own database on the third), one RoutedTenantPool
// serving them all with the same application code.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { Placements } from '../../src/tiers/placements.js';
import { RoutedTenantPool } from '../../src/tiers/routed-tenant-pool.js';
import { TenantRouter } from '../../src/tiers/tenant-router.js';
import { useTestClusters, type ClusterDatabase } from '../support/clusters.js';
import { createNotesTable } from '../support/notes-table.js';

const fleet = useTestClusters(3);
let home: ClusterDatabase;
let second: ClusterDatabase;
let tenantDb: ClusterDatabase;
let thirdShared: ClusterDatabase;
let placements: Placements;
let router: TenantRouter;
let pool: RoutedTenantPool;
let catalogApp: pg.Pool;
const t: Record<'a' | 'b' | 'c', string> = { a: '', b: '', c: '' };

beforeAll(async () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a test double of an untyped shape
  const [c1, c2, c3] = fleet().clusters as [NonNullable<ReturnType<typeof fleet>['clusters'][0]>, any, any];
  home = await c1.createDatabase('app');
  second = await c2.createDatabase('app');
  // the third cluster's shared database is its own: a tenant's database is never a cluster's shared
  // one (Placements.assign refuses that: PLACEMENT_TARGET_TAKEN)
  thirdShared = await c3.createDatabase('app');
  tenantDb = await c3.createDatabase('tenant_c');
  for (const db of [home, second, tenantDb]) await createNotesTable(db);
  for (const slug of ['a', 'b', 'c'] as const) {
    t[slug] = (
      await home.owner.query<{ id: string }>(`insert into tenantry.tenants (slug, name) values ($1, $1) returning id`, [
        `mc-${slug}`,
      ])
    ).rows[0]!.id;
  }
  placements = new Placements({
    catalog: home.owner,
    owners: { home: home.ownerUrl, c2: second.ownerUrl, c3: thirdShared.ownerUrl },
  });
  await placements.addCluster('c2');
  await placements.addCluster('c3');
  await placements.assign(t.b, { tier: 'shared', cluster: 'c2' });
  await placements.assign(t.c, { tier: 'database', cluster: 'c3', database: 'tenant_c' });
  catalogApp = new pg.Pool({ connectionString: home.routerUrl, max: 2 });
  // end() resolves before every socket has closed: the clusters' DROP … WITH (FORCE) can then
  // send a closing idle client 57P01, which the pool hands on as an 'error' (CI run 16)
  catalogApp.on('error', () => undefined);
  router = new TenantRouter({ pool: catalogApp, listenConnectionString: home.routerUrl });
  await router.start();
  pool = new RoutedTenantPool({
    router,
    clusters: { home: home.appUrl, c2: second.appUrl, c3: thirdShared.appUrl },
    contextSecret: fleet().contextSecret,
    maxConnections: 6,
  });
});

afterAll(async () => {
  await pool?.end();
  await router?.close();
  await placements?.end();
  await catalogApp?.end();
});

async function bodiesOn(db: ClusterDatabase): Promise<Array<{ tenant_id: string; body: string }>> {
  return (await db.admin.query('select tenant_id, body from notes order by body')).rows;
}

describe('one pool, three servers', () => {
  it('serves every tenant where it lives, with the same code', async () => {
    await Promise.all(
      (['a', 'b', 'c'] as const).map((k) =>
        runAs(t[k], () => pool.query('insert into notes (body) values ($1)', [`hello from ${k}`])),
      ),
    );
    expect(await bodiesOn(home)).toEqual([{ tenant_id: t.a, body: 'hello from a' }]);
    expect(await bodiesOn(second)).toEqual([{ tenant_id: t.b, body: 'hello from b' }]);
    expect(await bodiesOn(tenantDb)).toEqual([{ tenant_id: t.c, body: 'hello from c' }]);
    for (const k of ['a', 'b', 'c'] as const) {
      const { rows } = await runAs(t[k], () => pool.query<{ body: string }>('select body from notes'));
      expect(rows).toEqual([{ body: `hello from ${k}` }]);
    }
  });

  it("a tenant's signed context is refused on a server where it does not live", async () => {
    // B's context sent to the home server and to C's database: the route epoch does not match
    for (const db of [home, tenantDb]) {
      const direct = db.appPool();
      await expect(runAs(t.b, () => direct.query('select count(*) from notes'))).rejects.toMatchObject({
        code: 'TR003',
      });
    }
  });

  it('moving the route to another cluster is heard by the router at once and followed by the pool', async () => {
    // B's rows are copied by hand here (the mover does this online); then the route switches
    await home.owner.query(`insert into notes (tenant_id, body) values ($1, 'hello from b')`, [t.b]);
    const epoch = await placements.assign(t.b, { tier: 'shared', cluster: 'home' });
    for (let i = 0; i < 100 && router.peek(t.b)?.epoch !== epoch; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(router.peek(t.b)).toMatchObject({ cluster: 'home', epoch });
    await runAs(t.b, () => pool.query(`insert into notes (body) values ('b after the move')`));
    expect((await bodiesOn(home)).filter((r) => r.tenant_id === t.b).map((r) => r.body)).toEqual([
      'b after the move',
      'hello from b',
    ]);
    // the old cluster refuses B from now on, even to a router that missed the change
    const stale = second.appPool();
    await expect(runAs(t.b, () => stale.query('select count(*) from notes'))).rejects.toMatchObject({ code: 'TR003' });
  });
});
