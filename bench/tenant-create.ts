/**
 * Tenant creation benchmark: creates 10,000 tenants through the catalog API
 * (`new TenantCatalog(ownerPool).create({ slug, name })`), one after another by default,
 * and reports p50/p99 per create and the total. Targets: p50 ≤ 5 ms, total ≤ 60 s.
 *
 * Then onboarding in one step (`TenantOnboarding.run`: create and place, provision, migrate,
 * route, done) per tier, side by side with the plain create: p50 per tier against the targets
 * shared ≤ 5 ms, schema ≤ 150 ms, database ≤ 2 s (`--onboard=shared,schema,database` counts,
 * default 200,30,5; `--onboard=0,0,0` skips it).
 *
 *   npm run bench:tenants
 *   npm run bench:tenants -- --count=1000 --concurrency=4 --onboard=100,20,5
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:tenants
 */
import os from 'node:os';
import pg from 'pg';
import { TenantCatalog } from '../src/catalog/tenant-catalog.js';
import { benchRoles, installBench } from './support/dataset.js';
import { LatencyRecorder } from './support/latency.js';
import { machineLine, vitestProcesses, runBenchMain } from './support/report.js';
import { openServer } from './support/server.js';
import { benchOnboarding, onboardDatabase, type TierRun } from './support/onboard-tiers.js';

const DATABASE = 'tenantry_bench_tenants';
const TARGET_P50_MS = 5;
const TARGET_TOTAL_S = 60;
const ONBOARD_TARGET_MS: Record<TierRun['tier'], number> = { shared: 5, schema: 150, database: 2000 };

function onboardCounts(): Record<TierRun['tier'], number> {
  const raw = process.argv.find((a) => a.startsWith('--onboard='))?.split('=')[1] ?? '200,30,5';
  const [shared, schema, database] = raw.split(',').map(Number);
  for (const n of [shared, schema, database])
    if (!Number.isInteger(n) || n! < 0) throw new Error('--onboard takes three counts: shared,schema,database');
  return { shared: shared!, schema: schema!, database: database! };
}

function flag(name: string, envName: string, fallback: number): number {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? process.env[envName];
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

async function serverSettings(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query(
      `select name, setting from pg_settings where name in ('fsync', 'synchronous_commit', 'wal_sync_method') order by name`,
    );
    return rows.map((r) => `${r.name}=${r.setting}`);
  } finally {
    await client.end();
  }
}

