import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { meterTenantTable, type UsageRecorder } from '../../src/metering/index.js';
import { createNotesTable } from '../support/notes-table.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { rowIds, rowsOf, runItem, streamPools, streamRecorder, type StreamConfig } from './support/usage-stream.js';

const CRASHES = 1000;
// real processes killed with SIGKILL (each costs a Node start-up); the other crashes are in-process:
// the "process" loses its recorder's buffer, and its backends are terminated at a random point
const KILLS = Number(process.env.METERING_CRASH_KILLS ?? 10);
const LANES = 4;
const CHILD = 'test/metering/support/usage-stream-child.ts';

let db: TestDatabase;
let config: StreamConfig;

beforeAll(async () => {
  db = await createTestDatabase();
  await createNotesTable(db);
  await meterTenantTable(db.owner, 'notes');
  const { rows } = await db.owner.query<{ id: string }>(
    `insert into tenantry.tenants (slug, name) select 't' || i, 'T' || i from generate_series(1, 3) i returning id`,
  );
  config = {
    appUrl: db.appUrl,
    ownerUrl: db.ownerUrl,
    contextSecret: db.contextSecret,
    tenants: rows.map((r) => r.id),
  };
});
afterAll(async () => {
  await db?.drop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const random = (min: number, max: number) => min + Math.floor(Math.random() * (max - min + 1));

/** What the streams were told was durable, and what they attempted at most. */
const acked = new Set<number>();
let begun = 0;
let ackedUnits = 0;

async function terminateStreamBackends(which: 'app' | 'owner' | 'both'): Promise<number> {
  const names = which === 'both' ? ['metering-crash-app', 'metering-crash-owner'] : [`metering-crash-${which}`];
  const { rowCount } = await db.admin.query(
    `select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = any($1)`,
    [names],
  );
  return rowCount ?? 0;
}

/** In-process crashes: lanes of items run until a random point, then the "process" dies. */
async function inProcessCrashes(count: number, next: number[]): Promise<{ terminated: number }> {
  const { app, owner } = streamPools(config);
  let terminated = 0;
  try {
    for (let crash = 0; crash < count; crash++) {
      const usage: UsageRecorder = streamRecorder(owner);
      let dead = false;
      let added = 0;
      const lane = async (l: number) => {
        while (!dead) {
          const i = next[l]!;
          begun++;
          try {
            await runItem(app, usage, config.tenants, i);
          } catch {
            continue; // retried under the same ids and key, unless the process died meanwhile
          }
          if (dead) return; // nothing is acknowledged after death
          added++;
          acked.add(i);
          next[l] = i + LANES;
        }
      };
      const flusher = async () => {
        while (!dead) {
          const units = added;
          await sleep(random(1, 4));
          const ok = await usage.flush().then(
            () => true,
            () => false,
          );
          if (ok && !dead) {
            ackedUnits += units;
            added -= units;
          }
        }
      };
      const running = [...Array.from({ length: LANES }, (_, l) => lane(l)), flusher()];
      await sleep(random(0, 12));
      // the crash: at a random point, backends die (none, the writers', the recorder's or both),
      // and the process loses whatever its recorder still buffered
      const mode = (['none', 'app', 'owner', 'both'] as const)[random(0, 3)]!;
      if (mode !== 'none') terminated += await terminateStreamBackends(mode);
      dead = true;
      usage.abandon();
      // bounded: every wait in a lane ends (a statement on a dead backend fails at once)
      await Promise.race([Promise.all(running), sleep(10_000).then(() => Promise.reject(new Error('lane hung')))]);
    }
  } finally {
    await Promise.all([app.end(), owner.end()]);
  }
  return { terminated };
}

/** Real crashes: a child process runs the stream and is killed with SIGKILL at a random point. */
async function killChild(start: number): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...process.env, USAGE_STREAM: JSON.stringify({ ...config, start }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let last = start - 1;
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout });
  const closed = new Promise((r) => lines.once('close', r));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_, signal) => resolve(signal)));
  const ready = new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => {
      const [what, n] = line.split(' ');
      if (what === 'ready') resolve();
      else if (what === 'begin') begun++;
      else if (what === 'ack') {
        acked.add(Number(n));
        last = Number(n);
      } else if (what === 'units') ackedUnits += Number(n);
    });
    void exited.then(() => reject(new Error(`child exited before ready: ${stderr.slice(0, 500)}`)));
  });
  const deadline = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    await ready;
    await sleep(random(50, 600));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
  } finally {
    clearTimeout(deadline);
  }
  // an output line cut by the kill is not an ack: the rest of stdout is read before the next start
  await closed;
  return last + 1;
}

