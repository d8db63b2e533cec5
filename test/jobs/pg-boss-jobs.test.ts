import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { randomUUID } from 'node:crypto';
import type PgBoss from 'pg-boss';
import { runAs, tryCurrentTenant, TenantCatalog, type TenantPool } from '../../src/index.js';
import { JobEnvelopeSigner, purgeTenantJobs, type JobRefusal, type TenantJobs } from '../../src/jobs/index.js';
import { createNotesTable } from '../support/notes-table.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { describeAdapterScenarios } from './support/adapter-scenarios.js';
import { eventually, freshTenant, INACTIVE, settled, testJobs } from './support/jobs-harness.js';

// The five paths × three tenant states (and their positive controls) run through the shared
// harness at the end of this file, as for BullMQ and graphile-worker; what follows are
// pg-boss's own: its table, its scheduler's stored tick, fan-out resumption, the purge.

describe('tenantry/jobs on pg-boss', () => {
  let db: TestDatabase;
  let app: TenantPool;
  let jobs: TenantJobs;
  let boss: PgBoss;
  let refusals: JobRefusal[];
  let a: string;
  let b: string;
  /** Handler calls per job name: the tenant each ran as. */
  const calls: Record<string, (string | undefined)[]> = {};
  const record = (name: string) => (calls[name] ??= []).push(tryCurrentTenant());

  async function notes(tenant: string): Promise<string[]> {
    const { rows } = await db.owner.query<{ body: string }>(
      'select body from notes where tenant_id = $1 order by body',
      [tenant],
    );
    return rows.map((r) => r.body);
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    await createNotesTable(db);
    app = db.appPool();
    const catalog = new TenantCatalog(db.owner);
    a = (await catalog.create({ slug: 'alpha', name: 'Alpha' })).id;
    b = (await catalog.create({ slug: 'bravo', name: 'Bravo' })).id;
    ({ jobs, boss, refusals } = testJobs(db));
    jobs.define<{ body: string }>('note', async ({ body }) => {
      record('note');
      await app.query('insert into notes (body) values ($1)', [body]);
    });
    jobs.define('nightly', () => record('nightly'));
    jobs.define('sweep', () => record('sweep'), { global: true });
    await jobs.start();
    // every queue but the cron fan-out's (its test starts it after fanning out)
    await jobs.work({ queues: ['note', 'sweep'], concurrency: 2 });
  });

  afterAll(async () => {
    await jobs?.stop();
    await db?.drop();
  });

  it('runs a job as the tenant that enqueued it, with its actor and request id', async () => {
    const id = await runAs(a, () => jobs.enqueue('note', { body: 'from a' }, { actor: 'user:1', requestId: 'req-1' }));
    expect(await settled(jobs, 'note', id)).toBe('completed');
    expect(await notes(a)).toEqual(['from a']);
    expect(await notes(b)).toEqual([]);
    const { rows } = await db.owner.query('select data from pgboss.job where id = $1', [id]);
    expect(rows[0].data.tenantry).toMatchObject({ tenant: a, actor: 'user:1', requestId: 'req-1' });
  });

  it('refuses to enqueue a tenant job outside runAs (JOB_TENANT_MISSING), and an unknown job (JOB_UNKNOWN)', async () => {
    await expect(jobs.enqueue('note', { body: 'x' })).rejects.toMatchObject({ code: 'JOB_TENANT_MISSING' });
    await expect(runAs(a, () => jobs.enqueue('nope', {}))).rejects.toMatchObject({ code: 'JOB_UNKNOWN' });
    const { rows } = await db.owner.query(
      "select count(*)::int as n from pgboss.job where name = 'note' and data->'tenantry'->>'tenant' is null",
    );
    expect(rows[0].n).toBe(0);
  });

  it('runs a global job with no tenant in context, enqueued outside runAs', async () => {
    const id = await jobs.enqueue('sweep', {});
    expect(await settled(jobs, 'sweep', id)).toBe('completed');
    expect(calls.sweep).toEqual([undefined]);
  });

  it("B's side: a job row edited to name tenant B is refused, B's notes unchanged, nothing ran", async () => {
    const before = await notes(b);
    const ran = calls.note?.length ?? 0;
    // enqueued as A but not yet runnable: edited in the queue table before a worker claims it
    const id = await runAs(a, () => jobs.enqueue('note', { body: 'planted' }, { startAfterSeconds: 2 }));
    await db.admin.query(
      `update pgboss.job set data = jsonb_set(data, '{tenantry,tenant}', to_jsonb($2::text)), start_after = now() where id = $1`,
      [id, b],
    );
    expect(await settled(jobs, 'note', id)).toBe('refused');
    expect(refusals.find((r) => r.jobId === id)?.code).toBe('JOB_ENVELOPE_INVALID');
    expect(calls.note?.length ?? 0).toBe(ran);
    expect(await notes(b)).toEqual(before);
    expect(await notes(a)).not.toContain('planted');
  });

  it('an envelope sealed longer ago than jobKeyRetentionDays is refused (its key may be forgotten)', async () => {
    const signer = new JobEnvelopeSigner(db.contextSecret.padEnd(32, 'x'));
    const now = Date.now();
    const clock = vi.spyOn(Date, 'now').mockReturnValue(now - 31 * 86_400_000);
    const data = signer.seal({ queue: 'note', tenant: a, actor: null, requestId: null }, { body: 'stale' });
    clock.mockRestore();
    const id = (await boss.send('note', data as unknown as object))!;
    expect(await settled(jobs, 'note', id)).toBe('refused');
    expect(refusals.find((r) => r.jobId === id)?.code).toBe('JOB_ENVELOPE_INVALID');
    expect(await notes(a)).not.toContain('stale');
    await expect(
      runAs(a, () => jobs.enqueue('note', { body: 'late' }, { startAfterSeconds: 30 * 86_400 })),
    ).rejects.toMatchObject({
      code: 'CONFIGURATION_ERROR',
    });
  });

  it('an edited payload does not verify either', async () => {
    const id = await runAs(a, () => jobs.enqueue('note', { body: 'original' }, { startAfterSeconds: 2 }));
    await db.admin.query(
      `update pgboss.job set data = jsonb_set(data, '{payload}', to_jsonb('{"body":"edited"}'::text)), start_after = now() where id = $1`,
      [id],
    );
    expect(await settled(jobs, 'note', id)).toBe('refused');
    expect(await notes(a)).not.toContain('edited');
  });

  it('cron fan-out: the scheduled tick sends one job per active tenant, none to inactive ones', async () => {
    const active = await freshTenant(db, 'cron-active');
    const early = Object.fromEntries(
      await Promise.all(INACTIVE.map(async (s) => [s, await freshTenant(db, `cron-early-${s}`)] as const)),
    );
    for (const s of INACTIVE) await early[s]!.make(s);
    // the cron tick, as pg-boss's scheduler sends it: the data jobs.schedule() stored
    await jobs.schedule('nightly', '0 3 * * *', { kind: 'nightly' });
    const { rows } = await db.owner.query(`select data from pgboss.schedule where name = 'nightly__tick'`);
    expect(rows).toHaveLength(1);
    const tickId = await boss.send('nightly__tick', rows[0].data);
    // the fan-out runs (its queue's worker) before the tenants' jobs do
    await jobs.work({ queues: ['nightly'], concurrency: 1 });
    expect(await settled(jobs, 'nightly__tick', tickId!)).toBe('completed');
    await eventually(async () => {
      const r = await db.owner.query(
        `select count(*)::int as n from pgboss.job where name = 'nightly' and state not in ('completed', 'cancelled')`,
      );
      return r.rows[0].n === 0;
    });
    const { rows: sent } = await db.owner.query<{ tenant: string; state: string }>(
      `select data->'tenantry'->>'tenant' as tenant, state from pgboss.job where name = 'nightly'`,
    );
    const tenantsSent = sent.map((r) => r.tenant);
    expect(tenantsSent).toContain(active.id);
    for (const s of INACTIVE) expect(tenantsSent).not.toContain(early[s]!.id);
    expect(new Set(tenantsSent).size).toBe(tenantsSent.length);
    for (const s of INACTIVE) expect(calls.nightly ?? []).not.toContain(early[s]!.id);
    expect(calls.nightly ?? []).toContain(active.id);
  });

  it('cron fan-out: tenants that turn inactive between the fan-out and the run are refused', async () => {
    const ts = Object.fromEntries(
      await Promise.all(INACTIVE.map(async (s) => [s, await freshTenant(db, `cron-between-${s}`)] as const)),
    );
    // another TenantJobs with no worker: its fan-out's jobs wait until the tenants are inactive
    const producer = testJobs(db);
    producer.jobs.define('nightly', () => record('nightly'));
    await producer.jobs.start();
    await jobs.unschedule('nightly');
    await jobs.stop().catch(() => undefined);
    try {
      const result = await producer.jobs.fanOut('nightly', 'tick-between', {});
      expect(result.sent).toBeGreaterThanOrEqual(3);
      for (const s of INACTIVE) await ts[s]!.make(s);
      ({ jobs, boss, refusals } = restart());
      await jobs.start();
      await jobs.work({ queues: ['nightly'] });
      for (const s of INACTIVE) {
        const { rows } = await db.owner.query(
          `select id from pgboss.job where name = 'nightly' and data->'tenantry'->>'tenant' = $1 and data->'tenantry'->>'requestId' = 'tick:tick-between'`,
          [ts[s]!.id],
        );
        expect(rows).toHaveLength(1);
        expect(await settled(jobs, 'nightly', rows[0].id)).toBe('refused');
        expect(calls.nightly ?? []).not.toContain(ts[s]!.id);
      }
    } finally {
      await producer.jobs.stop();
    }
  });

  function restart() {
    const next = testJobs(db);
    next.jobs.define('nightly', () => record('nightly'));
    return next;
  }

  it('cron fan-out is resumable: a re-run of the same tick sends nothing twice', async () => {
    const again = await jobs.fanOut('nightly', 'tick-between', {});
    expect(again.sent).toBe(0);
    expect(again.skipped).toBeGreaterThan(0);
    const { rows } = await db.owner.query(
      `select data->'tenantry'->>'tenant' as tenant, count(*)::int as n from pgboss.job
        where name = 'nightly' and data->'tenantry'->>'requestId' = 'tick:tick-between' group by 1 having count(*) > 1`,
    );
    expect(rows).toEqual([]);
  });

  it("purgeTenantJobs removes one tenant's jobs in any state, and no other tenant's", async () => {
    const victim = randomUUID();
    const { rows: before } = await db.owner.query(
      `select count(*)::int as n from pgboss.job where data->'tenantry'->>'tenant' <> $1`,
      [victim],
    );
    // queued (far in the future) and finished jobs of the victim
    await runAs(victim, () => jobs.enqueue('nightly', {}, { startAfterSeconds: 3600 }));
    await runAs(victim, () => jobs.enqueueMany('nightly', [{}, {}], { startAfterSeconds: 3600 }));
    expect(await purgeTenantJobs(db.owner, victim)).toBe(3);
    const { rows: after } = await db.owner.query(
      `select count(*)::int as n from pgboss.job where data->'tenantry'->>'tenant' <> $1`,
      [victim],
    );
    expect(after[0].n).toBe(before[0].n);
    const { rows: left } = await db.owner.query(
      `select count(*)::int as n from pgboss.job where data->'tenantry'->>'tenant' = $1`,
      [victim],
    );
    expect(left[0].n).toBe(0);
    expect(await purgeTenantJobs(db.owner, victim)).toBe(0);
    await expect(purgeTenantJobs(db.owner, 'not-a-uuid')).rejects.toMatchObject({ code: 'INVALID_TENANT_ID' });
  });
});

