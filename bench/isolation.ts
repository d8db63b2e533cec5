/**
 * Isolation overhead benchmark: a point select by id on `items` (≥ 1M rows, ≥ 1,000 tenants),
 * at several concurrencies, four ways side by side:
 *   (a)  raw pg.Pool, no RLS (BYPASSRLS owner), app-written WHERE tenant_id = $1 AND id = $2
 *   (b)  TenantPool, signed context (default), RLS, WHERE id = $1
 *   (b') TenantPool, unsigned context, RLS, WHERE id = $1 (its own database, installed unsigned)
 *   (c)  BEGIN; set_config(..., true); query; COMMIT with a plain pg.Pool (unsigned database)
 *   floor: (a) plus one pipelined set_config(…, true) under the same Sync, raw pg, no TenantPool:
 *        the least any transaction-local, pooler-safe context can cost (bench/support/floor-query.ts)
 * Variants run in rounds (order rotated each round) so machine noise hits all alike.
 *
 *   npm run bench:isolation                    # embedded PostgreSQL 18, ~2 minutes
 *   npm run bench:isolation -- --quick         # smoke run
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:isolation
 * Flags / env: --seconds BENCH_SECONDS, --rounds BENCH_ROUNDS, --warmup BENCH_WARMUP,
 * --concurrency=1,16,64 BENCH_CONCURRENCY, --pool-max BENCH_POOL_MAX, --tenants, --rows-per-tenant,
 * --rows=10000000 BENCH_ROWS (total rows; tenants default to one per 1,000 rows: the P2 check at 10M / 10,000),
 * --variants=a,floor,b,b',c,a+prefix,b-named,b'-named,b-scoped,b-scoped+guard,b'-scoped,b'-scoped+guard,b-routed,b'-routed,b-routed+prefix BENCH_VARIANTS
 * (the -scoped pairs send `tenant_id = $1 and id = $2`, with and without a QueryGuard in enforce), --prepared (also a pass with named
 * statements; --prepared-only: only that), --no-client-cost, --client-cost-only (no PostgreSQL: the client CPU
 * per query of each variant against the in-process fake server, a steadier figure on a shared machine),
 * --study (signed-function study), --study-only.
 * Issue 15's token design (bench/support/token-context.ts, docs/design-token-context.md): variants b-token,
 * b-token-named, b-token-inline, b-token-inline-named (their own database; the set-up prints EXPLAIN checks and a
 * PASS/FAIL security probe); --token-micro BENCH_TOKEN_MICRO=1 (µs per call of the token check against core 007's);
 * BENCH_TOKEN_RLS=0 (token table readable in full), BENCH_TOKEN_FUNCTION=sql (the check as LANGUAGE sql).
 * With c=1 in the run, a P2 line: p50 of b, b' and the token variants against (a), the target ≤ 1.1×.
 */
import os from 'node:os';
import { benchRoles, pairPicker, prepareDatabase, tenantIdOf } from './support/dataset.js';
import { explainSigned } from './support/explain.js';
import { LatencyRecorder } from './support/latency.js';
import { readOptions, type BenchOptions } from './support/options.js';
import {
  guardPairsTable,
  machineLine,
  ratiosTable,
  resultsTable,
  tokenPairsTable,
  vitestProcesses,
  type CellResult,
} from './support/report.js';
import { runFor } from './support/runner.js';
import { clientCpuUs, ServerCpu } from './support/cpu.js';
import { openServer, type BenchServer } from './support/server.js';
import { runSignedStudy } from './support/signed-study.js';
import { measureClientCost } from './support/client-cost.js';
import { VARIANTS, type OpenVariant, type VariantTargets } from './support/variants.js';
import {
  installTokenDesign,
  probeToken,
  TOKEN_INLINE_TABLE,
  TOKEN_TENANT_EXPR,
  tokenKeyOf,
  tokenMicro,
  tokenOf,
  windowOf,
} from './support/token-context.js';
import { ContextSigner } from '../src/data/context-signer.js';
import { QueryGuard } from '../src/guard/query-guard.js';

const SIGNED_DB = 'tenantry_bench_signed';
const UNSIGNED_DB = 'tenantry_bench_unsigned';
const STUDY_DB = 'tenantry_bench_study';
const TOKEN_DB = 'tenantry_bench_token';

