import pg from 'pg';
import { runAs } from '../../src/context/tenant-context.js';
import { install } from '../../src/policy/installer.js';
import { Placements, type PlacementTarget } from '../../src/tiers/placements.js';
import { createTenantDatabase } from '../../src/tiers/provision.js';
import { RoutedTenantPool } from '../../src/tiers/routed-tenant-pool.js';
import { TenantRouter } from '../../src/tiers/tenant-router.js';
import { benchInstallOptions, type BenchRoles } from './dataset.js';
import { hopOk, runHop, type HopResult } from './move-hop.js';
import { openServer, type BenchServer } from './server.js';

/** The shared database of each server in the cross-server run (the first one is home: the catalog). */
export const CLUSTER_HOME_DB = 'tenantry_bench_xmove';
const SHARED_DB = 'tenantry_bench_move';
const OWN_DB = 'tenantry_bench_move_t';
const OTHER_ROWS = 10_000;
/** Pause between two writes of a bystander tenant: light load, so the hops stay comparable with the single-server one. */
const OTHER_PAUSE_MS = 20;

/** Options of {@link runClusterMoves}. */
export interface ClusterMovesOptions {
  /** Server 1 (already open): its `CLUSTER_HOME_DB` is the home database. */
  server: BenchServer;
  roles: BenchRoles;
  rows: number;
  writers: number;
  batchSize: number;
  timeoutMs: number;
  ddl: string;
  /** The same-run single-server hop the cross-server hops are compared with. */
  single: HopResult;
  log: (line?: string) => void;
}

interface Bystander {
  slug: string;
  id: string;
  where: PlacementTarget;
  /** count and sum of a 64-bit hash of the seeded rows, before the moves. */
  seeded: { n: number; sum: string };
  acked: string[];
  failed: number;
}

const place = (t: PlacementTarget) =>
  `${t.cluster === 'home' ? 'c1' : t.cluster} ${t.tier === 'database' ? `own database` : t.tier === 'schema' ? `schema ${t.schema}` : 'shared'}`;
const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : 'n/a');

/**
 * Issue 5's bench on real servers: starts two more embedded PostgreSQL servers, installs Tenantry
 * on a database of each with the same roles and context secret, registers them, and moves the big
 * tenant home shared (server 1) → its own database on server 2 → the shared tables of server 3,
 * under the same writers, while three other tenants (one per server) keep writing. Prints both
 * hops next to the same-run single-server hop, with ratios. Stops the servers it started, whatever happens.
 * Returns true when every check passed.
 */