const bosses = new WeakMap<TenantJobs, PgBoss>();

describeAdapterScenarios({
  name: 'pg-boss',
  newJobs(db, onRefused) {
    const made = testJobs(db, { onRefused });
    bosses.set(made.jobs, made.boss);
    return made.jobs;
  },
  async editTenant(db, _queue, id, tenant) {
    const { rowCount } = await db.admin.query(
      `update pgboss.job set data = jsonb_set(data, '{tenantry,tenant}', to_jsonb($2::text)), start_after = now() where id = $1`,
      [id, tenant],
    );
    expect(rowCount).toBe(1);
  },
  async readData(db, _queue, id) {
    const { rows } = await db.admin.query('select data from pgboss.job where id = $1', [id]);
    return rows[0].data;
  },
  async insertCopy(db, queue, data) {
    // a plain insert into pg-boss's table, as someone with write access to it would do
    const { rows } = await db.admin.query<{ id: string }>(
      'insert into pgboss.job (id, name, data) values (gen_random_uuid(), $1, $2) returning id',
      [queue, data],
    );
    return rows[0]!.id;
  },
  async sendTick(db, jobs, name) {
    // the tick as pg-boss's scheduler sends it: the data jobs.schedule() stored
    const { rows } = await db.owner.query(`select data from pgboss.schedule where name = $1`, [`${name}__tick`]);
    expect(rows).toHaveLength(1);
    return (await bosses.get(jobs)!.send(`${name}__tick`, rows[0].data))!;
  },
});
