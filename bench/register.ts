/**
 * Registration benchmark (issue 15): what `tenantry.register_contexts(text[])` (core migration
 * 009) costs per signed value, and how that cost moves as `tenantry_private.context_proofs` grows.
 * A TenantPool calls it in the background with batches of up to 64 values; each value it
 * remembers writes one row of context_proofs and (for a new tenant) one of context_proof_marks.
 *
 * Four alternatives, each on its own connection as the app role, autocommit, interleaved round
 * by round (one round: 64 values of each, in an order that rotates), so the machine's noise hits
 * all alike:
 *   - batch 64: one call with 64 values of new tenants (random uuids): µs per value
 *   - one per call: 64 calls of one value each (a one-element array): µs per call
 *   - re-registration: the last batch-64 values sent again (already remembered): µs per value
 *   - floor: the same rows written plainly, into tables created for the run (the app role granted
 *     on them): a multi-row `INSERT … SELECT FROM unnest(…)` of 64 rows into a table of
 *     context_proofs' shape (bytea sha256 primary key, text, uuid, bigint, bigint; no second
 *     index), then an `INSERT … ON CONFLICT DO UPDATE` of 64 rows into a marks-like table
 *     (text primary key, bigint), one statement each: µs per value (one row of each)
 * Client wall time includes the commit (the server runs with fsync on). Server CPU is each
 * backend's /proc/<pid>/schedstat (only when the server is on this machine; otherwise n/a).
 * Passes (default 3 of 10,240 values per alternative) show growth with the table: each pass is
 * printed on its own, with the proofs table's row count at its end. Each call's count is checked
 * (64, 1, 64 remembered); a shortfall shows in the table's "remembered" column.
 *
 *   npm run bench:register
 *   npm run bench:register -- --values=10240 --passes=3
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:register
 *
 * Flags: --values=N values per alternative per pass (a multiple of 64), --passes=N.
 */
import { createHash, randomUUID } from 'node:crypto';
import os from 'node:os';
import pg from 'pg';
import { ContextSigner } from '../src/data/context-signer.js';
import { runNs } from './support/cpu.js';
import { benchRoles, installBench } from './support/dataset.js';
import { median } from './support/median.js';
import { machineLine, otherBenchScripts, runBenchMain, vitestProcesses } from './support/report.js';
import { openServer } from './support/server.js';

const DATABASE = 'tenantry_bench_register';
const BATCH = 64;
/** Value lifetime: far past the run, so no value expires while it is measured. */
const TTL_SECONDS = 6 * 3600;

type Alternative = 'batch' | 'single' | 'again' | 'floor';
const ALTERNATIVES: Alternative[] = ['batch', 'single', 'again', 'floor'];

const USAGE =
  'usage: npm run bench:register -- [--values=N (a multiple of 64, default 10240)] [--passes=N (default 3)]';

/** A wrong flag: said in one line with the usage, exit code 2, no stack. */
function usageError(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

/** --values and --passes; anything else on the command line is refused (a typo would run the defaults). */
function flags(): { valuesPerPass: number; passes: number } {
  const given = new Map<string, string>();
  for (const arg of process.argv.slice(2)) {
    const match = /^--(values|passes)=(.*)$/.exec(arg);
    if (!match) usageError(`unknown argument ${JSON.stringify(arg)}`);
    given.set(match[1]!, match[2]!);
  }
  const positive = (name: string, fallback: number) => {
    const raw = given.get(name);
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < 1) usageError(`--${name} must be a positive integer`);
    return n;
  };
  const valuesPerPass = positive('values', 10_240);
  if (valuesPerPass % BATCH !== 0) usageError(`--values must be a multiple of ${BATCH}`);
  return { valuesPerPass, passes: positive('passes', 3) };
}

interface Session {
  client: pg.Client;
  pid: number;
}

