// One tenant's table locked for 15 s (another session holds ACCESS EXCLUSIVE on it) and one
// tenant database stuck the same way, while their tenants keep sending statements: the tenants in
// the other schemas, the shared tables and the other databases stay fast (p99 under 1 s) through
// the same RoutedTenantPool. The stuck tenants' statements end with codes, within their bounds,
// and statements whose clients gave up are never written when the lock clears.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { Placements } from '../../src/tiers/placements.js';
import { createTenantDatabase, createTenantSchema, withDatabase } from '../../src/tiers/provision.js';
import { RoutedTenantPool } from '../../src/tiers/routed-tenant-pool.js';
import { TenantRouter } from '../../src/tiers/tenant-router.js';
import { NOTES_DDL } from '../support/notes-table.js';
import { ROLE_PASSWORD, createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { dropDatabase } from '../support/drop-database.js';

const LOCK_MS = 15_000;
const CHECKOUT_MS = 2000;
const STATEMENT_MS = 3000;
/** A client of the locked tenant that gives up after this long (the gave up after 2 s). */
const GIVE_UP_MS = 1500;

let db: TestDatabase;
let placements: Placements;
let router: TenantRouter;
let pool: RoutedTenantPool;
let home: pg.Pool;
const databases: string[] = [];
const t = { locked: '', shared: '', schema: '', database: '', stuckDb: '' };

async function tenant(slug: string): Promise<string> {
  const { rows } = await db.owner.query<{ id: string }>(
    `insert into tenantry.tenants (slug, name) values ($1, $1) returning id`,
    [slug],
  );
  return rows[0]!.id;
}

async function tenantDatabase(name: string): Promise<void> {
  await createTenantDatabase({
    adminUrl: db.adminUrl,
    ownerUrl: db.ownerUrl,
    database: name,
    ddl: NOTES_DDL,
    appRole: db.appRole,
    ownerRole: db.ownerRole,
    appPassword: ROLE_PASSWORD,
    ownerPassword: ROLE_PASSWORD,
    contextSecret: db.contextSecret,
  });
  databases.push(name);
}

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(NOTES_DDL);
  for (const key of Object.keys(t) as Array<keyof typeof t>) t[key] = await tenant(`cap-${key.toLowerCase()}`);
  placements = new Placements({ catalog: db.owner, owners: { home: db.ownerUrl } });
  await createTenantSchema(db.owner, 't_locked', NOTES_DDL);
  await placements.assign(t.locked, { tier: 'schema', cluster: 'home', schema: 't_locked' });
  await createTenantSchema(db.owner, 't_other', NOTES_DDL);
  await placements.assign(t.schema, { tier: 'schema', cluster: 'home', schema: 't_other' });
  await tenantDatabase(`${db.name}_c`);
  await placements.assign(t.database, { tier: 'database', cluster: 'home', database: `${db.name}_c` });
  await tenantDatabase(`${db.name}_d`);
  await placements.assign(t.stuckDb, { tier: 'database', cluster: 'home', database: `${db.name}_d` });
  home = new pg.Pool({ connectionString: db.routerUrl, max: 2 });
  router = new TenantRouter({ pool: home });
  await router.start();
  pool = new RoutedTenantPool({
    router,
    clusters: { home: db.appUrl },
    contextSecret: db.contextSecret,
    maxConnections: 10,
    poolSize: 4,
    checkoutTimeoutMs: CHECKOUT_MS,
    statementTimeoutMs: STATEMENT_MS,
  });
});

afterAll(async () => {
  await pool?.end();
  await router?.close();
  await placements?.end();
  await home?.end();
  if (db) {
    for (const name of databases) await dropDatabase(db.admin, name);
    await db.drop();
  }
});

interface Outcome {
  ms: number;
  code?: string;
}

async function timed(work: () => Promise<unknown>): Promise<Outcome> {
  const started = performance.now();
  try {
    await work();
    return { ms: performance.now() - started };
  } catch (error) {
    return { ms: performance.now() - started, code: String((error as { code?: unknown }).code) };
  }
}

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;
}