const log = (line = '') => process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  const opts = readOptions();
  for (const v of opts.variants)
    if (!VARIANTS[v]) throw new Error(`unknown variant ${v}; known: ${Object.keys(VARIANTS).join(', ')}`);
  if (opts.variants.some((v) => v.endsWith('+guard'))) await QueryGuard.ready();
  const vitestAtStart = vitestProcesses();
  const loadAtStart = os.loadavg()[0]!;
  if (opts.clientCostOnly) return clientCostOnly(opts, loadAtStart, vitestAtStart);
  const roles = benchRoles();
  const server = await openServer(opts.databaseUrl);
  // Ctrl-C: still drop what was created (or stop the embedded server) before leaving
  const stop = () => void closeQuietly(server).finally(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let failed = false;
  try {
    log(`# Tenantry isolation benchmark — ${new Date().toISOString()}`);
    log(`machine: ${machineLine(server.version, server.embedded)}`);
    log(`command: ${process.argv.slice(1).join(' ')}`);
    log(`load avg (1 min) at start: ${loadAtStart.toFixed(2)}; other vitest processes at start: ${vitestAtStart}`);
    const shape = { tenants: opts.tenants, rowsPerTenant: opts.rowsPerTenant };
    log(
      `data: items(tenant_id uuid, id bigint, payload text, primary key (tenant_id, id)), ${shape.tenants * shape.rowsPerTenant} rows, ${shape.tenants} tenants`,
    );
    log(
      `timing: ${opts.seconds}s per cell in ${opts.rounds} round(s), ${opts.warmupSeconds}s warm-up, pool = min(concurrency, ${opts.poolMax})`,
    );

    let t = Date.now();
    await prepareDatabase(server, SIGNED_DB, 'signed', roles, shape);
    const signedSeconds = (Date.now() - t) / 1000;
    // the unsigned database only when a variant (or the study) reads it: at 10M rows each load is minutes
    const needsUnsigned = opts.study || opts.variants.some((v) => v.includes("'") || v === 'c');
    if (needsUnsigned) await prepareDatabase(server, UNSIGNED_DB, 'unsigned', roles, shape);
    // issue 15's token design: its own database (signed install, then the design on top, bench only)
    const needsToken = opts.variants.some((v) => v.startsWith('b-token'));
    // BENCH_TOKEN_RLS=0: the app role may read every row of the token table (hashes, tenants, refusals)
    const tokenRls = process.env.BENCH_TOKEN_RLS !== '0';
    if (needsToken) {
      await prepareDatabase(server, TOKEN_DB, 'signed', roles, shape);
      await installTokenDesign(server.url(TOKEN_DB), {
        owner: roles.owner.name,
        app: roles.app.name,
        table: 'public.items',
        inlineTable: `public.${TOKEN_INLINE_TABLE}`,
        contextSecret: roles.contextSecret,
        rls: tokenRls,
        // BENCH_TOKEN_FUNCTION=sql: tenantry_token.tenant_id() as LANGUAGE sql (default PL/pgSQL)
        sqlFunction: process.env.BENCH_TOKEN_FUNCTION === 'sql',
      });
    }
    const databases = 1 + (needsUnsigned ? 1 : 0) + (needsToken ? 1 : 0);
    log(
      `setup: ${databases} database(s) installed and loaded in ${((Date.now() - t) / 1000).toFixed(1)}s (signed: ${signedSeconds.toFixed(1)}s)`,
    );

    const targets: VariantTargets = {
      signedOwnerUrl: server.url(SIGNED_DB, roles.owner),
      signedAppUrl: server.url(SIGNED_DB, roles.app),
      unsignedAppUrl: server.url(UNSIGNED_DB, roles.app),
      ...(needsToken ? { tokenAppUrl: server.url(TOKEN_DB, roles.app) } : {}),
      contextSecret: roles.contextSecret,
    };
    const pick = pairPicker(shape);

    const sample = pick();
    const evidence = await explainSigned({
      adminUrl: server.url(SIGNED_DB),
      appUrl: targets.signedAppUrl,
      appRole: roles.app.name,
      database: SIGNED_DB,
      contextSecret: roles.contextSecret,
      tenant: sample.tenant,
      id: sample.id,
      rowsPerTenant: shape.rowsPerTenant,
    });
    log('\n## EXPLAIN (ANALYZE) of (b), as the app role, signed context set in the same transaction\n');
    log('```\n' + evidence.pointPlan + '\n```\n');
    log('Whole-tenant scan (`select count(*) from items`), same transaction:\n');
    log('```\n' + evidence.scanPlan + '\n```\n');
    for (const c of evidence.checks) log(`- ${c.pass ? 'PASS' : 'FAIL'}: ${c.name} — ${c.detail}`);
    if (evidence.checks.some((c) => !c.pass)) failed = true;

    if (needsToken) {
      const tenants = tenantsOf(3);
      const probe = await probeToken({
        adminUrl: server.url(TOKEN_DB),
        appUrl: server.url(TOKEN_DB, roles.app),
        contextSecret: roles.contextSecret,
        tenants: [tenants[0]!, tenants[1]!, tenants[2]!],
        // row id k belongs to tenant k % tenants: the first row of tenant j is j (j = 0: tenants)
        idOf: (tenant) => tenants.indexOf(tenant) || shape.tenants,
        rowsPerTenant: shape.rowsPerTenant,
        allTenants: tenantsOf(shape.tenants),
        inlineTable: TOKEN_INLINE_TABLE,
        rls: tokenRls,
      });
      log(
        `\n## The token design (b-token): EXPLAIN (ANALYZE) as the app role, then the security probe (token table RLS ${tokenRls ? 'on' : 'off'})\n`,
      );
      log('```\n' + probe.pointPlan + '\n```\n');
      for (const c of probe.checks) log(`- ${c.pass ? 'PASS' : 'FAIL'}: ${c.name} — ${c.detail}`);
      if (probe.checks.some((c) => !c.pass)) failed = true;
      if (opts.tokenMicro) {
        // the probe registered tenant 0's token of this window
        const token = tokenOf(tokenKeyOf(roles.contextSecret), tenants[0]!, windowOf(Date.now()));
        const signed = new ContextSigner(roles.contextSecret).encode(tenants[0]!);
        const micro = await tokenMicro(
          [
            {
              name: 'core 007 signed check: tenantry.current_tenant_id()',
              url: targets.signedAppUrl,
              value: signed,
              expr: 'tenantry.current_tenant_id()',
            },
            {
              name: 'token: tenantry_token.tenant_id() (PL/pgSQL, b-token)',
              url: server.url(TOKEN_DB, roles.app),
              value: token,
              expr: 'tenantry_token.tenant_id()',
            },
            {
              name: 'token: the lookup written out (b-token-inline; its plan kept, as with prepared statements)',
              url: server.url(TOKEN_DB, roles.app),
              value: token,
              expr: TOKEN_TENANT_EXPR,
            },
          ],
          7,
        );
        log(
          '\n### µs per call of each check (app role, one transaction per call, minus the empty loop; best of 7 rounds)\n',
        );
        log('| check | µs per call |\n|:--|---:|');
        for (const [name, us] of micro) log(`| ${name} | ${us.toFixed(1)} |`);
      }
    }

    if (!opts.skipMain) {
      const cpu = await ServerCpu.find(server.adminUrl, [SIGNED_DB, UNSIGNED_DB, TOKEN_DB]);
      if (!cpu) log('(server CPU not measurable: the server is not on this machine)');
      for (const style of opts.statements) {
        log(
          `\n## ${style === 'prepared' ? 'Prepared (named) statements' : 'Unnamed statements (parsed and planned per query)'}\n`,
        );
        const results = await measure(opts, targets, pick, cpu, style === 'prepared', tenantsOf(shape.tenants));
        log('\n### Throughput and latency\n');
        log(resultsTable(results));
        log('\n### Ratios of throughput\n');
        log(ratiosTable(results));
        const p2 = p2Line(results, evidence.checks, shape);
        if (p2) log(`\n${p2}`);
        const tokenPairs = tokenPairsTable(results);
        if (tokenPairs)
          log(
            "\n### The token design against floor, b, b', a (throughput; CPU per query, client + server)\n\n" +
              tokenPairs,
          );
        const guardPairs = guardPairsTable(results);
        if (guardPairs)
          log('\n### Pairs: with / without (query guard; monitoring and protection against b)\n\n' + guardPairs);
      }
      await cpu?.close();
      log(
        `\nload avg (1 min) at end: ${os.loadavg()[0]!.toFixed(2)}; other vitest processes at end: ${vitestProcesses()}`,
      );
    }

    if (opts.clientCost && !opts.skipMain) {
      log('\n## Client-side CPU per query (in-process fake server: no network, no PostgreSQL)\n');
      for (const style of opts.statements) {
        const costs = await measureClientCost(opts.variants, pick, {
          concurrency: 16,
          seconds: Math.max(2, opts.seconds / 2),
          rounds: opts.rounds,
          prepared: style === 'prepared',
          contextSecret: roles.contextSecret,
        });
        log(`${style} statements, concurrency 16:\n`);
        log('| variant | client CPU µs/query |\n|:--|---:|');
        for (const c of costs) log(`| ${c.variant} | ${c.us.toFixed(1)} |`);
        log('');
      }
    }

    if (opts.study) {
      t = Date.now();
      await runSignedStudy({
        server,
        database: STUDY_DB,
        unsignedDatabase: UNSIGNED_DB,
        roles,
        shape,
        pick,
        opts,
        log,
      });
      log(`study took ${((Date.now() - t) / 1000).toFixed(0)}s`);
    }
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    await closeQuietly(server);
  }
  return failed ? 1 : 0;
}

