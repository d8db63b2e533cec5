/**
 * Migrations-everywhere benchmark: 1,000 schema-tier tenants (catalog placements + schemas) in
 * one database, an initial tenant migration applied to all of them, then the timed run: two new
 * tenant migrations applied to every schema (and the shared data schema) with `migrateEverywhere`
 * — one transaction per target, `concurrency` at once. Then `doctorEverywhere` (doctor in every placement of the catalog): RLS
 * forced and registered everywhere. Target: ≤ 60 s for 1,000 schemas.
 *
 *   npm run bench:migrate
 *   npm run bench:migrate -- --schemas=200 --concurrency=4
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:migrate
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { doctorEverywhere } from '../src/tiers/migrate/doctor-everywhere.js';
import { migrateEverywhere, type MigrationReport } from '../src/tiers/migrate/migrate-everywhere.js';
import { benchRoles, installBench } from './support/dataset.js';
import { machineLine, vitestProcesses, runBenchMain } from './support/report.js';
import { openServer } from './support/server.js';

const DATABASE = 'tenantry_bench_migrate';
const TARGET_S = 60;

const INITIAL = `create table notes (
  tenant_id uuid not null default tenantry.current_tenant_id(),
  id uuid not null default gen_random_uuid(),
  body text not null,
  created_at timestamptz not null default now(),
  primary key (tenant_id, id)
);
select tenantry.register_tenant_table('notes');
`;
const SECOND = `alter table notes add column title text not null default '';
create index notes_created_idx on notes (tenant_id, created_at);
`;
const THIRD = `create table comments (
  tenant_id uuid not null default tenantry.current_tenant_id(),
  id uuid not null default gen_random_uuid(),
  note_id uuid not null,
  body text not null,
  primary key (tenant_id, id),
  foreign key (tenant_id, note_id) references notes (tenant_id, id) on delete cascade
);
select tenantry.register_tenant_table('comments');
`;

function flag(name: string, envName: string, fallback: number): number {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? process.env[envName];
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

const log = (line = '') => process.stdout.write(`${line}\n`);

function summary(label: string, report: MigrationReport): string {
  const s = report.durationMs / 1000;
  const count = (status: string) => report.results.filter((r) => r.status === status).length;
  return `| ${label} | ${report.results.length} | ${count('applied')} | ${count('failed') + count('blocked')} | ${s.toFixed(2)} | ${Math.round(report.results.length / s)} |`;
}

async function main(): Promise<number> {
  const schemas = flag('schemas', 'BENCH_MIGRATE_SCHEMAS', 1000);
  const concurrency = flag('concurrency', 'BENCH_MIGRATE_CONCURRENCY', 8);
  const roles = benchRoles();
  // DDL commits must reach the disk, as on a real server (embedded defaults to fsync off)
  const server = await openServer(process.env.DATABASE_URL, { fsync: 'on' });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-bench-migrations-'));
  let owner: pg.Pool | undefined;
  try {
    log(`# Tenantry migrations-everywhere benchmark — ${new Date().toISOString()}`);
    log(`machine: ${machineLine(server.version, server.embedded)}`);
    log(`load avg (1 min) at start: ${os.loadavg()[0]!.toFixed(2)}; other vitest processes: ${vitestProcesses()}`);
    await server.createDatabase(DATABASE);
    await installBench(server.url(DATABASE), roles);
    const ownerUrl = server.url(DATABASE, roles.owner);
    owner = new pg.Pool({ connectionString: ownerUrl, max: 2 });

    // setup: tenants, their schemas (USAGE for the app, as createTenantSchema does) and placements
    const t0 = performance.now();
    const admin = new pg.Client({ connectionString: server.url(DATABASE) });
    await admin.connect();
    try {
      await admin.query(
        `insert into tenantry.tenants (slug, name) select 'bench-' || i, 'Bench ' || i from generate_series(1, $1) i`,
        [schemas],
      );
      await admin.query(`do $do$ declare i int; begin
        for i in 1..${schemas} loop
          execute format('create schema %I authorization %I', 't_bench_' || i, '${roles.owner.name}');
          execute format('revoke all on schema %I from public', 't_bench_' || i);
          execute format('grant usage on schema %I to %I', 't_bench_' || i, '${roles.app.name}');
        end loop; end $do$`);
      await admin.query(`insert into tenantry.placements (tenant_id, tier, cluster, schema)
        select id, 'schema', 'home', 't_bench_' || substr(slug, 7) from tenantry.tenants where slug like 'bench-%'`);
    } finally {
      await admin.end();
    }
    log(`setup: ${schemas} tenants, schemas and placements in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    await mkdir(path.join(dir, 'tenant'), { recursive: true });
    await writeFile(path.join(dir, 'tenant', '001_notes.sql'), INITIAL);
    const clusters = { home: ownerUrl };
    const initial = await migrateEverywhere({ catalog: owner, clusters, migrations: dir, concurrency });
    await writeFile(path.join(dir, 'tenant', '002_notes_title.sql'), SECOND);
    await writeFile(path.join(dir, 'tenant', '003_comments.sql'), THIRD);
    const timed = await migrateEverywhere({ catalog: owner, clusters, migrations: dir, concurrency });
    const noop = await migrateEverywhere({ catalog: owner, clusters, migrations: dir, concurrency });

    log(
      `\nmigrateEverywhere, concurrency ${concurrency}, ${schemas} tenant schemas + the shared database (one pool of ≤ ${concurrency} connections)\n`,
    );
    log('| run | targets | migrated | failed | total s | targets/s |');
    log('|---|---:|---:|---:|---:|---:|');
    log(summary('initial: 001 (1 table)', initial));
    log(summary('**timed: 002 + 003 (alter + index, 1 table)**', timed));
    log(summary('re-run (nothing to do)', noop));

    const d0 = performance.now();
    // doctor in every placement the catalog knows (here: the shared database with its 1,000 tenant schemas)
    const audit = await doctorEverywhere({ catalog: owner, clusters: { home: server.url(DATABASE) } });
    const findings = audit.databases.flatMap((d) => d.report?.findings ?? []);
    const errors = [
      ...findings.filter((f) => f.severity === 'error'),
      ...audit.databases
        .filter((d) => d.error)
        .map((d) => ({ code: 'UNREACHABLE', object: d.database, message: d.error })),
    ];
    const audited = audit.databases.reduce((n, d) => n + d.schemas.length, 0);
    const check = await new pg.Client({ connectionString: server.url(DATABASE) });
    await check.connect();
    const { rows } = await check.query<{ n: number; forced: number; registered: number }>(
      `select count(*)::int as n, count(*) filter (where c.relrowsecurity and c.relforcerowsecurity)::int as forced,
              count(r.relid)::int as registered
         from pg_class c join pg_namespace s on s.oid = c.relnamespace
         left join tenantry.registered_tables r on r.relid = c.oid and r.kind = 'tenant'
        where c.relkind = 'r' and (s.nspname like 't_bench_%' or s.nspname = 'public')`,
    );
    await check.end();
    log(
      `\ndoctorEverywhere: ${audit.databases.length} database(s), ${audited} schemas in ${((performance.now() - d0) / 1000).toFixed(1)} s: ${errors.length} errors, ${findings.length - errors.length} warnings`,
    );
    for (const f of errors.slice(0, 5)) log(`  ${f.code} ${f.object}: ${f.message}`);
    log(`tenant tables: ${rows[0]!.n}, RLS forced: ${rows[0]!.forced}, registered: ${rows[0]!.registered}`);

    const seconds = timed.durationMs / 1000;
    const ok =
      timed.ok &&
      initial.ok &&
      noop.ok &&
      seconds <= TARGET_S &&
      errors.length === 0 &&
      rows[0]!.n === rows[0]!.forced &&
      rows[0]!.n === rows[0]!.registered;
    log(
      `\n- ${seconds <= TARGET_S ? 'PASS' : 'FAIL'}: two migrations on ${schemas} schemas in ${seconds.toFixed(2)} s (target ≤ ${TARGET_S} s${schemas === 1000 ? '' : ', scaled run'})`,
    );
    log(
      `- ${errors.length === 0 && rows[0]!.n === rows[0]!.forced ? 'PASS' : 'FAIL'}: doctor clean, RLS forced and registered on every tenant table`,
    );
    return ok ? 0 : 1;
  } finally {
    await owner?.end();
    await rm(dir, { recursive: true, force: true });
    await server
      .close({ databases: [DATABASE], roles: [roles.app.name, roles.owner.name, roles.router.name] })
      .catch((e: unknown) => process.stderr.write(`cleanup failed: ${String(e)}\n`));
  }
}

runBenchMain(main);
