// RoutedTenantPool with the noisy-neighbour protection: per-tenant limits reach every database's
// prefix (shared and schema tier here), a database's connections are shared fairly (a tenant's
// slow statements leave the others a connection), and one activity table counts every database.
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { TenantDbLimits } from '../../src/data/tenant-db-limits.js';
import { activityTag } from '../../src/data/activity-tag.js';
import { Placements } from '../../src/tiers/placements.js';
import { createTenantSchema } from '../../src/tiers/provision.js';
import { RoutedTenantPool } from '../../src/tiers/routed-tenant-pool.js';
import { TenantRouter } from '../../src/tiers/tenant-router.js';
import { ConfigurationError } from '../../src/errors/tenantry-error.js';
import { NOTES_DDL } from '../support/notes-table.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let router: TenantRouter;
let placements: Placements;
let home: pg.Pool;
const ids: Record<'noisy' | 'quiet', string> = { noisy: '', quiet: '' };

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(NOTES_DDL);
  for (const [key, plan] of [
    ['noisy', 'free'],
    ['quiet', 'pro'],
  ] as const) {
    const { rows } = await db.owner.query<{ id: string }>(
      `insert into tenantry.tenants (slug, name, settings) values ($1, $1, $2) returning id`,
      [`routed-${key}`, { plan }],
    );
    ids[key] = rows[0]!.id;
  }
  placements = new Placements({ catalog: db.owner, owners: { home: db.ownerUrl } });
  await createTenantSchema(db.owner, 't_quiet', NOTES_DDL);
  await placements.assign(ids.quiet, { tier: 'schema', cluster: 'home', schema: 't_quiet' });
  home = new pg.Pool({ connectionString: db.routerUrl, max: 2 });
  router = new TenantRouter({ pool: home });
  await router.start();
});

afterAll(async () => {
  await router?.close();
  await placements?.end();
  await home?.end();
  await db?.drop();
});

it('sends each tenant its limits, shares a database fairly and counts every database', async () => {
  const dbLimits = new TenantDbLimits({
    plans: { free: { statementTimeoutMs: 2000, lockTimeoutMs: 300, weight: 1 }, pro: { statementTimeoutMs: 9000 } },
    defaultPlan: 'free',
  });
  await dbLimits.load(db.owner);
  const pool = new RoutedTenantPool({
    router,
    clusters: { home: db.appUrl },
    contextSecret: db.contextSecret,
    maxConnections: 8,
    poolSize: 4,
    dbLimits,
    fairCheckout: true,
    activity: true,
    activityTag: true,
  });
  try {
    const show = `select current_setting('statement_timeout') as st, current_setting('lock_timeout') as lt, current_setting('application_name') as tag`;
    expect((await runAs(ids.noisy, () => pool.query(show))).rows[0]).toEqual({
      st: '2s',
      lt: '300ms',
      tag: activityTag(ids.noisy),
    });
    expect((await runAs(ids.quiet, () => pool.query(show))).rows[0]).toMatchObject({
      st: '9s',
      tag: activityTag(ids.quiet),
    });
    // both tenants in the home database: the noisy one holds at most 3 of its 4 connections
    await placements.assign(ids.quiet, { tier: 'shared', cluster: 'home' });
    await router.refresh(ids.quiet);
    const slow = Array.from({ length: 8 }, () => runAs(ids.noisy, () => pool.query('select pg_sleep(0.6)')));
    await new Promise((r) => setTimeout(r, 150));
    const started = Date.now();
    await runAs(ids.quiet, () => pool.query('select count(*) from notes'));
    expect(Date.now() - started).toBeLessThan(450);
    await Promise.all(slow);
    const rows = pool.activity!.snapshot();
    expect(rows.find((r) => r.tenantId === ids.noisy)).toMatchObject({ statements: 9, errors: 0 });
    expect(rows.find((r) => r.tenantId === ids.quiet)).toMatchObject({ statements: 2 });
  } finally {
    await pool.end();
  }
  expect(
    () =>
      new RoutedTenantPool({
        router,
        clusters: { home: db.appUrl },
        contextSecret: db.contextSecret,
        fairCheckout: { maxPerTenant: 2 },
      }),
  ).toThrow(ConfigurationError);
  // a DB time budget it would not keep is refused at start, not at the first statement of a database
  expect(
    () =>
      new RoutedTenantPool({
        router,
        clusters: { home: db.appUrl },
        contextSecret: db.contextSecret,
        fairCheckout: true,
        dbLimits: new TenantDbLimits({ plans: { free: { dbTimeMsPerSecond: 200 } }, defaultPlan: 'free' }),
      }),
  ).toThrow(/DB time budgets/);
});