/** `--client-cost-only`: each variant's client CPU per query against the in-process fake server, nothing else. */
async function clientCostOnly(opts: BenchOptions, loadAtStart: number, vitestAtStart: number): Promise<number> {
  log(`# Tenantry isolation benchmark, client cost only — ${new Date().toISOString()}`);
  log(`machine: ${machineLine('(none: in-process fake server)', false)}`);
  log(`command: ${process.argv.slice(1).join(' ')}`);
  log(`load avg (1 min) at start: ${loadAtStart.toFixed(2)}; other vitest processes at start: ${vitestAtStart}`);
  const pick = pairPicker({ tenants: opts.tenants, rowsPerTenant: opts.rowsPerTenant });
  for (const style of opts.statements) {
    const costs = await measureClientCost(opts.variants, pick, {
      concurrency: 16,
      seconds: opts.seconds,
      rounds: opts.rounds,
      prepared: style === 'prepared',
      contextSecret: benchRoles().contextSecret,
    });
    log(`\n${style} statements, concurrency 16, ${opts.seconds}s per variant in ${opts.rounds} round(s):\n`);
    // each round's ratio to b in the same round, then their median: the machine's drift (other
    // processes, CPU frequency) cancels round by round
    const base = costs.find((c) => c.variant === 'b');
    const median = (xs: number[]) => {
      const s = [...xs].sort((x, y) => x - y);
      return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
    };
    log('| variant | client CPU µs/query | × b (total) | × b (median of rounds) |\n|:--|---:|---:|---:|');
    for (const c of costs) {
      const paired = base?.rounds && c.rounds ? median(c.rounds.map((us, i) => us / base.rounds![i]!)).toFixed(3) : '–';
      log(`| ${c.variant} | ${c.us.toFixed(1)} | ${base ? (c.us / base.us).toFixed(3) : '–'} | ${paired} |`);
    }
  }
  log(`\nload avg (1 min) at end: ${os.loadavg()[0]!.toFixed(2)}; other vitest processes at end: ${vitestProcesses()}`);
  return 0;
}

