/**
 * What the rows-written meter costs on the write path (`npm run bench:metering`): inserts through
 * a TenantPool as the app role into identical registered tenant tables, side by side:
 *  - plain: no metering
 *  - metered: tenantry's statement-level triggers (transition table, one appended ledger row per
 *    statement and tenant)
 *  - hot counter: the same trigger shape, but UPSERTing one counter row per tenant (the design the
 *    ledger avoids: concurrent writers of a tenant queue on that row's lock)
 * for single-row INSERTs and 100-row INSERTs, rounds interleaved (A B C A B C …) so that a shared
 * machine's load drifts over all variants alike. Reports statements/s, rows/s, p50/p99, client and
 * server CPU per statement, and ratios against plain.
 *
 *   npm run bench:metering
 *   npm run bench:metering -- --seconds=3 --rounds=3 --tenants=4 --concurrency=8
 */
import os from 'node:os';
import pg from 'pg';
import { runAs } from '../src/context/tenant-context.js';
import { TenantPool } from '../src/data/tenant-pool.js';
import { install } from '../src/policy/installer.js';
import { benchRoles } from './support/dataset.js';
import { clientCpuUs, ServerCpu } from './support/cpu.js';
import { LatencyRecorder } from './support/latency.js';
import { machineLine, vitestProcesses } from './support/report.js';
import { openServer } from './support/server.js';

const DATABASE = 'tenantry_bench_metering';
const log = (line = '') => process.stdout.write(`${line}\n`);