export async function runClusterMoves(o: ClusterMovesOptions): Promise<boolean> {
  const { roles, log } = o;
  const installOptions = benchInstallOptions(roles);
  const extra: BenchServer[] = [];
  const pools: pg.Pool[] = [];
  let placements: Placements | undefined;
  let router: TenantRouter | undefined;
  let app: RoutedTenantPool | undefined;
  const others: Bystander[] = [];
  let othersStopped = false;
  let otherLoops: Promise<void>[] = [];
  try {
    let t0 = Date.now();
    for (let i = 0; i < 2; i++) extra.push(await openServer(undefined));
    const servers = [o.server, ...extra];
    log(`\n## Across three servers (\`--clusters=3\`)\n`);
    log(
      `started 2 more embedded servers (PostgreSQL ${extra.map((s) => s.version).join(', ')}) in ${((Date.now() - t0) / 1000).toFixed(1)} s; ports ${servers.map((s) => new URL(s.adminUrl).port || '5432').join(', ')} (c1 = home, catalog)`,
    );

    // one shared database per server, Tenantry installed with the same roles and context secret
    const sharedDb = [CLUSTER_HOME_DB, SHARED_DB, SHARED_DB];
    const owners: Record<string, string> = {};
    const apps: Record<string, string> = {};
    const names = ['home', 'c2', 'c3'];
    for (const [i, s] of servers.entries()) {
      await s.createDatabase(sharedDb[i]!);
      await install(s.url(sharedDb[i]!), installOptions);
      owners[names[i]!] = s.url(sharedDb[i]!, roles.owner);
      apps[names[i]!] = s.url(sharedDb[i]!, roles.app);
      const owner = new pg.Pool({ connectionString: owners[names[i]!], max: 2 });
      pools.push(owner);
      await owner.query(o.ddl);
    }
    await extra[0]!.createDatabase(OWN_DB); // afresh; createTenantDatabase installs and runs the DDL
    await createTenantDatabase({
      adminUrl: extra[0]!.adminUrl,
      ownerUrl: owners.c2!,
      database: OWN_DB,
      ddl: o.ddl,
      ...installOptions,
    });

    const catalog = new pg.Pool({ connectionString: owners.home, max: 4 });
    const routerHome = servers[0]!.url(sharedDb[0]!, roles.router);
    const catalogApp = new pg.Pool({ connectionString: routerHome, max: 2 });
    pools.push(catalog, catalogApp);
    placements = new Placements({ catalog, owners });
    await placements.addCluster('c2');
    await placements.addCluster('c3');

    const newTenant = async (slug: string) =>
      (
        await catalog.query<{ id: string }>(`insert into tenantry.tenants (slug, name) values ($1, $1) returning id`, [
          slug,
        ])
      ).rows[0]!.id;
    const tenant = await newTenant('big');
    t0 = Date.now();
    for (let done = 0; done < o.rows; done += 100_000) {
      await catalog.query(
        `insert into notes (tenant_id, body) select $1, 'seed-' || g from generate_series($2::int, $3::int) g`,
        [tenant, done, Math.min(done + 100_000, o.rows) - 1],
      );
    }
    const spots: Array<[string, PlacementTarget]> = [
      ['o1', { tier: 'shared', cluster: 'home' }],
      ['o2', { tier: 'shared', cluster: 'c2' }],
      ['o3', { tier: 'shared', cluster: 'c3' }],
    ];
    for (const [slug, where] of spots) {
      const id = await newTenant(slug);
      if (where.cluster !== 'home') await placements.assign(id, where);
      const at = placements.ownerPool(where);
      await at.query(
        `insert into notes (tenant_id, body) select $1, 'other-' || g from generate_series(1, ${OTHER_ROWS}) g`,
        [id],
      );
      others.push({ slug, id, where, seeded: await seededSum(at, id), acked: [], failed: 0 });
    }
    for (const p of pools.slice(0, servers.length)) await p.query('vacuum analyze notes'); // the owners of the shared databases
    log(
      `seeded ${o.rows} rows for the moving tenant on c1 (+${OTHER_ROWS.toLocaleString('en')} for each of o1 on c1, o2 on c2, o3 on c3, shared tables) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );

    router = new TenantRouter({ pool: catalogApp, listenConnectionString: routerHome });
    await router.start();
    app = new RoutedTenantPool({
      router,
      clusters: apps,
      contextSecret: roles.contextSecret,
      maxConnections: o.writers + 2 + others.length,
      freezeWaitMs: 10_000,
    });
    const routed = app;

    // the bystanders write all along, one write each every OTHER_PAUSE_MS
    otherLoops = others.map(async (b) => {
      for (let i = 0; !othersStopped; i++) {
        try {
          await runAs(b.id, () => routed.query('insert into notes (body) values ($1)', [`o-${b.slug}-${i}`]));
          b.acked.push(`o-${b.slug}-${i}`);
        } catch {
          b.failed++;
        }
        await new Promise((resolve) => setTimeout(resolve, OTHER_PAUSE_MS));
      }
    });

    const hops: HopResult[] = [];
    let from: PlacementTarget = { tier: 'shared', cluster: 'home' };
    let rowsBefore = o.rows;
    for (const to of [
      { tier: 'database', cluster: 'c2', database: OWN_DB },
      { tier: 'shared', cluster: 'c3' },
    ] satisfies PlacementTarget[]) {
      log(`\nhop ${hops.length + 1}: ${place(from)} → ${place(to)}`);
      const hop = await runHop({
        placements,
        catalog,
        pool: routed,
        tenant,
        from,
        to,
        rowsBefore,
        writers: o.writers,
        batchSize: o.batchSize,
        timeoutMs: o.timeoutMs,
        log,
      });
      hops.push(hop);
      if (!hop.finished) break; // the tenant still has that move open: no next hop
      from = to;
      rowsBefore = hop.rowsAtTarget;
    }
    othersStopped = true;
    await Promise.all(otherLoops);

    const checked = await Promise.all(
      others.map(async (b) => {
        const at = placements!.ownerPool(b.where);
        const now = await seededSum(at, b.id);
        const w = (
          await at.query<{ n: string; d: string; total: string }>(
            `select count(*) as n, count(distinct body) as d, (select count(*) from notes where tenant_id = $1) as total from notes where tenant_id = $1 and body = any($2)`,
            [b.id, b.acked],
          )
        ).rows[0]!;
        const expected = OTHER_ROWS + b.acked.length;
        const ok =
          now.n === b.seeded.n &&
          now.sum === b.seeded.sum &&
          Number(w.d) === b.acked.length &&
          Number(w.n) === Number(w.d) &&
          Number(w.total) === expected &&
          b.failed === 0;
        return { b, now, found: Number(w.d), total: Number(w.total), expected, ok };
      }),
    );

    log(
      `\nmoved the ${o.rows}-row tenant under ${o.writers} continuous writers (batch ${o.batchSize}); ratios against the single-server hop of this run\n`,
    );
    log(
      '| hop | rows moved | freeze ms | total s | slowest write ms | writes acked | found at target | lost | duplicated | failed (retryable) | rows at target | cleanup s | left at source | freeze ×single | total ×single |',
    );
    log('|:--|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    const row = (label: string, h: HopResult) =>
      h.finished
        ? log(
            `| ${label} | ${h.rowsBefore} | ${h.freezeMs} | ${(h.totalMs / 1000).toFixed(1)} | ${h.slowestMs} | ${h.acked} | ${h.found} | ${h.lost} | ${h.duplicated} | ${h.failed} | ${h.rowsAtTarget} (expected ${h.expectedAtTarget}) | ${(h.cleanupMs / 1000).toFixed(1)} | ${h.leftAtSource} | ${ratio(h.freezeMs, o.single.freezeMs)} | ${ratio(h.totalMs, o.single.totalMs)} |`,
          )
        : log(
            `| ${label} | ${h.rowsBefore} | not done | > ${(h.totalMs / 1000).toFixed(0)} | ${h.slowestMs} | ${h.acked} | - | - | - | ${h.failed} | - | - | - | - | - |`,
          );
    row(`single server: c1 shared → ${place(o.single.to)}`, o.single);
    row(`hop 1: c1 shared → c2 own database`, hops[0]!);
    if (hops[1]) row(`hop 2: c2 own database → c3 shared`, hops[1]);

    log('\nother tenants (one writer each, a write every 20 ms, throughout both hops)\n');
    log(
      '| tenant | at | seeded rows unchanged (count, hash sum) | writes acked | found | rows now | expected | failed |',
    );
    log('|:--|:--|:--|---:|---:|---:|---:|---:|');
    for (const c of checked) {
      const same = c.now.n === c.b.seeded.n && c.now.sum === c.b.seeded.sum;
      log(
        `| ${c.b.slug} | ${place(c.b.where)} | ${same ? 'yes' : 'NO'} (${c.now.n}) | ${c.b.acked.length} | ${c.found} | ${c.total} | ${c.expected} | ${c.b.failed} |`,
      );
    }

    const hopsOk = hops.length === 2 && hops.every(hopOk);
    log('');
    for (const [i, h] of hops.entries()) {
      if (h.writersStoppedMs !== undefined)
        log(
          `- FAIL: hop ${i + 1} not switched after ${o.timeoutMs / 1000} s under load: writers stopped ${(h.writersStoppedMs / 1000).toFixed(1)} s into the move (step ${h.lastStep}, backlog ${h.lastBacklog})${h.finished ? `; it then finished in ${(h.totalMs / 1000).toFixed(1)} s` : `; abandoned at ${(h.totalMs / 1000).toFixed(0)} s`}`,
        );
    }
    const othersOk = checked.every((c) => c.ok);
    const maxFreeze = Math.max(...hops.map((h) => (h.finished ? h.freezeMs : Number.POSITIVE_INFINITY)));
    const hopWord = (h: HopResult, i: number, what: (h: HopResult) => string) =>
      `hop ${i + 1}: ${h.finished ? what(h) : 'not done'}`;
    log(
      `- ${maxFreeze <= 1000 && hops.length === 2 ? 'PASS' : 'FAIL'}: write freeze across servers (target ≤ 1000 ms): ${hops.map((h, i) => hopWord(h, i, (x) => `${x.freezeMs} ms`)).join('; ')}`,
    );
    log(
      `- ${hopsOk ? 'PASS' : 'FAIL'}: ${hops.map((h, i) => hopWord(h, i, (x) => `${x.lost} lost, ${x.duplicated} duplicated, ${x.leftAtSource} left at the source`)).join('; ')}`,
    );
    log(
      `- ${othersOk ? 'PASS' : 'FAIL'}: the other tenants' rows ${othersOk ? 'unchanged, every acknowledged write there once' : 'CHANGED or writes missing'}`,
    );
    return hopsOk && othersOk;
  } finally {
    othersStopped = true;
    await Promise.all(otherLoops).catch(() => undefined);
    await app?.end().catch(() => undefined);
    await router?.close().catch(() => undefined);
    await placements?.end().catch(() => undefined);
    for (const p of pools) {
      p.on('error', () => undefined);
      await p.end().catch(() => undefined);
    }
    for (const s of extra)
      await s
        .close({ databases: [OWN_DB, SHARED_DB], roles: [roles.app.name, roles.owner.name, roles.router.name] })
        .catch((e: unknown) => process.stderr.write(`stopping a server failed: ${String(e)}\n`));
  }
}

/** Count and sum of a 64-bit hash of a tenant's seeded rows (id and body). */
async function seededSum(pool: pg.Pool, tenant: string): Promise<{ n: number; sum: string }> {
  const { rows } = await pool.query<{ n: string; sum: string }>(
    `select count(*) as n, coalesce(sum(hashtextextended(id::text || ':' || body, 0)), 0)::text as sum from notes where tenant_id = $1 and body like 'other-%'`,
    [tenant],
  );
  return { n: Number(rows[0]!.n), sum: rows[0]!.sum };
}