async function measure(
  opts: BenchOptions,
  targets: VariantTargets,
  pick: () => { tenant: string; id: number },
  cpu: ServerCpu | undefined,
  prepared: boolean,
  tenants: readonly string[],
): Promise<CellResult[]> {
  const results: CellResult[] = [];
  for (const concurrency of opts.concurrency) {
    const poolSize = Math.min(concurrency, opts.poolMax);
    const open: OpenVariant[] = opts.variants.map((key) => VARIANTS[key]!.open(targets, poolSize, prepared));
    try {
      for (const v of open) await v.prepare?.(tenants);
      for (const v of open) await check(v.key, await runFor(v.run, pick, concurrency, opts.warmupSeconds));
      // Room for 150k queries/s: far above what 2 cores reach; past it, samples are counted, not kept.
      const recorders = new Map(open.map((v) => [v.key, new LatencyRecorder(Math.ceil(opts.seconds * 150_000))]));
      const totals = new Map(
        open.map((v) => [
          v.key,
          { queries: 0, seconds: 0, rounds: [] as number[], roundCpu: [] as number[], clientUs: 0, serverNs: 0 },
        ]),
      );
      for (let round = 0; round < opts.rounds; round++) {
        const order = open.map((_, i) => open[(i + round) % open.length]!);
        for (const v of order) {
          const client0 = clientCpuUs();
          const server0 = (await cpu?.nanoseconds()) ?? 0;
          const outcome = await runFor(v.run, pick, concurrency, opts.seconds / opts.rounds, recorders.get(v.key));
          const total = totals.get(v.key)!;
          const clientUs = clientCpuUs() - client0;
          const serverNs = ((await cpu?.nanoseconds()) ?? Number.NaN) - server0;
          total.clientUs += clientUs;
          total.serverNs += serverNs;
          total.roundCpu.push((clientUs + serverNs / 1e3) / outcome.queries);
          await check(v.key, outcome);
          total.queries += outcome.queries;
          total.seconds += outcome.elapsedSeconds;
          total.rounds.push(outcome.queries / outcome.elapsedSeconds);
        }
        log(
          `  c=${concurrency} round ${round + 1}/${opts.rounds}: ${order.map((v) => `${v.key} ${Math.round(totals.get(v.key)!.rounds.at(-1)!)}/s`).join(', ')}`,
        );
      }
      for (const v of open) {
        const total = totals.get(v.key)!;
        const recorder = recorders.get(v.key)!;
        const [p50, p99] = recorder.percentiles(50, 99);
        results.push({
          variant: v.key,
          concurrency,
          poolSize,
          qps: total.queries / total.seconds,
          p50: p50!,
          p99: p99!,
          roundQps: total.rounds,
          queries: total.queries,
          truncated: recorder.truncated,
          clientCpuUs: total.clientUs / total.queries,
          serverCpuUs: total.serverNs / 1e3 / total.queries,
          roundCpuUs: total.roundCpu,
        });
      }
    } finally {
      await Promise.all(open.map((v) => v.end()));
    }
  }
  return results;
}

