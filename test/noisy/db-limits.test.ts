// Per-tenant statement_timeout, lock_timeout and work_mem (by plan, overridable) travel in the
// context prefix, transaction-locally: each tenant's statements run under its own limits, nothing
// outlives the statement, and nothing a tenant's SQL does lifts its limits for the next statement.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs, runWithoutTenant } from '../../src/context/tenant-context.js';
import { TenantCatalog } from '../../src/catalog/tenant-catalog.js';
import { TenantDbLimits } from '../../src/data/tenant-db-limits.js';
import { TenantPool } from '../../src/data/tenant-pool.js';
import { ConfigurationError } from '../../src/errors/tenantry-error.js';
import { createNotesTable } from '../support/notes-table.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let A: string; // plan free
let B: string; // plan pro
let C: string; // plan "gold": unknown, so the default plan
const PLANS = {
  free: { statementTimeoutMs: 300, lockTimeoutMs: 200, workMem: '1MB', weight: 1 },
  pro: { statementTimeoutMs: 5000, lockTimeoutMs: 3000, workMem: '32MB', weight: 4 },
};
const SHOW = `select current_setting('statement_timeout') as st, current_setting('lock_timeout') as lt,
  current_setting('work_mem') as wm`;

beforeAll(async () => {
  db = await createTestDatabase();
  const catalog = new TenantCatalog(db.owner);
  A = (await catalog.create({ slug: `a-${randomUUID().slice(0, 8)}`, name: 'A', settings: { plan: 'free' } })).id;
  B = (await catalog.create({ slug: `b-${randomUUID().slice(0, 8)}`, name: 'B', settings: { plan: 'pro' } })).id;
  C = (await catalog.create({ slug: `c-${randomUUID().slice(0, 8)}`, name: 'C', settings: { plan: 'gold' } })).id;
  await createNotesTable(db, [
    [A, 'a1'],
    [B, 'b1'],
  ]);
});
afterAll(() => db?.drop());

async function limitsPool(config: Partial<ConstructorParameters<typeof TenantPool>[0]> = {}) {
  const dbLimits = new TenantDbLimits({ plans: PLANS, defaultPlan: 'free' });
  expect(await dbLimits.load(db.owner)).toBeGreaterThanOrEqual(3);
  return { dbLimits, pool: db.appPool({ dbLimits, ...config }) };
}

async function failure(promise: Promise<unknown>): Promise<{ code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code?: string };
  }
  throw new Error('expected a failure');
}

describe('per-tenant limits in the prefix', () => {
  it("runs each tenant's statements under its plan's limits, and none without a tenant", async () => {
    const { pool } = await limitsPool({ max: 1 }); // one connection: every statement shares it
    expect((await runAs(A, () => pool.query(SHOW))).rows[0]).toEqual({ st: '300ms', lt: '200ms', wm: '1MB' });
    expect((await runAs(B, () => pool.query(SHOW))).rows[0]).toEqual({ st: '5s', lt: '3s', wm: '32MB' });
    // an unknown plan gets the default plan's limits
    expect((await runAs(C, () => pool.query(SHOW))).rows[0]).toEqual({ st: '300ms', lt: '200ms', wm: '1MB' });
    // transaction-local: the same connection, without a tenant, is back at the role's defaults
    expect((await runWithoutTenant(() => pool.query(SHOW))).rows[0]).toEqual({ st: '30s', lt: '5s', wm: '4MB' });
  });

  it('works with the named (prepared once per connection) prefix', async () => {
    const { pool } = await limitsPool({ max: 1, prepareContextStatement: true, poolerSelfTest: false });
    for (let i = 0; i < 3; i++) {
      expect((await runAs(A, () => pool.query(SHOW))).rows[0]).toMatchObject({ st: '300ms' });
      expect((await runAs(B, () => pool.query(SHOW))).rows[0]).toMatchObject({ st: '5s' });
    }
  });

  it("a free tenant's slow statement is cancelled at its timeout; a pro tenant's runs", async () => {
    const { pool } = await limitsPool();
    const started = Date.now();
    expect(await failure(runAs(A, () => pool.query('select pg_sleep(1)')))).toMatchObject({
      code: 'STATEMENT_TIMEOUT',
    });
    expect(Date.now() - started).toBeLessThan(900);
    await runAs(B, () => pool.query('select pg_sleep(0.5)'));
  });

  it("a tenant's lock wait ends at its plan's lock_timeout, and changed nothing", async () => {
    const { dbLimits, pool } = await limitsPool();
    // a statement timeout well past the lock timeout, so a loaded machine cannot swap them
    dbLimits.setOverride(A, { statementTimeoutMs: 5000 });
    const locker = await db.owner.connect();
    try {
      await locker.query('begin');
      await locker.query(`select * from notes where tenant_id = $1 for update`, [A]);
      const started = Date.now();
      expect(await failure(runAs(A, () => pool.query(`update notes set body = 'changed'`)))).toMatchObject({
        code: 'LOCK_TIMEOUT',
      });
      expect(Date.now() - started).toBeLessThan(1500);
    } finally {
      await locker.query('rollback');
      locker.release();
    }
    const { rows } = await db.admin.query('select body from notes where tenant_id = $1', [A]);
    expect(rows).toEqual([{ body: 'a1' }]);
  });

  it("a tenant's own SQL cannot lift its limits for its next statement (session SET, set_config in a transaction)", async () => {
    const { pool } = await limitsPool({ max: 1 });
    await runAs(A, async () => {
      // a session-level SET outlives its transaction on this connection, but every prefix overrides it
      await pool.query('set statement_timeout = 0');
      expect(await failure(pool.query('select pg_sleep(1)'))).toMatchObject({ code: 'STATEMENT_TIMEOUT' });
      const client = await pool.connect();
      try {
        await client.query('begin');
        await client.query(`select set_config('statement_timeout', '0', true), set_config('work_mem', '1GB', true)`);
        expect((await client.query(SHOW)).rows[0]).toMatchObject({ st: '300ms', wm: '1MB' });
        expect(await failure(client.query('select pg_sleep(1)'))).toMatchObject({ code: 'STATEMENT_TIMEOUT' });
        await client.query('rollback');
      } finally {
        client.release();
      }
    });
    // the other tenant on the same connection is not affected by what A planted
    expect((await runAs(B, () => pool.query(SHOW))).rows[0]).toEqual({ st: '5s', lt: '3s', wm: '32MB' });
  });

  it('an operator override wins over the plan; a plan change applies after load', async () => {
    const { dbLimits, pool } = await limitsPool({ max: 1 });
    dbLimits.setOverride(A, { statementTimeoutMs: 1234 });
    expect((await runAs(A, () => pool.query(SHOW))).rows[0]).toEqual({ st: '1234ms', lt: '200ms', wm: '1MB' });
    dbLimits.setOverride(A, undefined);
    await db.owner.query(`update tenantry.tenants set settings = settings || '{"plan":"pro"}' where id = $1`, [C]);
    try {
      await dbLimits.load(db.owner);
      expect((await runAs(C, () => pool.query(SHOW))).rows[0]).toMatchObject({ st: '5s' });
    } finally {
      await db.owner.query(`update tenantry.tenants set settings = settings || '{"plan":"gold"}' where id = $1`, [C]);
    }
  });
});