/** Wall time (µs) of each call and the backends' CPU (ns) of one alternative in one pass. */
interface Tally {
  callsUs: number[];
  wallUs: number;
  cpuNs: number;
  values: number;
  remembered: number;
  /** Floor only: the two statements' wall time apart. */
  insertUs: number;
  upsertUs: number;
}

const newTally = (): Tally => ({
  callsUs: [],
  wallUs: 0,
  cpuNs: 0,
  values: 0,
  remembered: 0,
  insertUs: 0,
  upsertUs: 0,
});

const log = (line = '') => process.stdout.write(`${line}\n`);
const fmt = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/** One call of an alternative: what it remembered (or wrote) and its wall time. */
function record(t: Tally, remembered: number, us: number): void {
  t.callsUs.push(us);
  t.wallUs += us;
  t.remembered += remembered;
}

async function timed<T>(run: () => Promise<T>): Promise<[T, number]> {
  const t0 = process.hrtime.bigint();
  const result = await run();
  return [result, Number(process.hrtime.bigint() - t0) / 1000];
}

/** Set by Ctrl-C (or a kill): the next round stops, so main's finally drops what the run made. */
let interrupted = false;

async function main(): Promise<number> {
  const { valuesPerPass, passes } = flags();
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => {
      interrupted = true;
    });
  const rounds = valuesPerPass / BATCH;
  // own role names: another benchmark may be using benchRoles()' names on a shared server
  const base = benchRoles();
  const roles = {
    ...base,
    app: { ...base.app, name: 'tenantry_bench_register_app' },
    owner: { ...base.owner, name: 'tenantry_bench_register_owner' },
    router: { ...base.router, name: 'tenantry_bench_register_router' },
  };
  const vitest = vitestProcesses();
  const benches = otherBenchScripts('register');
  // a write benchmark: commits must reach the disk, as on a real server (embedded defaults to fsync off)
  const server = await openServer(process.env.DATABASE_URL, { fsync: 'on' });
  const sessions: pg.Client[] = [];
  let admin: pg.Client | undefined;
  try {
    log(`# Tenantry registration benchmark — ${new Date().toISOString()}`);
    log(`machine: ${machineLine(server.version, server.embedded)}`);
    log(
      `load avg (1/5/15 min) at start: ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' / ')}; other vitest processes: ${vitest}; other benchmarks running: ${benches}`,
    );
    await server.createDatabase(DATABASE);
    await installBench(server.url(DATABASE), roles);
    admin = new pg.Client({ connectionString: server.url(DATABASE) });
    await admin.connect();
    const settings = await admin.query<{ name: string; setting: string }>(
      // current_setting: with its unit (shared_buffers as '128MB', not in 8 kB pages)
      `select name, current_setting(name) as setting from pg_settings
        where name in ('fsync', 'synchronous_commit', 'wal_sync_method', 'shared_buffers') order by name`,
    );
    log(`server: ${settings.rows.map((r) => `${r.name}=${r.setting}`).join(', ')}`);
    const app = JSON.stringify(roles.app.name);
    await admin.query(`create schema bench_floor`);
    await admin.query(
      `create table bench_floor.proofs (value_sha256 bytea primary key, tenant_key text not null,
         proven_tenant uuid not null, expires_at bigint not null, generation bigint not null)`,
    );
    await admin.query(`create table bench_floor.marks (tenant_key text primary key, writes bigint not null)`);
    // plain tables: install's event trigger turned row-level security on for them
    await admin.query(`alter table bench_floor.proofs disable row level security, no force row level security`);
    await admin.query(`alter table bench_floor.marks disable row level security, no force row level security`);
    await admin.query(`grant usage on schema bench_floor to ${app}`);
    await admin.query(`grant select, insert, update on bench_floor.proofs, bench_floor.marks to ${app}`);

    const open = async (): Promise<Session> => {
      const client = new pg.Client({ connectionString: server.url(DATABASE, roles.app) });
      await client.connect();
      sessions.push(client);
      const pid = Number((await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid);
      return { client, pid };
    };
    const batch = await open();
    const single = await open();
    const again = await open();
    const floorInsert = await open();
    const floorUpsert = await open();
    const backends: Record<Alternative, Session[]> = {
      batch: [batch],
      single: [single],
      again: [again],
      floor: [floorInsert, floorUpsert],
    };
    const cpuVisible = runNs(batch.pid) > 0;
    log(`server CPU: ${cpuVisible ? 'each backend from /proc/<pid>/schedstat' : 'n/a (server not on this machine)'}`);

    const signer = new ContextSigner(roles.contextSecret, { ttlSeconds: TTL_SECONDS });
    const newValues = (n: number) => Array.from({ length: n }, () => signer.encode(randomUUID()));
    const register = async (s: Session, values: string[]) =>
      Number(
        (await s.client.query<{ n: number }>('select tenantry.register_contexts($1::text[]) as n', [values])).rows[0]!
          .n,
      );
    const generation = Number(
      (await admin.query(`select proof_generation as g from tenantry_private.context_key`)).rows[0]!.g,
    );
    const floorRows = () => {
      const values = newValues(BATCH);
      return {
        hashes: values.map((v) => createHash('sha256').update(v, 'utf8').digest()),
        keys: values.map((v) => v.slice(0, 36)),
        expiries: values.map((v) => v.split('.')[1]!),
      };
    };
    const insertFloor = (rows: ReturnType<typeof floorRows>) =>
      floorInsert.client.query(
        `insert into bench_floor.proofs (value_sha256, tenant_key, proven_tenant, expires_at, generation)
         select h, k, k::uuid, e, $4 from unnest($1::bytea[], $2::text[], $3::bigint[]) as r(h, k, e)`,
        [rows.hashes, rows.keys, rows.expiries, generation],
      );
    const upsertFloor = (rows: ReturnType<typeof floorRows>) =>
      floorUpsert.client.query(
        `insert into bench_floor.marks as m (tenant_key, writes) select k, 1 from unnest($1::text[]) as r(k)
         on conflict (tenant_key) do update set writes = m.writes + 1`,
        [rows.keys],
      );

    // warm-up: every session's plans (made while the tables are nearly empty, as in a new pool)
    let lastBatch = newValues(BATCH);
    await register(batch, lastBatch);
    await register(single, newValues(1));
    await register(again, lastBatch);
    const warmRows = floorRows();
    await insertFloor(warmRows);
    await upsertFloor(warmRows);

    const runs: Array<{ pass: number; proofs: number; marks: number; tallies: Record<Alternative, Tally> }> = [];
    for (let pass = 1; pass <= passes; pass++) {
      const tallies: Record<Alternative, Tally> = {
        batch: newTally(),
        single: newTally(),
        again: newTally(),
        floor: newTally(),
      };
      const cpuBefore = new Map(ALTERNATIVES.map((a) => [a, backends[a].map((s) => runNs(s.pid))]));
      for (let r = 0; r < rounds; r++) {
        if (interrupted)
          throw new Error('interrupted (SIGINT/SIGTERM): the database, roles and data folder are removed');
        for (let k = 0; k < ALTERNATIVES.length; k++) {
          const alternative = ALTERNATIVES[(r + k) % ALTERNATIVES.length]!;
          const t = tallies[alternative];
          if (alternative === 'batch') {
            const values = newValues(BATCH);
            record(t, ...(await timed(() => register(batch, values))));
            lastBatch = values;
          } else if (alternative === 'single') {
            for (const value of newValues(BATCH)) record(t, ...(await timed(() => register(single, [value]))));
          } else if (alternative === 'again') {
            record(t, ...(await timed(() => register(again, lastBatch))));
          } else {
            const rows = floorRows();
            const [inserted, insertUs] = await timed(() => insertFloor(rows));
            const [, upsertUs] = await timed(() => upsertFloor(rows));
            record(t, inserted.rowCount ?? 0, insertUs + upsertUs);
            t.insertUs += insertUs;
            t.upsertUs += upsertUs;
          }
          t.values += BATCH;
        }
      }
      for (const a of ALTERNATIVES)
        tallies[a].cpuNs = backends[a].reduce((sum, s, i) => sum + runNs(s.pid) - cpuBefore.get(a)![i]!, 0);
      const counts = await admin.query<{ proofs: string; marks: string }>(
        `select (select count(*) from tenantry_private.context_proofs) as proofs,
                (select count(*) from tenantry_private.context_proof_marks) as marks`,
      );
      runs.push({
        pass,
        proofs: Number(counts.rows[0]!.proofs),
        marks: Number(counts.rows[0]!.marks),
        tallies,
      });
      log(`pass ${pass} done: ${counts.rows[0]!.proofs} proofs, load avg ${os.loadavg()[0]!.toFixed(2)}`);
    }

    const label: Record<Alternative, string> = {
      batch: 'register_contexts, batch of 64 new',
      single: 'register_contexts, one value per call',
      again: 're-registration, batch of 64 remembered',
      floor: 'floor: INSERT 64 + upsert 64',
    };
    const perCall: Record<Alternative, number> = { batch: BATCH, single: 1, again: BATCH, floor: BATCH };
    log(
      `\n${valuesPerPass} values per alternative per pass, ${rounds} rounds of 64 (alternatives interleaved), ${passes} pass${passes === 1 ? '' : 'es'}; µs per value is client wall time incl. the commit; × floor: against the floor's µs per value in the same pass\n`,
    );
    log(
      '| pass | proofs rows at end | alternative | values | remembered | µs per value | median µs per call | server CPU µs per value | × floor (wall) | × floor (CPU) |',
    );
    log('|---:|---:|:--|---:|---:|---:|---:|---:|---:|---:|');
    for (const run of runs) {
      const floor = run.tallies.floor;
      const floorUs = floor.wallUs / floor.values;
      const floorCpu = cpuVisible ? floor.cpuNs / 1000 / floor.values : Number.NaN;
      for (const a of ALTERNATIVES) {
        const t = run.tallies[a];
        const us = t.wallUs / t.values;
        const cpu = cpuVisible ? t.cpuNs / 1000 / t.values : Number.NaN;
        const call = median(t.callsUs);
        log(
          `| ${run.pass} | ${run.proofs} | ${label[a]} | ${t.values} | ${t.remembered} | ${fmt(us, 1)} | ${fmt(call, 0)}${perCall[a] > 1 ? ` (${perCall[a]})` : ''} | ${fmt(cpu, 1)} | ${a === 'floor' ? '1' : fmt(us / floorUs, 2)} | ${a === 'floor' ? (cpuVisible ? '1' : 'n/a') : fmt(cpu / floorCpu, 2)} |`,
        );
      }
    }
    log(
      `\nfloor apart (µs per row): ${runs
        .map(
          (r) =>
            `pass ${r.pass}: INSERT ${fmt(r.tallies.floor.insertUs / r.tallies.floor.values, 1)}, upsert ${fmt(r.tallies.floor.upsertUs / r.tallies.floor.values, 1)}`,
        )
        .join('; ')}`,
    );
    log(`context_proof_marks rows at the end: ${runs.at(-1)?.marks ?? 0}`);
    log(`load avg (1 min) at the end: ${os.loadavg()[0]!.toFixed(2)}`);
    const expected = (a: Alternative) => runs.every((r) => r.tallies[a].remembered === r.tallies[a].values);
    const ok = expected('batch') && expected('single') && expected('again');
    if (!ok) log('\n- every value was not remembered: see the "remembered" column');
    return ok ? 0 : 1;
  } finally {
    for (const client of sessions) await client.end().catch(() => undefined);
    await admin?.end().catch(() => undefined);
    await server
      .close({ databases: [DATABASE], roles: [roles.app.name, roles.owner.name, roles.router.name] })
      .catch((e: unknown) => process.stderr.write(`cleanup failed: ${String(e)}\n`));
  }
}

runBenchMain(main);
