/**
 * Server CPU of the activity tag's `set_config('application_name', …)`, alone: one backend per
 * form of the context statement, statements interleaved across the backends (so the machine's
 * load hits every form alike), each backend's CPU read from /proc/<pid>/schedstat (the server
 * must run on this machine). Prints the median µs per statement of each form over the rounds.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx bench/tag-cost.ts [--rounds=10] [--statements=5000]
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import pg from 'pg';

const arg = (name: string, fallback: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const ROUNDS = arg('rounds', 10);
const STATEMENTS = arg('statements', 5000);
const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const FORMS: Record<string, { text: string; tag: boolean }> = {
  'context only': { text: `select pg_catalog.set_config('tenantry.context', $1, true)`, tag: false },
  '+ custom setting (local)': {
    text: `select pg_catalog.set_config('tenantry.context', $1, true), pg_catalog.set_config('tenantry.other', $2, true)`,
    tag: true,
  },
  '+ application_name (local)': {
    text: `select pg_catalog.set_config('tenantry.context', $1, true), pg_catalog.set_config('application_name', $2, true)`,
    tag: true,
  },
  '+ application_name (local, as a WHERE condition)': {
    text: `select pg_catalog.set_config('tenantry.context', $1, true) where pg_catalog.set_config('application_name', $2, true) is not null`,
    tag: true,
  },
  '+ application_name (local, coalesce)': {
    text: `select pg_catalog.set_config('tenantry.context', $1, true), set_config('application_name', coalesce($2, current_setting('application_name')), true)`,
    tag: true,
  },
  '+ application_name (session, changed each time)': {
    text: `select pg_catalog.set_config('tenantry.context', $1, true), pg_catalog.set_config('application_name', $2, false)`,
    tag: true,
  },
};

const cpuNs = (pid: number) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
const value = () => `tenantry:${Math.random().toString(16).slice(2, 18)}`;

async function main(): Promise<void> {
  const names = Object.keys(FORMS);
  const clients = new Map<string, { client: pg.Client; pid: number }>();
  for (const name of names) {
    const client = new pg.Client({ connectionString: url, application_name: 'tenantry-tag-cost' });
    await client.connect();
    const pid = Number((await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid);
    cpuNs(pid); // fails here when the server is not on this machine
    clients.set(name, { client, pid });
  }
  const samples = new Map(names.map((n) => [n, [] as number[]]));
  const load = os.loadavg()[0]!;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const before = new Map(names.map((n) => [n, cpuNs(clients.get(n)!.pid)]));
      for (let i = 0; i < STATEMENTS; i += 16) {
        const batch: Array<Promise<unknown>> = [];
        for (let j = 0; j < 16 && i + j < STATEMENTS; j++)
          for (const n of names) {
            const v = value();
            batch.push(clients.get(n)!.client.query(FORMS[n]!.text, FORMS[n]!.tag ? [v, v] : [v]));
          }
        await Promise.all(batch);
      }
      for (const n of names) samples.get(n)!.push((cpuNs(clients.get(n)!.pid) - before.get(n)!) / STATEMENTS / 1000);
    }
  } finally {
    for (const { client } of clients.values()) await client.end();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  process.stdout.write(
    `# tag cost — ${new Date().toISOString()}; ${ROUNDS} rounds × ${STATEMENTS} statements; load ${load.toFixed(2)} → ${os.loadavg()[0]!.toFixed(2)}\n\n| form | server CPU µs/statement (median) |\n|:--|---:|\n`,
  );
  for (const n of names) process.stdout.write(`| ${n} | ${median(samples.get(n)!).toFixed(1)} |\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