describe(`${CRASHES} random crashes mid-stream: 0 lost and 0 double-counted units of what was acknowledged`, () => {
  it('crashes, then audits every ledger against the ground truth', { timeout: 900_000 }, async () => {
    const next = Array.from({ length: LANES }, (_, l) => l);
    const began = performance.now();
    const { terminated } = await inProcessCrashes(CRASHES - KILLS, next);
    const inProcessMs = performance.now() - began;
    let start = 10_000_000; // the children's items: their own range
    for (let k = 0; k < KILLS; k++) start = await killChild(start);

    const tenants = config.tenants;
    // rows written: the trigger's ledger equals the rows really stored, per tenant (no drift)
    const { rows: truth } = await db.admin.query<{ tenant_id: string; stored: string; metered: string }>(
      `select t.id as tenant_id,
              (select count(*) from notes n where n.tenant_id = t.id)::text as stored,
              (select coalesce(sum(rows), 0) from tenantry.usage_row_deltas d where d.tenant_id = t.id)::text as metered
         from unnest($1::uuid[]) t(id)`,
      [tenants],
    );
    for (const r of truth) expect(r.metered, `tenant ${r.tenant_id}`).toBe(r.stored);
    // every acknowledged item's rows are there
    const ackedList = [...acked];
    const ids = ackedList.flatMap(rowIds);
    const { rows: present } = await db.admin.query<{ n: string }>(
      `select count(*)::text as n from notes where id = any($1::uuid[])`,
      [ids],
    );
    expect(Number(present[0]!.n)).toBe(ackedList.reduce((s, i) => s + rowsOf(i), 0));

    // requests: every acknowledged key recorded, each exactly once
    const { rows: req } = await db.admin.query<{ key: string; quantity: string }>(
      `select idempotency_key as key, quantity::text from tenantry.usage_events where meter = 'requests'`,
    );
    const recorded = new Set(req.map((r) => r.key));
    const lost = ackedList.filter((i) => !recorded.has(`req:${i}`));
    expect(lost).toEqual([]);
    expect(req.every((r) => r.quantity === '1')).toBe(true);
    expect(recorded.size).toBe(req.length);
    expect(req.length).toBeLessThanOrEqual(begun);

    // counters: at least what flushes acknowledged, at most one unit per item begun
    const { rows: units } = await db.admin.query<{ n: string }>(
      `select coalesce(sum(quantity), 0)::text as n from tenantry.usage_events where meter = 'test_units'`,
    );
    expect(Number(units[0]!.n)).toBeGreaterThanOrEqual(ackedUnits);
    expect(Number(units[0]!.n)).toBeLessThanOrEqual(begun);

    console.log(
      `metering crash test: ${CRASHES - KILLS} in-process crashes in ${Math.round(inProcessMs)} ms (${terminated} backends terminated), ` +
        `${KILLS} SIGKILLed processes in ${Math.round(performance.now() - began - inProcessMs)} ms; ` +
        `${acked.size} items acknowledged, ${req.length} requests recorded, ${begun} begun; ` +
        `rows stored = metered: ${truth.map((r) => r.stored).join('/')}; counter units acked ${ackedUnits}, recorded ${units[0]!.n}`,
    );
    // progress was made between crashes (on a loaded machine most crashes hit reconnections)
    expect(acked.size).toBeGreaterThan(100);
  });
});
