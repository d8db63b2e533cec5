// Fair sharing of a pool's connections: a tenant holds at most its cap, a freed connection goes to
// the waiting tenant holding the fewest for its weight, and every wait ends. Then the pool's
// per-tenant activity counters (DB time, statements, rows, checkouts, waits, connections).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { FairCheckout } from '../../src/data/fair-checkout.js';
import { TenantActivity } from '../../src/data/tenant-activity.js';
import { TenantDbLimits } from '../../src/data/tenant-db-limits.js';
import { PoolTimeoutError } from '../../src/errors/wait-errors.js';
import { createNotesTable } from '../support/notes-table.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

const timeout = () => new PoolTimeoutError(100);
const never = Number.POSITIVE_INFINITY;

describe('FairCheckout', () => {
  it('caps one tenant and serves another at once', async () => {
    const fair = new FairCheckout(4, 3);
    for (let i = 0; i < 3; i++) expect(fair.tryAcquire('noisy', 1)).toBe(true);
    expect(fair.tryAcquire('noisy', 1)).toBe(false); // at its cap, with a slot still free
    const queued = fair.acquire('noisy', 1, never, timeout);
    expect(fair.tryAcquire('quiet', 1)).toBe(false); // someone waits: no jumping the queue…
    await fair.acquire('quiet', 1, never, timeout); // …but the free slot is the quiet tenant's
    expect(fair.heldBy('quiet')).toBe(1);
    fair.release('noisy');
    await queued;
    expect(fair.heldBy('noisy')).toBe(3);
  });

  it('hands a freed slot to the waiting tenant with the fewest for its weight, then by arrival', async () => {
    const fair = new FairCheckout(4, 4);
    for (let i = 0; i < 4; i++) expect(fair.tryAcquire('noisy', 1)).toBe(true);
    const order: string[] = [];
    const wait = (key: string, weight = 1) =>
      fair.acquire(key, weight, never, timeout).then(() => {
        order.push(key);
      });
    const waits = [wait('noisy'), wait('noisy'), wait('quiet'), wait('big', 4), wait('big', 4)];
    for (let i = 0; i < 4; i++) fair.release('noisy');
    await Promise.all(waits.slice(2));
    // each release: quiet (0 held, waited before big), big (0/4 against noisy's 2/1), big again
    // (1/4 against 1/1), then noisy (0/1, big waits no more)
    expect(order).toEqual(['quiet', 'big', 'big', 'noisy']);
    expect(fair.inUse).toBe(4);
    expect(fair.waiting).toBe(1);
    fair.release('quiet');
    await Promise.all(waits);
    expect(order).toHaveLength(5);
  });

  it('a wait ends at its deadline or its abort, and its slot is not lost', async () => {
    const fair = new FairCheckout(1, 1);
    expect(fair.tryAcquire('a', 1)).toBe(true);
    await expect(fair.acquire('b', 1, Date.now() + 50, timeout)).rejects.toMatchObject({ code: 'POOL_TIMEOUT' });
    const controller = new AbortController();
    const aborted = fair.acquire('b', 1, never, timeout, controller.signal);
    controller.abort();
    await expect(aborted).rejects.toBeDefined();
    expect(fair.waiting).toBe(0);
    fair.release('a');
    expect(fair.tryAcquire('b', 1)).toBe(true);
  });
});

describe('FairCheckout: budget of connection time', () => {
  it('a tenant over its budget waits until it is back under, refilled at its rate up to its burst', () => {
    const fair = new FairCheckout(4, 4);
    expect(fair.budgetDelay('heavy', 100, 200, 0)).toBe(0); // never charged: a full bucket
    fair.charge('heavy', 250, 100, 200, 0); // 200 - 250: 50 ms in debt
    expect(fair.budgetDelay('heavy', 100, 200, 0)).toBeCloseTo(500); // 50 ms at 100 ms/s
    expect(fair.budgetDelay('heavy', 100, 200, 300)).toBeCloseTo(200);
    expect(fair.budgetDelay('heavy', 100, 200, 500)).toBe(0);
    expect(fair.budgetDelay('other', 100, 200, 500)).toBe(0); // each tenant its own bucket
    fair.charge('heavy', 10, 100, 200, 500); // refilled to 0, then 10 in debt
    expect(fair.budgetDelay('heavy', 100, 200, 500)).toBeCloseTo(100);
    expect(fair.budgetDelay('heavy', 100, 200, 10_000)).toBe(0); // full again (and forgotten)
  });
});