const log = (line = '') => process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  const count = flag('count', 'BENCH_TENANT_COUNT', 10_000);
  const onboard = onboardCounts();
  const tenantDatabases = Array.from({ length: onboard.database }, (_, i) => onboardDatabase(`on-database-${i}`));
  tenantDatabases.push(onboardDatabase('warm-database'));
  const concurrency = flag('concurrency', 'BENCH_TENANT_CONCURRENCY', 1);
  const vitest = vitestProcesses();
  const roles = benchRoles();
  // a write benchmark: commits must reach the disk, as on a real server (embedded defaults to fsync off)
  const server = await openServer(process.env.DATABASE_URL, { fsync: 'on' });
  let pool: pg.Pool | undefined;
  try {
    log(`# Tenantry tenant-creation benchmark — ${new Date().toISOString()}`);
    log(`machine: ${machineLine(server.version, server.embedded)}`);
    const durability = (await serverSettings(server.adminUrl)).join(', ');
    log(`durability: ${durability}`);
    log(`load avg (1 min) at start: ${os.loadavg()[0]!.toFixed(2)}; other vitest processes: ${vitest}`);
    await server.createDatabase(DATABASE);
    await installBench(server.url(DATABASE), roles);
    pool = new pg.Pool({ connectionString: server.url(DATABASE, roles.owner), max: concurrency });
    pool.on('error', () => undefined); // idle clients end with the server at the end of the run
    const catalog = new TenantCatalog(pool);
    await catalog.create({ slug: 'warm-up', name: 'Warm-up tenant' }); // connection, catalog caches

    const recorder = new LatencyRecorder(count);
    const firstThousand = new LatencyRecorder(Math.min(1000, count));
    const lastThousand = new LatencyRecorder(Math.min(1000, count));
    let next = 0;
    const start = process.hrtime.bigint();
    const worker = async () => {
      for (let i = next++; i < count; i = next++) {
        const t0 = process.hrtime.bigint();
        await catalog.create({ slug: `tenant-${i}`, name: `Tenant ${i}` });
        const ns = Number(process.hrtime.bigint() - t0);
        recorder.record(ns);
        if (i < 1000) firstThousand.record(ns);
        if (i >= count - 1000) lastThousand.record(ns);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const totalSeconds = Number(process.hrtime.bigint() - start) / 1e9;

    const created = Number(
      (await pool.query(`select count(*) as n from tenantry.tenants where slug like 'tenant-%'`)).rows[0].n,
    );
    if (created !== count) throw new Error(`expected ${count} tenants, found ${created}`);
    const [p50, p99, max] = recorder.percentiles(50, 99, 100);
    const [firstP50] = firstThousand.percentiles(50);
    const [lastP50] = lastThousand.percentiles(50);
    log(
      `\ncreated ${count} tenants with TenantCatalog.create, concurrency ${concurrency} (owner pool of ${concurrency})\n`,
    );
    log('| tenants | total s | creates/s | p50 ms | p99 ms | max ms | p50 first 1,000 | p50 last 1,000 |');
    log('|---:|---:|---:|---:|---:|---:|---:|---:|');
    log(
      `| ${count} | ${totalSeconds.toFixed(2)} | ${Math.round(count / totalSeconds)} | ${p50!.toFixed(3)} | ${p99!.toFixed(3)} | ${max!.toFixed(1)} | ${firstP50!.toFixed(3)} | ${lastP50!.toFixed(3)} |`,
    );
    const okP50 = p50! <= TARGET_P50_MS;
    const okTotal = totalSeconds <= TARGET_TOTAL_S;
    log(`\n- ${okP50 ? 'PASS' : 'FAIL'}: p50 per create ${p50!.toFixed(3)} ms (target ≤ ${TARGET_P50_MS} ms)`);
    log(
      `- ${okTotal ? 'PASS' : 'FAIL'}: total ${totalSeconds.toFixed(2)} s for ${count} (target ≤ ${TARGET_TOTAL_S} s${count === 10_000 ? '' : ', scaled run'})`,
    );
    let okOnboard = true;
    if (onboard.shared + onboard.schema + onboard.database > 0) {
      const runs = await benchOnboarding(server, DATABASE, roles, onboard);
      log(
        `\nonboarded one after another with TenantOnboarding.run (create + place, provision, migrate 1 tenant table, route, done; no seed or invitation hook), beside the plain create\n`,
      );
      log('| tier | tenants | p50 ms | p99 ms | max ms | × plain create p50 | client CPU ms/op | target p50 |');
      log('|---|---:|---:|---:|---:|---:|---:|---:|');
      for (const r of runs)
        log(
          `| ${r.tier} | ${r.count} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.max.toFixed(1)} | ${(r.p50 / p50!).toFixed(1)}× | ${r.cpuMsPerOp.toFixed(2)} | ≤ ${ONBOARD_TARGET_MS[r.tier]} ms |`,
        );
      log('');
      for (const r of runs) {
        const ok = r.p50 <= ONBOARD_TARGET_MS[r.tier];
        okOnboard &&= ok;
        log(
          `- ${ok ? 'PASS' : 'FAIL'}: onboarding p50 ${r.tier} ${r.p50.toFixed(3)} ms (target ≤ ${ONBOARD_TARGET_MS[r.tier]} ms)`,
        );
      }
    }
    return okP50 && okTotal && okOnboard ? 0 : 1;
  } finally {
    await pool?.end();
    await server
      .close({
        databases: [DATABASE, ...tenantDatabases],
        roles: [roles.app.name, roles.owner.name, roles.router.name],
      })
      .catch((e: unknown) => process.stderr.write(`cleanup failed: ${String(e)}\n`));
  }
}

runBenchMain(main);
