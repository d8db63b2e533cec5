/**
 * Tenant export and import benchmark: a tenant of N rows (default 1,000,000: 10,000 projects and
 * 990,000 tasks referencing them, uuid keys) next to another tenant, exported to an archive and
 * imported back, each run in its own process. Reports MB/s of rows (COPY text bytes per wall
 * second), archive size, CPU per 1,000 rows and the process's peak RSS; targets ≥ 50 MB/s and
 * ≤ 200 MB. Side by side: export at gzip levels 1, 3 (default) and 6; import as a new tenant (fresh
 * ids: every uuid key and reference rewritten) and import over the tenant itself (`replace`, ids kept),
 * next to the import's floor: the same rows loaded by a plain COPY FROM STDIN as the owner into the
 * same tables, and into copies of them without the foreign key (same indexes). Then a new tenant's own
 * database and schema (empty): the import --to database and --to schema (its indexes and keys
 * rebuilt after the COPY, the pg_restore way), next to their floor: a plain COPY into the empty
 * tenant database with its keys in place, and the same by hand the pg_restore way.
 *
 *   npm run bench:export
 *   npm run bench:export -- --rows=100000
 *   npm run bench:export -- --rows=200000 --levels=3   (only the default level's export)
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:export
 */
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { install } from '../src/policy/installer.js';
import { createTenantDatabase, createTenantSchema } from '../src/tiers/provision.js';
import { benchRoles } from './support/dataset.js';
import { machineLine, vitestProcesses } from './support/report.js';
import { openServer } from './support/server.js';

const DATABASE = 'tenantry_bench_export';
const TARGET_MBPS = 50;
const TARGET_RSS_MB = 200;
/** The tenant tables, in the shared database, the new tenant database and the new tenant schema. */
const TENANT_DDL = `
  create table projects (
    tenant_id uuid not null default tenantry.current_tenant_id(),
    id uuid not null default gen_random_uuid(),
    name text not null,
    created_at timestamptz not null default now(),
    primary key (tenant_id, id));
  select tenantry.register_tenant_table('projects');
  create table tasks (
    tenant_id uuid not null default tenantry.current_tenant_id(),
    id uuid not null default gen_random_uuid(),
    project_id uuid not null,
    title text not null,
    estimate numeric(8, 2),
    done boolean not null default false,
    created_at timestamptz not null default now(),
    primary key (tenant_id, id),
    foreign key (tenant_id, project_id) references projects (tenant_id, id));
  -- a foreign key's index: without it every deleted project scans the tenant's tasks (replace deletes them all)
  create index tasks_project_idx on tasks (tenant_id, project_id);
  select tenantry.register_tenant_table('tasks');`;
/** The shared database: the tenant tables, and copies of them without the foreign key for a floor. */
const DDL = `${TENANT_DDL}
  -- the floor without the foreign key: the same columns, defaults and indexes, no constraint to check
  create table floor_projects (like projects including all);
  create table floor_tasks (like tasks including all);`;
const FLOOR_TENANT = '00000000-0000-4000-8000-00000000f100';
/** A new tenant's own database and schema, made (empty) before the imports into them. */
const TENANT_DATABASE = 'tenantry_bench_export_tenant';
const TENANT_DATABASE_PER_ROW = 'tenantry_bench_export_tenant_rows';
const TENANT_SCHEMA = 't_big_schema';
/** The pg_restore way by hand, the floor of an import into an empty table of its own: keys and index dropped… */
const DROP_KEYS = `alter table tasks drop constraint tasks_tenant_id_project_id_fkey;
  drop index tasks_project_idx;
  alter table tasks drop constraint tasks_pkey;
  alter table projects drop constraint projects_pkey;`;
/** …and built again after the COPY (as the import does: keys, index, then the foreign key). */
const ADD_KEYS = `set local maintenance_work_mem = '256MB';
  alter table projects add constraint projects_pkey primary key (tenant_id, id);
  alter table tasks add constraint tasks_pkey primary key (tenant_id, id);
  create index tasks_project_idx on tasks (tenant_id, project_id);
  alter table tasks add constraint tasks_tenant_id_project_id_fkey
    foreign key (tenant_id, project_id) references projects (tenant_id, id);`;