describe('TenantPool with fairCheckout and activity', () => {
  let db: TestDatabase;
  const NOISY = randomUUID();
  const QUIET = randomUUID();
  beforeAll(async () => {
    db = await createTestDatabase();
    await createNotesTable(db, [
      [NOISY, 'n1'],
      [QUIET, 'q1'],
      [QUIET, 'q2'],
    ]);
  });
  afterAll(() => db?.drop());

  async function quietLatency(fairCheckout: boolean): Promise<number> {
    const pool = db.appPool({ max: 4, fairCheckout, connectionTimeoutMillis: 5000 });
    await runAs(QUIET, () => pool.query('select 1')); // a connection opened
    const slow = Array.from({ length: 8 }, () => runAs(NOISY, () => pool.query('select pg_sleep(0.6)')));
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    const { rows } = await runAs(QUIET, () => pool.query('select body from notes order by body'));
    const ms = Date.now() - started;
    expect(rows).toEqual([{ body: 'q1' }, { body: 'q2' }]);
    await Promise.all(slow);
    return ms;
  }

  it("a tenant's slow statements leave connections to the others (and take them all without it)", async () => {
    expect(await quietLatency(true)).toBeLessThan(400);
    expect(await quietLatency(false)).toBeGreaterThanOrEqual(400);
  });

  it("counts each tenant's statements, rows, DB time, checkouts, waits and connections", async () => {
    const activity = new TenantActivity();
    const dbLimits = new TenantDbLimits({ plans: { free: { statementTimeoutMs: 200 } }, defaultPlan: 'free' });
    const pool = db.appPool({ max: 2, fairCheckout: { maxPerTenant: 1 }, activity, dbLimits });
    await runAs(QUIET, () => pool.query('select body from notes'));
    await Promise.all([1, 2].map(() => runAs(NOISY, () => pool.query('select pg_sleep(0.1)'))));
    await expect(runAs(NOISY, () => pool.query('select pg_sleep(1)'))).rejects.toMatchObject({
      code: 'STATEMENT_TIMEOUT',
    });
    const client = await runAs(QUIET, () => pool.connect());
    const now = activity.snapshot();
    const noisy = now.find((r) => r.tenantId === NOISY)!;
    const quiet = now.find((r) => r.tenantId === QUIET)!;
    expect(now[0]!.tenantId).toBe(NOISY); // busiest first
    expect(noisy).toMatchObject({ statements: 3, errors: 1, timeouts: 1, checkouts: 3, connections: 0 });
    expect(noisy.waits).toBeGreaterThanOrEqual(1); // its second sleep waited for its one connection
    expect(noisy.dbTimeMs).toBeGreaterThan(350);
    expect(quiet).toMatchObject({ statements: 1, rows: 2, errors: 0, checkouts: 2, connections: 1 });
    client.release();
    const taken = activity.take();
    expect(taken.rows).toHaveLength(2);
    expect(activity.snapshot()).toEqual([]); // a new window; idle tenants dropped
  });

  it("a tenant over its DB time budget waits at checkout (bounded); another tenant's statements do not", async () => {
    const dbLimits = new TenantDbLimits({
      plans: { free: { dbTimeMsPerSecond: 100, dbTimeBurstMs: 100 }, pro: {} },
      defaultPlan: 'free',
    });
    dbLimits.setPlan(QUIET, 'pro');
    const activity = new TenantActivity();
    const pool = db.appPool({ max: 4, fairCheckout: true, dbLimits, activity, connectionTimeoutMillis: 3000 });
    await runAs(QUIET, () => pool.query('select 1'));
    await runAs(NOISY, () => pool.query('select pg_sleep(0.3)')); // 100 of burst, then ≈ 200 ms in debt
    let started = Date.now();
    const { rows } = await runAs(QUIET, () => pool.query('select body from notes order by body'));
    expect(Date.now() - started).toBeLessThan(1200); // no budget of its own: not the neighbour's ≈ 2 s
    expect(rows).toEqual([{ body: 'q1' }, { body: 'q2' }]);
    started = Date.now();
    await runAs(NOISY, () => pool.query('select 1'));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500); // ≈ 2 s until its debt is repaid at 100 ms/s
    // deeper in debt than the checkout's bound: refused at once, not after the wait
    await runAs(NOISY, () => pool.query('select pg_sleep(0.4)'));
    started = Date.now();
    await expect(runAs(NOISY, () => pool.query('select 1'))).rejects.toMatchObject({ code: 'POOL_TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(2000); // not the 3 s bound
    const noisy = activity.snapshot().find((r) => r.tenantId === NOISY)!;
    expect(noisy.waits).toBeGreaterThanOrEqual(2);
    expect(noisy.connections).toBe(0); // nothing held after a refusal
    expect(pool.totalCount - pool.idleCount).toBe(0);
  });
});
