import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentTenant, runAs, tryCurrentTenant, type TenantPool } from '../../../src/index.js';
import type { JobRefusal, TenantJobs } from '../../../src/jobs/index.js';
import { createNotesTable } from '../../support/notes-table.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';
import { eventually, freshTenant, INACTIVE, settled, type InactiveState } from './jobs-harness.js';

/**
 * The five paths × three tenant states, for any adapter: a kit says how to make a TenantJobs on
 * it and how to edit a queued job in the queue's own storage; the scenarios define the jobs and
 * assert 0 handler calls. (pg-boss, BullMQ and graphile-worker plug in here; each file adds its
 * adapter's own tests.)
 */
export interface AdapterKit {
  /** Shown in the describe title. */
  name: string;
  /** Why the adapter's tests are skipped here (e.g. no Redis), or false. */
  skip?: string | false;
  /** A TenantJobs on the adapter; `space` names an isolated queue space when the adapter has them. */
  newJobs(db: TestDatabase, onRefused: (r: JobRefusal) => void, space?: string): TenantJobs;
  /** The attacker's move: rewrites the tenant in a queued job's stored envelope. */
  editTenant(db: TestDatabase, queue: string, id: string, tenant: string): Promise<void>;
  /** What the queue stores as a job's data (the attacker reads it while the job waits). */
  readData(db: TestDatabase, queue: string, id: string): Promise<unknown>;
  /** The attacker's other move: inserts `data` into `queue` as a new job (a new id), runnable now. */
  insertCopy(db: TestDatabase, queue: string, data: unknown): Promise<string>;
  /** Sends one cron tick of `name` the way the adapter's scheduler would (after jobs.schedule). */
  sendTick?(db: TestDatabase, jobs: TenantJobs, name: string): Promise<string>;
  cleanup?(db: TestDatabase): Promise<void>;
}

const CODE: Record<InactiveState, string> = {
  missing: 'TENANT_NOT_FOUND',
  suspended: 'TENANT_SUSPENDED',
  deleted: 'TENANT_DELETED',
};

