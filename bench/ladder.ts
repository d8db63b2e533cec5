/**
 * Where the data path's server time goes (issue 15): the same point select, step by step from raw
 * to Tenantry's installed check, driven by pgbench (a C client, so the client's own cost stays
 * small and the same for every step) against one server, steps interleaved round by round.
 *
 *   a        no RLS, the app's own WHERE tenant_id = $1 AND id = $2
 *   floor    (a) plus set_config('tenantry.context', $1, true) pipelined before it, one Sync
 *   rls      floor's prefix; RLS does the filtering, the policy reads the setting itself
 *            (tenant_id = current_setting(…)::uuid: the least a policy can do)
 *   definer  as rls, the policy calls a PL/pgSQL SECURITY DEFINER function (SET search_path)
 *            that only reads the setting: what any definer check pays before its own work
 *   b'       Tenantry installed unsigned (the policy's inlined SQL function)
 *   b        Tenantry installed signed (the default: core 007's check)
 *
 *   npm run bench:ladder                                   # embedded PostgreSQL, pgbench from the system
 *   npm run bench:ladder -- --database-url=postgres://postgres@127.0.0.1:5432/postgres
 * Flags / env: --seconds=4 BENCH_SECONDS (per cell), --rounds=3 BENCH_ROUNDS, --clients=16,
 * --modes=extended,prepared (pgbench's -M: unnamed statements, or named ones parsed once),
 * --tenants, --rows-per-tenant. Needs pgbench (PostgreSQL's client tools): skipped, with the
 * reason, where there is none. Server CPU per query = the machine's busy time minus pgbench's own,
 * per transaction: on a shared machine, other processes count too (the load is printed).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { benchRoles, prepareDatabase, tenantIdOf } from './support/dataset.js';
import { openServer } from './support/server.js';
import { ContextSigner } from '../src/data/context-signer.js';
import { median } from './support/median.js';

const log = (line = '') => process.stdout.write(`${line}\n`);

function flag(name: string, env: string, fallback: string): string {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg ? arg.slice(name.length + 3) : (process.env[env] ?? fallback);
}

/** pgbench on PATH, or in a PostgreSQL installation's bin folder; undefined when there is none. */
function findPgbench(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v pgbench'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    const root = '/usr/lib/postgresql';
    if (!existsSync(root)) return undefined;
    const found = readdirSync(root)
      .map((v) => path.join(root, v, 'bin', 'pgbench'))
      .filter((p) => existsSync(p));
    return found.at(-1);
  }
}

/** Busy CPU seconds of the whole machine so far (/proc/stat: user, nice, system, irq, softirq). */
function machineBusySeconds(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]!) / 100;
}

interface Step {
  key: string;
  database: 'signed' | 'unsigned';
  table: string;
  prefix: boolean;
  /** The WHERE clause: the app's own tenant filter, or RLS's. */
  appFilter: boolean;
  signed: boolean;
}

const STEPS: Step[] = [
  { key: 'a', database: 'unsigned', table: 'ladder_plain', prefix: false, appFilter: true, signed: false },
  { key: 'floor', database: 'unsigned', table: 'ladder_plain', prefix: true, appFilter: true, signed: false },
  { key: 'rls', database: 'unsigned', table: 'ladder_const', prefix: true, appFilter: false, signed: false },
  { key: 'definer', database: 'unsigned', table: 'ladder_definer', prefix: true, appFilter: false, signed: false },
  { key: "b'", database: 'unsigned', table: 'items', prefix: true, appFilter: false, signed: false },
  { key: 'b', database: 'signed', table: 'items', prefix: true, appFilter: false, signed: true },
];