describe('capacity isolation', () => {
  it('a table locked 15 s in one schema and a stuck tenant database do not slow the other tenants', async () => {
    // the locks: another session holds ACCESS EXCLUSIVE on the locked tenant's table, and on the
    // stuck database's table
    const lockHome = await db.admin.connect();
    const lockD = new pg.Client({ connectionString: withDatabase(db.adminUrl, `${db.name}_d`) });
    lockD.on('error', () => undefined);
    await lockD.connect();
    try {
      await lockHome.query('begin');
      await lockHome.query('lock table t_locked.notes in access exclusive mode');
      await lockD.query('begin');
      await lockD.query('lock table notes in access exclusive mode');
      const lockedAt = performance.now();
      const release = new Promise<void>((resolve) =>
        setTimeout(async () => {
          await lockHome.query('rollback');
          await lockD.query('rollback');
          resolve();
        }, LOCK_MS),
      );
      let locked = true;
      void release.then(() => (locked = false));

      // the stuck tenants keep sending: reads (no client deadline) and writes whose clients give up
      const stuck: Outcome[] = [];
      const gaveUp: Outcome[] = [];
      const stuckLoops = Array.from({ length: 6 }, (_, i) =>
        (async () => {
          while (locked) {
            if (i % 2 === 0) {
              stuck.push(await timed(() => runAs(t.stuckDb, () => pool.query('select count(*) from notes'))));
              stuck.push(await timed(() => runAs(t.locked, () => pool.query('select count(*) from notes'))));
            } else {
              const signal = AbortSignal.timeout(GIVE_UP_MS);
              gaveUp.push(
                await timed(() =>
                  runAs(t.locked, () => pool.query(`insert into notes (body) values ('given up')`), { signal }),
                ),
              );
            }
          }
        })(),
      );

      // everyone else, while the locks hold
      await new Promise((r) => setTimeout(r, 500));
      const others: Outcome[] = [];
      const otherLoops = (['shared', 'schema', 'database'] as const).flatMap((key) =>
        Array.from({ length: 2 }, () =>
          (async () => {
            while (locked && performance.now() - lockedAt < LOCK_MS - 500) {
              others.push(await timed(() => runAs(t[key], () => pool.query('select count(*) from notes'))));
              others.push(
                await timed(() => runAs(t[key], () => pool.query(`insert into notes (body) values ('written')`))),
              );
            }
          })(),
        ),
      );
      await Promise.all(otherLoops);
      await release;
      await Promise.all(stuckLoops);

      // the others: all served, fast, while the locks held
      expect(others.filter((o) => o.code !== undefined)).toEqual([]);
      expect(others.length).toBeGreaterThan(100);
      expect(p99(others.map((o) => o.ms))).toBeLessThan(1000);

      // the stuck tenants: every statement ended within its bounds, with a code
      expect(stuck.length).toBeGreaterThan(0);
      for (const o of stuck) {
        if (o.code !== undefined) expect(['POOL_TIMEOUT', 'STATEMENT_TIMEOUT']).toContain(o.code);
        expect(o.ms).toBeLessThan(CHECKOUT_MS + STATEMENT_MS + 2000);
      }
      expect(stuck.some((o) => o.code === 'STATEMENT_TIMEOUT')).toBe(true);
      // the writes whose clients gave up were not sent, or were cancelled: none is written (only
      // those sent as the lock cleared, and answered before their client gave up, are)
      const answered = gaveUp.filter((o) => o.code === undefined);
      expect(gaveUp.length).toBeGreaterThan(answered.length);
      for (const o of gaveUp) {
        if (o.code === undefined) expect(o.ms).toBeLessThan(GIVE_UP_MS);
        else expect(o.code).toBe('REQUEST_ABORTED');
        expect(o.ms).toBeLessThan(GIVE_UP_MS + 2000);
      }
      await new Promise((r) => setTimeout(r, 500));
      const { rows } = await db.admin.query(`select count(*)::int as n from t_locked.notes`);
      expect(rows[0]).toEqual({ n: answered.length });
      // and the pool has every slot back
      expect(pool.activeConnections).toBe(0);
    } finally {
      await lockHome.query('rollback').catch(() => undefined);
      lockHome.release();
      await lockD.end().catch(() => undefined);
    }
  }, 60_000);

  it('a checkout that finds no slot in time fails with POOL_TIMEOUT (503)', async () => {
    const small = new RoutedTenantPool({
      router,
      clusters: { home: db.appUrl },
      contextSecret: db.contextSecret,
      maxConnections: 1,
      checkoutTimeoutMs: 300,
    });
    try {
      const held = await runAs(t.shared, () => small.connect());
      const started = performance.now();
      const error = await runAs(t.schema, () => small.query('select 1')).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'POOL_TIMEOUT', status: 503 });
      expect(performance.now() - started).toBeLessThan(3000);
      held.release();
      expect((await runAs(t.schema, () => small.query('select 1 as one'))).rows).toEqual([{ one: 1 }]);
      expect(small.activeConnections).toBe(0);
    } finally {
      await small.end();
    }
  });
});
