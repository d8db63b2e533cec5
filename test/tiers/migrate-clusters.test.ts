import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Placements } from '../../src/tiers/placements.js';
import { createTenantSchema } from '../../src/tiers/provision.js';
import { migrateEverywhere } from '../../src/tiers/migrate/migrate-everywhere.js';
import { doctorEverywhere } from '../../src/tiers/migrate/doctor-everywhere.js';
import { useTestClusters, type ClusterDatabase } from '../support/clusters.js';

// Two real PostgreSQL servers: `home` (the catalog, a tenant schema) and `eu` (its shared
// database, a tenant schema in it, and a tenant database). One run migrates all five targets.
const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'migrations');
const fleet = useTestClusters(2);
let home: ClusterDatabase;
let eu: ClusterDatabase;
let euTenantDb: ClusterDatabase;
let placements: Placements;

async function tenant(slug: string): Promise<string> {
  const id = randomUUID();
  await home.owner.query(`insert into tenantry.tenants (id, slug, name) values ($1, $2, $2)`, [id, slug]);
  return id;
}

beforeAll(async () => {
  const [c1, c2] = fleet().clusters;
  home = await c1!.createDatabase();
  eu = await c2!.createDatabase();
  euTenantDb = await c2!.createDatabase();
  placements = new Placements({ catalog: home.owner, owners: { home: home.ownerUrl, eu: eu.ownerUrl } });
  await placements.addCluster('eu');
  await createTenantSchema(home.owner, 't_home', 'select 1');
  await placements.assign(await tenant('home-schema'), { tier: 'schema', cluster: 'home', schema: 't_home' });
  await createTenantSchema(eu.owner, 't_eu', 'select 1');
  await placements.assign(await tenant('eu-schema'), { tier: 'schema', cluster: 'eu', schema: 't_eu' });
  await placements.assign(await tenant('eu-database'), { tier: 'database', cluster: 'eu', database: euTenantDb.name });
});

afterAll(async () => {
  await placements?.end();
});

async function tables(db: ClusterDatabase): Promise<string[]> {
  const { rows } = await db.admin.query<{ t: string }>(
    `select n.nspname || '.' || c.relname as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind = 'r' and c.relname in ('notes', 'note_tags') and c.relforcerowsecurity order by 1`,
  );
  return rows.map((r) => r.t);
}

it('migrates every cluster from the catalog; a cluster without a connection is reported, not skipped', async () => {
  const partial = await migrateEverywhere({
    catalog: home.owner,
    clusters: { home: home.ownerUrl },
    migrations: FIXTURES,
  });
  expect(partial.ok).toBe(false);
  // databases first, then schemas, each group by key (the databases' names are random: compare sorted)
  const sorted = <T extends unknown[]>(rows: T[]) => [...rows].sort((a, b) => String(a[0]).localeCompare(String(b[0])));
  expect(sorted(partial.results.map((r) => [r.target.key, r.status, r.failure?.sqlstate ?? null]))).toEqual(
    sorted([
      [`eu/?`, 'failed', 'CLUSTER_UNKNOWN'],
      [`eu/${euTenantDb.name}`, 'failed', 'CLUSTER_UNKNOWN'],
      [`home/${home.name}`, 'applied', null],
      [`eu/?/t_eu`, 'failed', 'CLUSTER_UNKNOWN'],
      [`home/${home.name}/t_home`, 'applied', null],
    ]),
  );
  expect(partial.results.map((r) => r.target.schema === null)).toEqual([true, true, true, false, false]);

  const clusters = { home: home.ownerUrl, eu: eu.ownerUrl };
  const full = await migrateEverywhere({ catalog: home.owner, clusters, migrations: FIXTURES });
  expect(full.ok).toBe(true);
  expect(sorted(full.results.map((r) => [r.target.key, r.target.kind, r.status, r.version]))).toEqual(
    sorted([
      [`eu/${eu.name}`, 'shared', 'applied', 3],
      [`eu/${euTenantDb.name}`, 'database', 'applied', 3],
      [`home/${home.name}`, 'shared', 'current', 3],
      [`eu/${eu.name}/t_eu`, 'schema', 'applied', 3],
      [`home/${home.name}/t_home`, 'schema', 'current', 3],
    ]),
  );
  expect(await tables(home)).toEqual(['public.note_tags', 'public.notes', 't_home.note_tags', 't_home.notes']);
  expect(await tables(eu)).toEqual(['public.note_tags', 'public.notes', 't_eu.note_tags', 't_eu.notes']);
  expect(await tables(euTenantDb)).toEqual(['public.note_tags', 'public.notes']);

  const adminUrls = { home: home.adminUrl, eu: eu.adminUrl };
  const audit = await doctorEverywhere({ catalog: home.owner, clusters: adminUrls });
  expect(sorted(audit.databases.map((d) => [`${d.cluster}/${d.database}`, d.schemas, d.report?.ok, d.error]))).toEqual(
    sorted([
      [`eu/${eu.name}`, ['public', 't_eu'], true, null],
      [`eu/${euTenantDb.name}`, ['public'], true, null],
      [`home/${home.name}`, ['public', 't_home'], true, null],
    ]),
  );
  const client = new pg.Client({ connectionString: euTenantDb.adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query(`select target, version from tenantry.schema_migrations order by version`);
    expect(rows).toEqual([
      { target: 'public', version: 1 },
      { target: 'public', version: 2 },
      { target: 'public', version: 3 },
    ]);
  } finally {
    await client.end();
  }
});