describe('bad configuration fails at construction', () => {
  const bad: Array<[string, unknown]> = [
    ['no plans', {}],
    ['unknown default plan', { plans: PLANS, defaultPlan: 'gold' }],
    ['a negative timeout', { plans: { x: { statementTimeoutMs: -1 } }, defaultPlan: 'x' }],
    ['a fractional timeout', { plans: { x: { lockTimeoutMs: 1.5 } }, defaultPlan: 'x' }],
    ['a work_mem without unit', { plans: { x: { workMem: '4096' } }, defaultPlan: 'x' }],
    ['SQL in work_mem', { plans: { x: { workMem: "4MB'; drop table notes; --" } }, defaultPlan: 'x' }],
    ['a huge work_mem', { plans: { x: { workMem: '64GB' } }, defaultPlan: 'x' }],
    ['a zero weight', { plans: { x: { weight: 0 } }, defaultPlan: 'x' }],
    ['an unknown limit', { plans: { x: { statement_timeout: 5 } }, defaultPlan: 'x' }],
    ['a bad override', { plans: PLANS, defaultPlan: 'free', overrides: { t: { workMem: 'lots' } } }],
    ['a zero DB time budget', { plans: { x: { dbTimeMsPerSecond: 0 } }, defaultPlan: 'x' }],
    ['a fractional DB time budget', { plans: { x: { dbTimeMsPerSecond: 2.5 } }, defaultPlan: 'x' }],
    ['a negative burst', { plans: { x: { dbTimeMsPerSecond: 100, dbTimeBurstMs: -1 } }, defaultPlan: 'x' }],
  ];
  it.each(bad)('%s', (_name, options) => {
    expect(() => new TenantDbLimits(options as never)).toThrow(ConfigurationError);
  });
  it('a pool refuses a bad fairCheckout or dbLimits', () => {
    expect(() => new TenantPool({ contextMode: 'unsigned', fairCheckout: { maxPerTenant: 0 } })).toThrow(
      ConfigurationError,
    );
    expect(() => new TenantPool({ contextMode: 'unsigned', max: 4, fairCheckout: { maxPerTenant: 5 } })).toThrow(
      ConfigurationError,
    );
    expect(() => new TenantPool({ contextMode: 'unsigned', dbLimits: { free: {} } as never })).toThrow(
      ConfigurationError,
    );
    // a DB time budget is kept by the fair queue: without it, an error at start, not a budget ignored
    const budgeted = new TenantDbLimits({ plans: { free: { dbTimeMsPerSecond: 200 } }, defaultPlan: 'free' });
    expect(() => new TenantPool({ contextMode: 'unsigned', dbLimits: budgeted })).toThrow(/fairCheckout/);
    expect(() => new TenantPool({ contextMode: 'unsigned', dbLimits: budgeted, fairCheckout: true })).not.toThrow();
  });
});