const exec = promisify(execFile);
const log = (line = '') => process.stdout.write(`${line}\n`);
const flag = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;

interface RunResult {
  ms: number;
  rows: number;
  bytes: number;
  archiveBytes: number;
  cpuMs: number;
  maxRssKb: number;
  /** Import only: ms from the start to each step (loading, verifying, verified, loaded, switching). */
  phases?: Record<string, number>;
}

async function runChild(env: Record<string, unknown>): Promise<RunResult> {
  const { stdout, stderr } = await exec(process.execPath, ['--import', 'tsx', 'bench/support/export-run.ts'], {
    env: { ...process.env, EXPORT_RUN: JSON.stringify(env) },
    maxBuffer: 1 << 20,
  });
  if (stderr.trim()) process.stderr.write(stderr);
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as RunResult;
}

async function seed(owner: pg.Pool, slug: string, rows: number): Promise<string> {
  const { rows: t } = await owner.query<{ id: string }>(
    `insert into tenantry.tenants (slug, name) values ($1, $1) returning id`,
    [slug],
  );
  const id = t[0]!.id;
  const projects = Math.max(1, Math.round(rows / 100));
  await owner.query(`insert into projects (tenant_id, name) select $1, 'project ' || i from generate_series(1, $2) i`, [
    id,
    projects,
  ]);
  await owner.query(
    `insert into tasks (tenant_id, project_id, title, estimate, done)
     select $1, p.id, 'task ' || j || ' of ' || p.name || ': write the quarterly report', j * 0.25, j % 3 = 0
       from projects p cross join generate_series(1, $2) j where p.tenant_id = $1`,
    [id, Math.max(1, Math.round((rows - projects) / projects))],
  );
  await owner.query('analyze projects; analyze tasks');
  return id;
}

/** The tenant's rows as COPY text files (projects, tasks), its tenant id replaced by FLOOR_TENANT. */
async function writeFloorFiles(
  owner: pg.Pool,
  dir: string,
  slug: string,
): Promise<Array<{ table: string; file: string }>> {
  const client = await owner.connect();
  try {
    const { rows } = await client.query<{ id: string }>('select id from tenantry.tenants where slug = $1', [slug]);
    const id = rows[0]!.id;
    const out: Array<{ table: string; file: string }> = [];
    for (const [table, columns] of [
      ['projects', 'id, name, created_at'],
      ['tasks', 'id, project_id, title, estimate, done, created_at'],
    ] as const) {
      const file = path.join(dir, `floor-${table}.copy`);
      await pipeline(
        client.query(
          copyTo(`copy (select '${FLOOR_TENANT}'::uuid, ${columns} from ${table} where tenant_id = '${id}') to stdout`),
        ),
        createWriteStream(file),
      );
      out.push({ table, file });
    }
    return out;
  } finally {
    client.release();
  }
}