/**
 * Issue 15's P2 at this data size: at concurrency 1, p50 of the policy's plan (b, and b' when run)
 * against the owner's explicit WHERE (a), target ≤ 1.1×, with the EXPLAIN checks that say the plan
 * uses the index and evaluates the policy once per statement.
 */
function p2Line(
  results: readonly CellResult[],
  checks: ReadonlyArray<{ name: string; pass: boolean }>,
  shape: { tenants: number; rowsPerTenant: number },
): string | undefined {
  const at1 = (v: string) => results.find((r) => r.variant === v && r.concurrency === 1);
  const a = at1('a');
  if (!a) return undefined;
  const ratios = ['b', "b'", ...new Set(results.map((r) => r.variant).filter((v) => v.startsWith('b-token')))]
    .map((v) => [v, at1(v)] as const)
    .filter((x): x is readonly [string, CellResult] => x[1] !== undefined)
    .map(([v, r]) => `${v}/a ${(r.p50 / a.p50).toFixed(2)} (${r.p50.toFixed(3)} vs ${a.p50.toFixed(3)} ms)`);
  if (ratios.length === 0) return undefined;
  const plan = checks.every((c) => c.pass) ? 'PASS' : 'FAIL';
  const b = at1('b');
  const verdict = b ? (b.p50 / a.p50 <= 1.1 ? 'met' : 'not met') : 'b not run';
  return `P2 (${shape.tenants * shape.rowsPerTenant} rows / ${shape.tenants} tenants): c=1 p50 ${ratios.join(', ')}; target b/a ≤ 1.10: ${verdict}; index + policy once per statement (EXPLAIN checks): ${plan}`;
}

function tenantsOf(count: number): string[] {
  return Array.from({ length: count }, (_, k) => tenantIdOf(k));
}

async function check(key: string, outcome: Awaited<ReturnType<typeof runFor>>): Promise<void> {
  if (outcome.errors > 0)
    throw new Error(`variant ${key}: ${outcome.errors} queries failed`, { cause: outcome.firstError });
  if (outcome.wrongRows > 0)
    throw new Error(`variant ${key}: ${outcome.wrongRows} point selects did not return exactly one row`);
}

async function closeQuietly(server: BenchServer): Promise<void> {
  await server
    .close({
      databases: [SIGNED_DB, UNSIGNED_DB, STUDY_DB, TOKEN_DB],
      roles: ['tenantry_bench_app', 'tenantry_bench_owner', 'tenantry_bench_router'],
    })
    .catch((e: unknown) => {
      process.stderr.write(`cleanup failed: ${String(e)}\n`);
    });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    if (error instanceof Error && error.cause)
      process.stderr.write(`cause: ${String((error.cause as Error).stack ?? error.cause)}\n`);
    process.exit(1);
  },
);
