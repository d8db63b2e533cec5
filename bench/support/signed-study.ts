import pg from 'pg';
import { ContextSigner } from '../../src/data/context-signer.js';
import { CONTEXT_SETTING } from '../../src/policy/install-sql.js';
import { prepareDatabase, type BenchRoles, type DatasetShape } from './dataset.js';
import { clientCpuUs, ServerCpu } from './cpu.js';
import { LatencyRecorder } from './latency.js';
import type { BenchOptions } from './options.js';
import { runFor } from './runner.js';
import type { BenchServer } from './server.js';
import {
  SIGNED_CANDIDATES,
  SIGNED_CANDIDATES_2,
  SIGNED_CANDIDATES_3,
  SIGNED_CANDIDATES_4,
  SIGNED_CANDIDATES_5,
  type SignedCandidate,
} from './signed-candidates.js';
import { VARIANTS, type OpenVariant } from './variants.js';

interface StudyInput {
  server: BenchServer;
  database: string;
  unsignedDatabase: string;
  roles: BenchRoles;
  shape: DatasetShape;
  pick: () => { tenant: string; id: number };
  opts: BenchOptions;
  log: (line?: string) => void;
}

const MICRO_CALLS = 2_000;
const MICRO_ROUNDS = 7;

/**
 * µs per call of tenantry.current_tenant_id(), each call in its own transaction as in the
 * benchmark (PL/pgSQL re-initialises its expressions, and a SQL function its execution state, once
 * per transaction), minus the same loop without the call. The caller takes the best of several
 * rounds interleaved across candidates: on a shared machine the least time is the one least disturbed.
 */
async function microLoop(admin: pg.Client, value: string, call: string): Promise<number> {
  const literal = pg.Client.prototype.escapeLiteral(value);
  const t0 = process.hrtime.bigint();
  await admin.query(
    `do $$ declare x uuid; begin for i in 1..${MICRO_CALLS} loop perform set_config('${CONTEXT_SETTING}', ${literal}, true); x := ${call}; commit; end loop; end $$`,
  );
  return Number(process.hrtime.bigint() - t0) / 1e3 / MICRO_CALLS;
}

async function microCosts(
  owner: pg.Client,
  admin: pg.Client,
  value: string,
  candidates: SignedCandidate[],
): Promise<Map<string, number>> {
  const best = new Map<string, number>(candidates.map((c) => [c.name, Infinity]));
  let base = Infinity;
  for (let round = 0; round < MICRO_ROUNDS; round++) {
    base = Math.min(base, await microLoop(admin, value, 'null::uuid'));
    for (const c of candidates) {
      await owner.query(c.sql);
      await admin.query('begin');
      await admin.query(`select set_config('${CONTEXT_SETTING}', $1, true)`, [value]);
      await admin.query('select tenantry.current_tenant_id()'); // compiles, and checks the value is accepted
      await admin.query('commit');
      best.set(c.name, Math.min(best.get(c.name)!, await microLoop(admin, value, 'tenantry.current_tenant_id()')));
    }
  }
  return new Map([...best].map(([name, us]) => [name, us - base]));
}

/**
 * Tries formulations of signed mode's `tenantry.current_tenant_id()` in a scratch database
 * (src/policy is left alone): the cost of one call, then variant (b)'s throughput with each,
 * against (b') on the unsigned database, rounds interleaved.
 */