async function admin(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function main(): Promise<number> {
  const rows = Number(flag('rows', '1000000'));
  const roles = benchRoles();
  const server = await openServer(process.env.DATABASE_URL);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-bench-export-'));
  let failed = false;
  let granted = false;
  try {
    log(`# Tenantry tenant export/import benchmark — ${new Date().toISOString()}`);
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
    const ownerUrl = server.url(DATABASE, roles.owner);
    const owner = new pg.Pool({ connectionString: ownerUrl, max: 2 });
    try {
      await owner.query(DDL);
      // a new tenant's own database and schema, empty: the imports --to database and --to schema load there
      for (const database of [TENANT_DATABASE, TENANT_DATABASE_PER_ROW])
        await createTenantDatabase({
          adminUrl: server.url(DATABASE),
          ownerUrl,
          database,
          ddl: TENANT_DDL,
          appRole: roles.app.name,
          ownerRole: roles.owner.name,
          appPassword: roles.app.password,
          ownerPassword: roles.owner.password,
          contextSecret: roles.contextSecret,
        });
      await createTenantSchema(owner, TENANT_SCHEMA, TENANT_DDL);
      const seeded = performance.now();
      await seed(owner, 'big', rows);
      await seed(owner, 'neighbour', Math.round(rows / 10));
      log(
        `seeded: tenant big ${rows} rows, tenant neighbour ${Math.round(rows / 10)} rows in ${((performance.now() - seeded) / 1000).toFixed(1)} s`,
      );
      log();
      log('| run | rows | MB of rows | archive MB | wall s | MB/s | CPU ms / 1k rows | peak RSS MB |');
      log('|---|---|---|---|---|---|---|---|');
      const line = (name: string, r: RunResult) => {
        const mbps = r.bytes / 1e6 / (r.ms / 1000);
        log(
          `| ${name} | ${r.rows} | ${(r.bytes / 1e6).toFixed(1)} | ${(r.archiveBytes / 1e6 || 0).toFixed(1)} | ${(r.ms / 1000).toFixed(2)} | ${mbps.toFixed(1)} | ${((r.cpuMs / r.rows) * 1000).toFixed(1)} | ${(r.maxRssKb / 1024).toFixed(0)} |`,
        );
        return { mbps, rss: r.maxRssKb / 1024 };
      };
      const phases: string[] = [];
      const split = (name: string, r: RunResult) => {
        const p = r.phases ?? {};
        const s = (a: number | undefined, b: number | undefined) =>
          a === undefined || b === undefined ? '?' : ((b - a) / 1000).toFixed(2);
        phases.push(
          `${name}${p.setBased ? ' (set-based FK)' : ''}${p.rebuilt ? ' (indexes rebuilt)' : ''}: before the load ${s(0, p.loading)} s, COPY in ${s(p.loading, p.verifying)} s, read-back ${s(p.verifying, p.verified)} s, commit and switch ${s(p.verified, r.ms)} s`,
        );
      };
      const results: Record<string, { mbps: number; rss: number }> = {};
      const file = path.join(dir, 'big.tenant');
      results['COPY only'] = line(
        'baseline: the same COPY to nothing (no hash, gzip or file)',
        await runChild({ mode: 'copy-out', ownerUrl, tenant: 'big', file }),
      );
      // the last level writes the archive the imports read (default 3)
      for (const level of flag('levels', '1,6,3').split(',').map(Number)) {
        const r = await runChild({ mode: 'export', ownerUrl, tenant: 'big', file, level });
        results[`export gzip ${level}`] = line(`export (gzip ${level}${level === 3 ? ', default' : ''})`, r);
      }
      // the import's physical floor: the same rows (another tenant id, so no key collides) loaded by a
      // plain COPY FROM STDIN as the owner from uncompressed files, in one transaction (rolled back)
      const floorFiles = await writeFloorFiles(owner, dir, 'big');
      const files = (prefix: string) => floorFiles.map((f) => ({ table: `${prefix}${f.table}`, file: f.file }));
      results['floor: COPY in'] = line(
        'floor: plain COPY FROM STDIN into the same tables (FK + indexes)',
        await runChild({ mode: 'copy-in', ownerUrl, files: files('') }),
      );
      results['floor: COPY in, no FK'] = line(
        'floor: plain COPY FROM STDIN into copies without the FK (same indexes)',
        await runChild({ mode: 'copy-in', ownerUrl, files: files('floor_') }),
      );
      // the floor of an import into a new tenant's own (empty) tables: the same COPY into the new
      // tenant database, keys in place, then the pg_restore way (keys dropped, COPY, keys built again)
      const tenantUrl = server.url(TENANT_DATABASE, roles.owner);
      results['floor: COPY in, new database'] = line(
        'floor: plain COPY FROM STDIN into the new tenant database (empty, FK + indexes)',
        await runChild({ mode: 'copy-in', ownerUrl, copyUrl: tenantUrl, files: files('') }),
      );
      results['floor: COPY in, new database, rebuilt'] = line(
        'floor: the same, pg_restore way (keys dropped, COPY, keys and index built, FK added)',
        await runChild({
          mode: 'copy-in',
          ownerUrl,
          copyUrl: tenantUrl,
          files: files(''),
          before: DROP_KEYS,
          after: ADD_KEYS,
        }),
      );
      const perRow = await runChild({ mode: 'import', ownerUrl, file, as: 'big-per-row', replicaLoad: false });
      results['import as new, per-row FK'] = line('import as a new tenant, per-row FK checks (no grant)', perRow);
      split('import as new, per-row FK', perRow);
      // the set-based path: the owner may set session_replication_role (PostgreSQL 15+)
      await admin(server.url(DATABASE), `grant set on parameter session_replication_role to ${roles.owner.name}`);
      granted = true;
      const asNew = await runChild({ mode: 'import', ownerUrl, file, as: 'big-copy' });
      results['import as new'] = line('import as a new tenant (ids remapped), set-based FK check', asNew);
      split('import as new', asNew);
      // the same import with the indexes kept in place (the path before the rebuild), into another new database
      // one row of the table (and its phase split) per import into a new place
      const importRow = async (key: string, label: string, child: Parameters<typeof runChild>[0]) => {
        const result = await runChild(child);
        results[key] = line(label, result);
        split(key, result);
      };
      await importRow(
        'import as new --to database, indexes per row',
        'import as a new tenant into its own database, indexes kept (indexRebuild: false)',
        {
          mode: 'import',
          ownerUrl,
          file,
          as: 'big-database-per-row',
          to: { tier: 'database', database: TENANT_DATABASE_PER_ROW },
          indexRebuild: false,
        },
      );
      await importRow('import as new --to database', 'import as a new tenant into its own database (indexes rebuilt)', {
        mode: 'import',
        ownerUrl,
        file,
        as: 'big-database',
        to: { tier: 'database', database: TENANT_DATABASE },
      });
      await importRow('import as new --to schema', 'import as a new tenant into its own schema (indexes rebuilt)', {
        mode: 'import',
        ownerUrl,
        file,
        as: 'big-schema',
        to: { tier: 'schema', schema: TENANT_SCHEMA },
      });
      await owner.query(`update tenantry.tenants set status = 'suspended' where slug = 'big'`);
      const replace = await runChild({ mode: 'import', ownerUrl, file, replace: true });
      results['import replace'] = line('import over itself (replace, ids kept), set-based FK check', replace);
      split('import replace', replace);
      log();
      for (const p of phases) log(`phases, ${p}`);
      const base = results['COPY only']!;
      log(
        `ratios (MB/s vs the COPY-only baseline): ${Object.entries(results)
          .map(([k, v]) => `${k} ${(v.mbps / base.mbps).toFixed(2)}×`)
          .join(', ')}`,
      );
      const floor = results['floor: COPY in']!;
      log(
        `ratios (MB/s vs the floor, plain COPY in with the FK): ${Object.entries(results)
          .filter(([k]) => k.startsWith('import') || k.startsWith('floor'))
          .map(([k, v]) => `${k} ${(v.mbps / floor.mbps).toFixed(2)}×`)
          .join(', ')}`,
      );
      const own = results['floor: COPY in, new database, rebuilt']!;
      log(
        `ratios (MB/s vs the floor of a new database, pg_restore way): ${Object.entries(results)
          .filter(([k]) => k.includes('new database') || k.includes('--to'))
          .map(([k, v]) => `${k} ${(v.mbps / own.mbps).toFixed(2)}×`)
          .join(', ')}`,
      );
      for (const [name, r] of Object.entries(results)) {
        const ok = r.mbps >= TARGET_MBPS && r.rss <= TARGET_RSS_MB;
        if (!ok && (name === 'export gzip 3' || name === 'import as new' || name === 'import replace')) failed = true;
        if (name === 'COPY only' || name.startsWith('floor')) continue;
        log(
          `${ok ? 'PASS' : 'MISS'} ${name}: ${r.mbps.toFixed(1)} MB/s (target ≥ ${TARGET_MBPS}), peak RSS ${r.rss.toFixed(0)} MB (target ≤ ${TARGET_RSS_MB})`,
        );
      }
    } finally {
      await owner.end();
      // a role holding a privilege on a parameter cannot be dropped
      if (granted)
        await admin(server.url(DATABASE), `revoke set on parameter session_replication_role from ${roles.owner.name}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    await server.close({
      databases: [DATABASE, TENANT_DATABASE, TENANT_DATABASE_PER_ROW],
      roles: [roles.app.name, roles.owner.name],
    });
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