function script(step: Step, tenants: number, rowsPerTenant: number): string {
  // rows of tenant k are ids k, k + tenants, k + 2 × tenants… (bench/support/dataset.ts)
  const lines = [`\\set j random(0, ${rowsPerTenant - 1})`, `\\set id :k + ${tenants} * :j`];
  const query = step.appFilter
    ? `select id, payload from ${step.table} where tenant_id = :tenant and id = :id;`
    : `select id, payload from ${step.table} where id = :id;`;
  if (!step.prefix) return [...lines, query, ''].join('\n');
  return [
    ...lines,
    '\\startpipeline',
    `select pg_catalog.set_config('tenantry.context', :ctx, true);`,
    query,
    '\\endpipeline',
    '',
  ].join('\n');
}

/** Runs pgbench once; its transactions and its own CPU seconds (bash's `times` for its child). */
async function pgbench(
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ transactions: number; tps: number; cpu: number }> {
  const quoted = [bin, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('bash', ['-c', `${quoted} 2>&1; times`], { env });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`pgbench failed:\n${text}`))));
  });
  const transactions = Number(/actually processed: (\d+)/.exec(out)?.[1]);
  const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1]);
  // the second line of `times`: children's user and system time, e.g. "0m0.630s 0m2.370s"
  const times = [...out.matchAll(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/g)].at(-1);
  if (!Number.isFinite(transactions) || !times) throw new Error(`could not read pgbench's output:\n${out}`);
  const cpu = Number(times[1]) * 60 + Number(times[2]) + Number(times[3]) * 60 + Number(times[4]);
  if (/error|failed/i.test(out.replace(/number of failed transactions: 0[^\n]*/g, '')))
    throw new Error(`pgbench reported errors:\n${out}`);
  return { transactions, tps, cpu };
}