export async function runSignedStudy(input: StudyInput): Promise<void> {
  const { server, database, roles, shape, opts, log } = input;
  await prepareDatabase(server, database, 'signed', roles, shape);
  const owner = new pg.Client({ connectionString: server.url(database, roles.owner) });
  const admin = new pg.Client({ connectionString: server.url(database) });
  await owner.connect();
  await admin.connect();
  try {
    const installed = (
      await owner.query(`select pg_get_functiondef('tenantry.current_tenant_id()'::regprocedure) as def`)
    ).rows[0].def as string;
    const candidates: SignedCandidate[] = [
      { name: 'installed', note: 'src/policy/install-sql.ts as it is', sql: installed },
      ...(process.env.BENCH_STUDY_OLD === '0' ? [] : SIGNED_CANDIDATES),
      // BENCH_STUDY_SQL=0 leaves out the candidates whose lookup joins 4-5 never-analysed relations:
      // PostgreSQL 15 with JIT (Debian's default) estimates them above jit_above_cost and compiles per call
      ...SIGNED_CANDIDATES_2.filter(
        (c) => process.env.BENCH_STUDY_SQL !== '0' || !(c.name.startsWith('sql-') || c.name.startsWith('plpgsql-lean')),
      ),
      ...(process.env.BENCH_STUDY_3 === '0' ? [] : SIGNED_CANDIDATES_3),
      ...(process.env.BENCH_STUDY_4 === '0' ? [] : SIGNED_CANDIDATES_4),
      ...(process.env.BENCH_STUDY_5 === '0' ? [] : SIGNED_CANDIDATES_5),
    ];
    const value = new ContextSigner(roles.contextSecret, { ttlSeconds: 3600 }).encode(input.pick().tenant);
    // the token-lookup candidate registers this one value as a token
    await owner.query(`select set_config('tenantry.study_value', $1, false)`, [value]);

    log('\n## Signed-mode study: cost of one tenantry.current_tenant_id() call\n');
    log('| candidate | µs per call | note |\n|:--|---:|:--|');
    const micro = await microCosts(owner, admin, value, candidates);
    for (const c of candidates) log(`| ${c.name} | ${micro.get(c.name)!.toFixed(1)} | ${c.note} |`);
    const regex = async (pattern: string) => {
      const t0 = process.hrtime.bigint();
      await admin.query(
        `do $$ declare b boolean; v text := ${pg.Client.prototype.escapeLiteral(value)}; begin for i in 1..${MICRO_CALLS} loop b := v ~ ${pg.Client.prototype.escapeLiteral(pattern)}; end loop; end $$`,
      );
      return Number(process.hrtime.bigint() - t0) / 1e3 / MICRO_CALLS;
    };
    const bounded = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\.[0-9]{1,12}\\.[0-9a-f]{64}$';
    const unbounded = '^[0-9a-f-]+\\.[0-9]+\\.[0-9a-f]+$';
    log(
      `\nregex alone, µs per match (loop included): installed pattern ${(await regex(bounded)).toFixed(1)}, unbounded pattern ${(await regex(unbounded)).toFixed(1)}`,
    );

    const cpu = await ServerCpu.find(server.adminUrl, [database, input.unsignedDatabase]);
    const concurrencies = opts.concurrency.filter((c) => c <= 16);
    for (const concurrency of concurrencies.length ? concurrencies : [16]) {
      const poolSize = Math.min(concurrency, opts.poolMax);
      const targets = {
        signedOwnerUrl: server.url(database, roles.owner),
        signedAppUrl: server.url(database, roles.app),
        unsignedAppUrl: server.url(input.unsignedDatabase, roles.app),
        contextSecret: roles.contextSecret,
      };
      const unsigned: OpenVariant = VARIANTS["b'"]!.open(targets, poolSize, false);
      const signed: OpenVariant = VARIANTS.b!.open(targets, poolSize, false);
      const turns = [
        { name: "b' (unsigned)", sql: undefined as string | undefined },
        ...candidates.filter((c) => !c.microOnly).map((c) => ({ name: `b with ${c.name}`, sql: c.sql })),
      ];
      const stats = new Map(
        turns.map((t) => [
          t.name,
          {
            queries: 0,
            seconds: 0,
            clientUs: 0,
            serverNs: 0,
            rec: new LatencyRecorder(Math.ceil(opts.seconds * 150_000)),
          },
        ]),
      );
      try {
        for (let round = 0; round < opts.rounds; round++) {
          for (const turn of turns) {
            if (turn.sql) await owner.query(turn.sql);
            const v = turn.sql ? signed : unsigned;
            await runFor(v.run, input.pick, concurrency, Math.min(0.5, opts.warmupSeconds));
            const s = stats.get(turn.name)!;
            const client0 = clientCpuUs();
            const server0 = (await cpu?.nanoseconds()) ?? Number.NaN;
            const out = await runFor(v.run, input.pick, concurrency, opts.seconds / opts.rounds, s.rec);
            s.serverNs += ((await cpu?.nanoseconds()) ?? Number.NaN) - server0;
            s.clientUs += clientCpuUs() - client0;
            if (out.errors || out.wrongRows)
              throw new Error(`${turn.name}: ${out.errors} errors, ${out.wrongRows} wrong results`, {
                cause: out.firstError,
              });
            s.queries += out.queries;
            s.seconds += out.elapsedSeconds;
          }
        }
      } finally {
        await Promise.all([unsigned.end(), signed.end()]);
      }
      log(
        `\n### Point select at concurrency ${concurrency} (pool ${poolSize}), ${opts.seconds}s each in ${opts.rounds} round(s)\n`,
      );
      log(
        "| variant | queries/s | p50 ms | p99 ms | vs b' | client CPU µs/q | server CPU µs/q |\n|:--|---:|---:|---:|---:|---:|---:|",
      );
      const base = stats.get(turns[0]!.name)!;
      for (const turn of turns) {
        const s = stats.get(turn.name)!;
        const [p50, p99] = s.rec.percentiles(50, 99);
        log(
          `| ${turn.name} | ${Math.round(s.queries / s.seconds)} | ${p50!.toFixed(3)} | ${p99!.toFixed(3)} | ${(s.queries / s.seconds / (base.queries / base.seconds)).toFixed(2)} | ${(s.clientUs / s.queries).toFixed(0)} | ${(s.serverNs / 1e3 / s.queries).toFixed(0)} |`,
        );
      }
    }
    await cpu?.close();
  } finally {
    await owner.end();
    await admin.end();
  }
}