export function describeAdapterScenarios(kit: AdapterKit, extra?: (ctx: () => ScenarioContext) => void): void {
  const title = `tenantry/jobs on ${kit.name}: the inactive-tenant paths${kit.skip ? ` (skipped: ${kit.skip})` : ''}`;
  describe.skipIf(!!kit.skip)(title, () => {
    let db: TestDatabase;
    let jobs: TenantJobs;
    const refusals: JobRefusal[] = [];
    const calls: Record<string, (string | undefined)[]> = {};
    const record = (name: string) => (calls[name] ??= []).push(tryCurrentTenant());
    const deactivate = new Map<string, () => Promise<void>>();
    const started: TenantJobs[] = [];
    let app: TenantPool;

    async function notes(tenant: string): Promise<string[]> {
      const { rows } = await db.owner.query<{ body: string }>(
        'select body from notes where tenant_id = $1 order by body',
        [tenant],
      );
      return rows.map((r) => r.body);
    }

    function newJobs(space?: string): TenantJobs {
      const j = kit.newJobs(db, (r) => refusals.push(r), space);
      j.define('first', () => record('first'));
      j.define(
        'flaky',
        async () => {
          record('flaky');
          await deactivate.get(currentTenant())?.();
          throw new Error('first run fails');
        },
        { retryLimit: 1, retryDelaySeconds: 0, retryBackoff: false },
      );
      j.define(
        'doomed',
        async () => {
          record('doomed');
          await deactivate.get(currentTenant())?.();
          throw new Error('always fails');
        },
        { retryLimit: 0, onDeadLetter: () => record('doomed.dead') },
      );
      j.define(
        'redo',
        () => {
          record('redo');
          if ((calls.redo ?? []).filter((t) => t === currentTenant()).length === 1) throw new Error('fails once');
        },
        { retryLimit: 0 },
      );
      j.define('nightly', () => record('nightly'));
      j.define<{ body: string }>(
        'write',
        async ({ body }) => {
          record('write');
          await app.query('insert into notes (body) values ($1)', [body]);
        },
        { onDeadLetter: () => record('write.dead') },
      );
      return j;
    }

    beforeAll(async () => {
      db = await createTestDatabase();
      await createNotesTable(db);
      app = db.appPool();
      jobs = newJobs();
      await jobs.start();
      await jobs.work({ queues: ['first', 'flaky', 'doomed', 'redo', 'write'], concurrency: 2 });
    });

    afterAll(async () => {
      for (const j of started) await j.stop().catch(() => undefined);
      await jobs?.stop();
      await kit.cleanup?.(db);
      await db?.drop();
    });

    extra?.(() => ({ db, jobs, refusals, calls }));

    it("B's side: a job edited in the queue's storage to name tenant B is refused and never runs", async () => {
      const a = await freshTenant(db, 'edit-a');
      const b = await freshTenant(db, 'edit-b');
      const id = await runAs(a.id, () => jobs.enqueue('first', {}, { startAfterSeconds: 2 }));
      await kit.editTenant(db, 'first', id, b.id);
      expect(await settled(jobs, 'first', id)).toBe('refused');
      expect(refusals.find((r) => r.jobId === id)?.code).toBe('JOB_ENVELOPE_INVALID');
      expect(calls.first ?? []).not.toContain(b.id);
      expect(calls.first ?? []).not.toContain(a.id);
    });

    it("the attacker's side: a finished job's row copied under a new id is refused (JOB_REPLAYED), 0 handler calls, the tenant's data unchanged", async () => {
      const a = await freshTenant(db, 'replay-a');
      // the attacker reads the row while it waits, and inserts the copy once the job has run
      const id = await runAs(a.id, () => jobs.enqueue('write', { body: 'once' }, { startAfterSeconds: 1 }));
      const data = await kit.readData(db, 'write', id);
      expect(await settled(jobs, 'write', id)).toBe('completed');
      expect(await notes(a.id)).toEqual(['once']);
      const ran = (calls.write ?? []).length;
      const copy = await kit.insertCopy(db, 'write', data);
      expect(copy).not.toBe(id);
      expect(await settled(jobs, 'write', copy)).toBe('refused');
      expect(refusals.find((r) => r.jobId === copy)).toMatchObject({ code: 'JOB_REPLAYED', tenantId: a.id });
      expect((calls.write ?? []).length).toBe(ran);
      expect(await notes(a.id)).toEqual(['once']);
      // and a second copy, like the first
      const again = await kit.insertCopy(db, 'write', data);
      expect(await settled(jobs, 'write', again)).toBe('refused');
      expect((calls.write ?? []).length).toBe(ran);
      expect(await notes(a.id)).toEqual(['once']);
    });

    it("the attacker's side: copies made while the job waits run it once in all (the first to run wins)", async () => {
      const a = await freshTenant(db, 'replay-queued');
      const id = await runAs(a.id, () => jobs.enqueue('write', { body: 'queued' }, { startAfterSeconds: 1 }));
      const data = await kit.readData(db, 'write', id);
      const copies = [await kit.insertCopy(db, 'write', data), await kit.insertCopy(db, 'write', data)];
      const states = await Promise.all([id, ...copies].map((j) => settled(jobs, 'write', j)));
      expect(states.filter((s) => s === 'completed')).toHaveLength(1);
      expect(states.filter((s) => s === 'refused')).toHaveLength(2);
      expect((calls.write ?? []).filter((t) => t === a.id)).toHaveLength(1);
      expect(await notes(a.id)).toEqual(['queued']);
    });

    it("the attacker's side: a job copied into its dead-letter queue is refused unless the job failed for good", async () => {
      const a = await freshTenant(db, 'replay-dead');
      const id = await runAs(a.id, () => jobs.enqueue('write', { body: 'alive' }, { startAfterSeconds: 1 }));
      const data = await kit.readData(db, 'write', id);
      expect(await settled(jobs, 'write', id)).toBe('completed');
      const copy = await kit.insertCopy(db, 'write__dead', data);
      expect(await settled(jobs, 'write__dead', copy)).toBe('refused');
      expect(refusals.find((r) => r.jobId === copy)?.code).toBe('JOB_REPLAYED');
      expect(calls['write.dead'] ?? []).not.toContain(a.id);
      expect(await notes(a.id)).toEqual(['alive']);
    });

    it('refuses to enqueue a tenant job outside runAs (JOB_TENANT_MISSING)', async () => {
      await expect(jobs.enqueue('first', {})).rejects.toMatchObject({ code: 'JOB_TENANT_MISSING' });
    });

    describe.each(INACTIVE)('a %s tenant: 0 handler calls on every path, and a terminal state', (state) => {
      it('first run', async () => {
        const t = await freshTenant(db, `first-${state}`);
        await t.make(state);
        const id = await runAs(t.id, () => jobs.enqueue('first', {}));
        expect(await settled(jobs, 'first', id)).toBe('refused');
        expect(calls.first ?? []).not.toContain(t.id);
        expect(refusals.find((r) => r.jobId === id)).toMatchObject({ code: CODE[state], tenantId: t.id });
      });

      it('retry', async () => {
        const t = await freshTenant(db, `retry-${state}`);
        deactivate.set(t.id, () => t.make(state));
        const id = await runAs(t.id, () => jobs.enqueue('flaky', {}));
        expect(await settled(jobs, 'flaky', id)).toBe('refused');
        expect((calls.flaky ?? []).filter((x) => x === t.id)).toHaveLength(1);
        expect(refusals.find((r) => r.jobId === id)?.code).toBe(CODE[state]);
      });

      it('retry-exhausted / dead letter', async () => {
        const t = await freshTenant(db, `dead-${state}`);
        deactivate.set(t.id, () => t.make(state));
        const id = await runAs(t.id, () => jobs.enqueue('doomed', {}));
        expect(await settled(jobs, 'doomed', id)).toBe('failed');
        await eventually(() => refusals.some((r) => r.queue === 'doomed__dead' && r.tenantId === t.id));
        const dead = refusals.find((r) => r.queue === 'doomed__dead' && r.tenantId === t.id)!;
        expect(dead.code).toBe(CODE[state]);
        expect(await settled(jobs, 'doomed__dead', dead.jobId)).toBe('refused');
        expect(calls['doomed.dead'] ?? []).not.toContain(t.id);
      });

      it('manual re-drive (of a failed job, then of the refused one)', async () => {
        const t = await freshTenant(db, `redo-${state}`);
        const id = await runAs(t.id, () => jobs.enqueue('redo', {}));
        expect(await settled(jobs, 'redo', id)).toBe('failed');
        await t.make(state);
        expect(await jobs.redrive('redo', id)).toBe(true);
        await eventually(() => refusals.some((r) => r.jobId === id));
        expect(await settled(jobs, 'redo', id)).toBe('refused');
        expect(await jobs.redrive('redo', id)).toBe(true);
        await eventually(() => refusals.filter((r) => r.jobId === id).length === 2);
        expect(await settled(jobs, 'redo', id)).toBe('refused');
        expect((calls.redo ?? []).filter((x) => x === t.id)).toHaveLength(1);
      });

      it('cron fan-out (inactive before the tick, and between the tick and the run)', async () => {
        const before = await freshTenant(db, `cron-before-${state}`);
        const between = await freshTenant(db, `cron-between-${state}`);
        await before.make(state);
        // an instance whose 'nightly' jobs wait (no worker yet) while `between` turns inactive
        const cron = newJobs(`${state}`);
        started.push(cron);
        await cron.start();
        const tick = `tick-${state}`;
        const result = await cron.fanOut('nightly', tick, {});
        expect(result.sent).toBeGreaterThan(0);
        expect(await cron.fanOut('nightly', tick, {})).toMatchObject({ sent: 0 });
        await between.make(state);
        await cron.work({ queues: ['nightly'] });
        await eventually(() => refusals.some((r) => r.queue === 'nightly' && r.tenantId === between.id), 20_000);
        await cron.stop();
        expect(calls.nightly ?? []).not.toContain(between.id);
        expect(calls.nightly ?? []).not.toContain(before.id);
        expect(refusals.some((r) => r.tenantId === before.id && r.queue === 'nightly')).toBe(false);
      });
    });

    it.runIf(!!kit.sendTick)(
      "the scheduled tick, as the adapter's cron sends it, fans out to active tenants only",
      async () => {
        const active = await freshTenant(db, 'tick-active');
        const inactive = await Promise.all(INACTIVE.map((s) => freshTenant(db, `tick-${s}`)));
        for (const [i, s] of INACTIVE.entries()) await inactive[i]!.make(s);
        const cron = newJobs('tick');
        started.push(cron);
        await cron.start();
        await cron.schedule('nightly', '0 3 * * *', {});
        const tickId = await kit.sendTick!(db, cron, 'nightly');
        await cron.work({ queues: ['nightly'] });
        expect(await settled(cron, 'nightly__tick', tickId)).toBe('completed');
        await eventually(() => (calls.nightly ?? []).includes(active.id), 20_000);
        for (const t of inactive) expect(calls.nightly ?? []).not.toContain(t.id);
        await cron.unschedule('nightly');
        await cron.stop();
      },
    );

    it('positive controls: an active tenant runs on retry, in the dead-letter path, on re-drive and in a fan-out', async () => {
      const t = await freshTenant(db, 'control');
      const flaky = await runAs(t.id, () => jobs.enqueue('flaky', {}));
      expect(await settled(jobs, 'flaky', flaky)).toBe('failed');
      expect((calls.flaky ?? []).filter((x) => x === t.id)).toHaveLength(2);
      await runAs(t.id, () => jobs.enqueue('doomed', {}));
      await eventually(() => (calls['doomed.dead'] ?? []).includes(t.id));
      expect((calls['doomed.dead'] ?? []).filter((x) => x === t.id)).toHaveLength(1);
      const redo = await runAs(t.id, () => jobs.enqueue('redo', {}));
      expect(await settled(jobs, 'redo', redo)).toBe('failed');
      expect(await jobs.redrive('redo', redo)).toBe(true);
      expect(await settled(jobs, 'redo', redo)).toBe('completed');
      // the same job's key under the same id: retries and the re-drive were not taken for copies
      expect(refusals.filter((r) => r.code === 'JOB_REPLAYED' && [flaky, redo].includes(r.jobId))).toEqual([]);
      const cron = newJobs('control');
      started.push(cron);
      await cron.start();
      await cron.fanOut('nightly', 'tick-control', {});
      await cron.work({ queues: ['nightly'] });
      await eventually(() => (calls.nightly ?? []).includes(t.id), 20_000);
      await cron.stop();
    });
  });
}

/** What an adapter's own extra tests can reach. */
export interface ScenarioContext {
  db: TestDatabase;
  jobs: TenantJobs;
  refusals: JobRefusal[];
  calls: Record<string, (string | undefined)[]>;
}