async function main(): Promise<number> {
  const bin = findPgbench();
  if (!bin) {
    log('bench:ladder skipped: pgbench (PostgreSQL client tools) is not installed on this machine');
    return 0;
  }
  const seconds = Number(flag('seconds', 'BENCH_SECONDS', '4'));
  const rounds = Number(flag('rounds', 'BENCH_ROUNDS', '3'));
  const clients = Number(flag('clients', 'BENCH_CLIENTS', '16'));
  const tenants = Number(flag('tenants', 'BENCH_TENANTS', '1000'));
  const rowsPerTenant = Number(flag('rows-per-tenant', 'BENCH_ROWS_PER_TENANT', '1000'));
  const modes = flag('modes', 'BENCH_MODES', 'extended,prepared').split(',');
  for (const [name, n] of Object.entries({ seconds, rounds, clients, tenants, rowsPerTenant }))
    if (!(Number.isFinite(n) && n >= 1)) throw new Error(`${name} must be a number ≥ 1`);
  for (const m of modes) if (m !== 'extended' && m !== 'prepared') throw new Error(`unknown mode ${m}`);
  const databaseUrl = flag('database-url', 'DATABASE_URL', '') || undefined;
  const roles = benchRoles();
  const server = await openServer(databaseUrl);
  const databases = { signed: 'tenantry_ladder_signed', unsigned: 'tenantry_ladder_unsigned' };
  const work = mkdtempSync(path.join(os.tmpdir(), 'tenantry-ladder-'));
  try {
    log(`# Tenantry server ladder (pgbench) — ${new Date().toISOString()}`);
    log(`server: PostgreSQL ${server.version}${server.embedded ? ' (embedded)' : ''}; pgbench: ${bin}`);
    log(`machine: ${os.cpus().length} cores, load avg (1 min) at start ${os.loadavg()[0]!.toFixed(2)}`);
    log(`command: ${process.argv.slice(1).join(' ')}`);
    log(
      `data: ${tenants * rowsPerTenant} rows, ${tenants} tenants; one tenant's rows read at random; ${clients} clients, ${seconds}s per cell, ${rounds} rounds`,
    );
    const shape = { tenants, rowsPerTenant };
    await prepareDatabase(server, databases.signed, 'signed', roles, shape);
    await prepareDatabase(server, databases.unsigned, 'unsigned', roles, shape);
    const owner = new pg.Client({ connectionString: server.url(databases.unsigned, roles.owner) });
    await owner.connect();
    try {
      await owner.query(`
        create schema ladder;
        create function ladder.read_setting() returns uuid language plpgsql stable security definer
          set search_path = pg_catalog, pg_temp
          as $f$ begin return nullif(current_setting('tenantry.context', true), '')::uuid; end $f$;
        grant usage on schema ladder to ${roles.app.name};
        grant execute on function ladder.read_setting() to ${roles.app.name};`);
      for (const [table, policy] of [
        ['ladder_plain', undefined],
        ['ladder_const', `tenant_id = current_setting('tenantry.context', true)::uuid`],
        ['ladder_definer', `tenant_id = (select ladder.read_setting())`],
      ] as const) {
        await owner.query(`create table ${table} as select * from items`);
        await owner.query(`alter table ${table} add primary key (tenant_id, id)`);
        // Tenantry's event trigger turns RLS on for every new table: off for the plain one
        await owner.query(
          policy
            ? `alter table ${table} enable row level security, force row level security; create policy p on ${table} using (${policy})`
            : `alter table ${table} no force row level security, disable row level security`,
        );
        await owner.query(`grant select on ${table} to ${roles.app.name}; analyze ${table}`);
      }
    } finally {
      await owner.end();
    }
    const k = 7;
    const tenant = tenantIdOf(k);
    const signedValue = new ContextSigner(roles.contextSecret, { ttlSeconds: 3600 }).encode(tenant);
    for (const step of STEPS) writeFileSync(path.join(work, `${step.key}.sql`), script(step, tenants, rowsPerTenant));
    const results = new Map<string, { tps: number[]; us: number[] }>();
    for (const mode of modes) {
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < STEPS.length; i++) {
          const step = STEPS[(i + round) % STEPS.length]!;
          const url = new URL(server.url(databases[step.database], roles.app));
          const args = [
            '-n',
            `-M${mode}`,
            `-c${clients}`,
            '-j2',
            `-T${seconds}`,
            `-Dk=${k}`,
            `-Dtenant=${tenant}`,
            `-Dctx=${step.signed ? signedValue : tenant}`,
            `-f${path.join(work, `${step.key}.sql`)}`,
            `-h${url.hostname}`,
            `-p${url.port || '5432'}`,
            `-U${decodeURIComponent(url.username)}`,
            decodeURIComponent(url.pathname.slice(1)),
          ];
          const busy0 = machineBusySeconds();
          const run = await pgbench(bin, args, { ...process.env, PGPASSWORD: roles.app.password });
          const busy = machineBusySeconds() - busy0;
          const cell = results.get(`${mode} ${step.key}`) ?? { tps: [], us: [] };
          cell.tps.push(run.tps);
          cell.us.push(((busy - run.cpu) / run.transactions) * 1e6);
          results.set(`${mode} ${step.key}`, cell);
        }
      }
      log();
      log(`## ${mode === 'extended' ? 'Unnamed statements (-M extended)' : 'Named statements (-M prepared)'}`);
      log();
      log('| step | tps (mean) | × floor | server CPU µs/q (median) | − floor µs | rounds µs/q |');
      log('|:--|---:|---:|---:|---:|:--|');
      const floor = results.get(`${mode} floor`)!;
      const floorTps = floor.tps.reduce((x, y) => x + y) / floor.tps.length;
      for (const step of STEPS) {
        const cell = results.get(`${mode} ${step.key}`)!;
        const tps = cell.tps.reduce((x, y) => x + y) / cell.tps.length;
        log(
          `| ${step.key} | ${tps.toFixed(0)} | ${(tps / floorTps).toFixed(2)} | ${median(cell.us).toFixed(1)} | ${(median(cell.us) - median(floor.us)).toFixed(1)} | ${cell.us.map((u) => u.toFixed(1)).join(', ')} |`,
        );
      }
    }
    log();
    log(`load avg (1 min) at end: ${os.loadavg()[0]!.toFixed(2)}`);
    return 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
    await server.close({
      databases: Object.values(databases),
      roles: [roles.app.name, roles.owner.name, roles.router.name],
    });
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