function flag(name: string, fallback: number): number {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

const table = (name: string) => `
  create table ${name} (tenant_id uuid not null default tenantry.current_tenant_id(), id bigint generated always as identity,
    body text not null, primary key (tenant_id, id));
  select tenantry.register_tenant_table('${name}');`;

// the alternative the ledger is measured against: one counter row per tenant, updated by every statement
const HOT_COUNTER = `
  create table bench_counters (tenant_id uuid primary key, rows bigint not null);
  create function bench_count_rows() returns trigger language plpgsql security definer set search_path = pg_catalog, public, pg_temp as $$
  begin
    insert into bench_counters (tenant_id, rows) select n.tenant_id, count(*) from metered_new n group by 1
    on conflict (tenant_id) do update set rows = bench_counters.rows + excluded.rows;
    return null;
  end $$;
  create trigger bench_count after insert on hot referencing new table as metered_new
    for each statement execute function bench_count_rows();`;

interface Result {
  variant: string;
  batch: number;
  statements: number;
  seconds: number;
  p50: number;
  p99: number;
  clientUs: number;
  serverUs: number | undefined;
}

async function main(): Promise<void> {
  const seconds = flag('seconds', 3);
  const rounds = flag('rounds', 3);
  const tenantCount = flag('tenants', 4);
  const concurrency = flag('concurrency', 8);
  const roles = benchRoles();
  const server = await openServer(process.env.DATABASE_URL);
  let pool: TenantPool | undefined;
  try {
    log(`# Tenantry metering write-path benchmark — ${new Date().toISOString()}`);
    log(`machine: ${machineLine(server.version, server.embedded)}`);
    log(`load avg (1 min) at start: ${os.loadavg()[0]!.toFixed(2)}; other vitest processes: ${vitestProcesses()}`);
    await server.createDatabase(DATABASE);
    await install(server.url(DATABASE), {
      appRole: roles.app.name,
      ownerRole: roles.owner.name,
      appPassword: roles.app.password,
      ownerPassword: roles.owner.password,
      contextSecret: roles.contextSecret,
    });
    const owner = new pg.Client({ connectionString: server.url(DATABASE, roles.owner) });
    await owner.connect();
    await owner.query(table('plain') + table('metered') + table('hot') + HOT_COUNTER);
    await owner.query(`select tenantry.meter_tenant_table('metered')`);
    const { rows: tenantRows } = await owner.query<{ id: string }>(
      `insert into tenantry.tenants (slug, name) select 'b' || i, 'B' || i from generate_series(1, $1) i returning id`,
      [tenantCount],
    );
    await owner.end();
    const tenants = tenantRows.map((r) => r.id);
    pool = new TenantPool({
      connectionString: server.url(DATABASE, roles.app),
      contextSecret: roles.contextSecret,
      max: concurrency,
      poolerSelfTest: false,
    });
    pool.on('error', () => undefined); // idle connections cut when the server stops
    const cpu = await ServerCpu.find(server.adminUrl, [DATABASE]);
    const variants = ['plain', 'metered', 'hot'] as const;
    const results = new Map<string, Result>();
    for (const batch of [1, 100]) {
      const sql = `insert into %T (body) select 'x' from generate_series(1, ${batch})`;
      // warm-up: connections open, plans cached
      for (const v of variants)
        await Promise.all(tenants.map((t) => runAs(t, () => pool!.query(sql.replace('%T', v)))));
      for (let round = 0; round < rounds; round++) {
        for (const v of variants) {
          const text = sql.replace('%T', v);
          const latency = new LatencyRecorder(2_000_000);
          const deadline = performance.now() + seconds * 1000;
          const cpu0 = clientCpuUs();
          const server0 = await cpu?.nanoseconds();
          const t0 = performance.now();
          await Promise.all(
            Array.from({ length: concurrency }, async (_, w) => {
              const tenant = tenants[w % tenants.length]!;
              while (performance.now() < deadline) {
                const s = process.hrtime.bigint();
                await runAs(tenant, () => pool!.query(text));
                latency.record(Number(process.hrtime.bigint() - s));
              }
            }),
          );
          const elapsed = (performance.now() - t0) / 1000;
          const server1 = await cpu?.nanoseconds();
          const clientUs = clientCpuUs() - cpu0;
          const [p50, p99] = latency.percentiles(50, 99);
          const key = `${v}/${batch}`;
          const r = results.get(key) ?? {
            variant: v,
            batch,
            statements: 0,
            seconds: 0,
            p50: 0,
            p99: 0,
            clientUs: 0,
            serverUs: cpu ? 0 : undefined,
          };
          r.statements += latency.count;
          r.seconds += elapsed;
          // the rounds' medians and p99s averaged: each round is one sample of the variant
          r.p50 += p50! / rounds;
          r.p99 += p99! / rounds;
          r.clientUs += clientUs;
          if (r.serverUs !== undefined && server0 !== undefined && server1 !== undefined)
            r.serverUs += (server1 - server0) / 1000;
          results.set(key, r);
        }
      }
    }
    await cpu?.close();
    log(
      `\n${tenantCount} tenants, ${concurrency} concurrent writers (writer w writes for tenant w mod ${tenantCount}), ${rounds} interleaved rounds of ${seconds} s per variant\n`,
    );
    log(
      '| variant | rows/stmt | statements/s | rows/s | p50 ms | p99 ms | client µs/stmt | server µs/stmt | throughput ×plain | server CPU ×plain |',
    );
    log('|:--|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    const names = {
      plain: 'plain (no metering)',
      metered: 'metered (ledger trigger)',
      hot: 'hot counter row per tenant',
    };
    for (const r of results.values()) {
      const base = results.get(`plain/${r.batch}`)!;
      const rate = r.statements / r.seconds;
      const baseRate = base.statements / base.seconds;
      const server = r.serverUs === undefined ? undefined : r.serverUs / r.statements;
      const baseServer = base.serverUs === undefined ? undefined : base.serverUs / base.statements;
      log(
        `| ${names[r.variant as keyof typeof names]} | ${r.batch} | ${Math.round(rate).toLocaleString('en')} | ${Math.round(rate * r.batch).toLocaleString('en')} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${(r.clientUs / r.statements).toFixed(0)} | ${server?.toFixed(0) ?? 'n/a'} | ${(rate / baseRate).toFixed(2)} | ${server === undefined || baseServer === undefined ? 'n/a' : (server / baseServer).toFixed(2)} |`,
      );
    }
  } finally {
    await pool?.end();
    await server.close({ databases: [DATABASE], roles: [roles.app.name, roles.owner.name, roles.router.name] });
  }
}

await main();
