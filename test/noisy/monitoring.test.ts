// Monitoring: the pools' per-tenant activity published through the owner pool, the tag of a
// tenant's running statements in pg_stat_activity (never the context value, gone after the
// statement), `tenantry tenants top` (read function and subprocess), and what the app role may
// not do with the published figures.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { TenantCatalog } from '../../src/catalog/tenant-catalog.js';
import { activityTag } from '../../src/data/activity-tag.js';
import { TenantActivity } from '../../src/data/tenant-activity.js';
import { writeActivityWindow } from '../../src/data/tenant-activity-publisher.js';
import { TenantDbLimits } from '../../src/data/tenant-db-limits.js';
import { readTop } from '../../src/cli/top-command.js';
import { adviseOnLoad } from '../../src/tiers/placement-advice.js';
import { createNotesTable } from '../support/notes-table.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let acme: { id: string; slug: string };
let small: { id: string; slug: string };
const suffix = randomUUID().slice(0, 6);

beforeAll(async () => {
  db = await createTestDatabase();
  const catalog = new TenantCatalog(db.owner);
  acme = await catalog.create({ slug: `acme-${suffix}`, name: 'Acme', settings: { plan: 'free' } });
  small = await catalog.create({ slug: `small-${suffix}`, name: 'Small', settings: { plan: 'pro' } });
  await createNotesTable(db, [
    [acme.id, 'a1'],
    [acme.id, 'a2'],
    [small.id, 's1'],
  ]);
});
afterAll(() => db?.drop());

async function appNames(): Promise<string[]> {
  const { rows } = await db.admin.query<{ a: string }>(
    `select application_name as a from pg_stat_activity where usename = $1`,
    [db.appRole],
  );
  return rows.map((r) => r.a);
}

describe('activity tag in pg_stat_activity', () => {
  it('shows a tag of the tenant while its statement runs, never its id or context value, and nothing after', async () => {
    const dbLimits = new TenantDbLimits({ plans: { free: { statementTimeoutMs: 5000 } }, defaultPlan: 'free' });
    const pool = db.appPool({ max: 2, activityTag: true, dbLimits, application_name: 'my-app' });
    const running = runAs(acme.id, () => pool.query('select pg_sleep(0.6)'));
    await new Promise((r) => setTimeout(r, 300));
    const during = await appNames();
    expect(during).toContain(activityTag(acme.id));
    expect(during.join(' ')).not.toContain(acme.id);
    expect(during.join(' ')).not.toMatch(/[A-Za-z0-9_-]{40,}/); // no signed token
    await running;
    expect(await appNames()).not.toContain(activityTag(acme.id));
    expect(await appNames()).toContain('my-app'); // the session's own name is back
    // statements without a tenant keep the session's name
    expect((await pool.query(`select current_setting('application_name') as a`)).rows[0].a).toBe('my-app');
    // tags differ per tenant
    expect(activityTag(acme.id)).not.toBe(activityTag(small.id));
  });

  it('tags with the named (prepared) prefix too, with and without a tenant on the same connection', async () => {
    const pool = db.appPool({
      max: 1,
      activityTag: true,
      prepareContextStatement: true,
      poolerSelfTest: false,
      application_name: 'my-app',
    });
    const show = `select current_setting('application_name') as a`;
    for (let i = 0; i < 2; i++) {
      expect((await runAs(acme.id, () => pool.query(show))).rows[0].a).toBe(activityTag(acme.id));
      expect((await pool.query(show)).rows[0].a).toBe('my-app');
      expect((await runAs(small.id, () => pool.query(show))).rows[0].a).toBe(activityTag(small.id));
    }
  });

  it('tags a whole transaction from its BEGIN (savepoints rolled back included), then the session name is back', async () => {
    const pool = db.appPool({ max: 1, activityTag: true, application_name: 'my-app' });
    const seen = await runAs(small.id, async () => {
      const client = await pool.connect();
      try {
        const name = async () =>
          (await client.query<{ a: string }>(`select current_setting('application_name') as a`)).rows[0]!.a;
        await client.query('begin');
        const afterBegin = await name();
        await client.query('savepoint s');
        await client.query(`select count(*) from notes`);
        await client.query('rollback to savepoint s');
        const afterRollbackTo = await name();
        const running = client.query('select pg_sleep(0.6)');
        await new Promise((r) => setTimeout(r, 300));
        const during = await appNames();
        await running;
        await client.query('commit');
        return { afterBegin, afterRollbackTo, during, afterCommit: await name() };
      } finally {
        client.release();
      }
    });
    expect(seen.afterBegin).toBe(activityTag(small.id));
    expect(seen.afterRollbackTo).toBe(activityTag(small.id));
    expect(seen.during).toContain(activityTag(small.id));
    // the statement after COMMIT is outside a block again: it sets the tag for itself only
    expect(seen.afterCommit).toBe(activityTag(small.id));
    expect(await appNames()).toContain('my-app');
    expect(await appNames()).not.toContain(activityTag(small.id));
  });
});

describe('published activity and tenants top', () => {
  it('publishes per-tenant figures through the owner pool and ranks them, with advice', async () => {
    const activity = new TenantActivity();
    const pool = db.appPool({ max: 2, activity, activityTag: true });
    for (let i = 0; i < 3; i++) await runAs(acme.id, () => pool.query('select pg_sleep(0.1), body from notes'));
    await runAs(small.id, () => pool.query('select body from notes'));
    expect(await writeActivityWindow(db.owner, activity, 'test-instance')).toBe(2);
    const report = await readTop(db.admin, { windowMinutes: 60, limit: 20, storage: true, moveShare: 0.25 });
    expect(report.instances).toBe(1);
    const [first, second] = report.tenants;
    expect(first).toMatchObject({ slug: acme.slug, plan: 'free', tier: 'shared', statements: 3, rows: 6 });
    expect(first!.dbShare).toBeGreaterThan(0.8);
    expect(second).toMatchObject({ slug: small.slug, statements: 1, rows: 1 });
    expect(first!.storageBytes).toBeGreaterThan(second!.storageBytes!);
    expect(report.advice.join('\n')).toMatch(
      new RegExp(
        `${acme.slug} used \\d+ % of DB time this hour: move it to its own database: tenantry tenants move ${acme.slug} --to database --database tenant_acme_${suffix}`,
      ),
    );
  });

  it('as an owner without pg_read_all_stats, top says the live columns are unavailable (not 0); granted, it shows them', async () => {
    // install (as a superuser) granted it: take it away as an install by a non-superuser would leave it
    await db.admin.query(`revoke pg_read_all_stats from ${db.ownerRole}`);
    const pool = db.appPool({ max: 1, activityTag: true });
    try {
      const running = runAs(acme.id, () => pool.query('select pg_sleep(1.5)'));
      await new Promise((r) => setTimeout(r, 400));
      const options = { windowMinutes: 60, limit: 20, storage: false, moveShare: 0.25 };
      const blind = await readTop(db.owner, options);
      expect(blind.liveUnavailable).toMatch(
        new RegExp(
          `the role ${db.ownerRole} cannot read other roles' activity.*GRANT pg_read_all_stats TO ${db.ownerRole}`,
        ),
      );
      await db.admin.query(`grant pg_read_all_stats to ${db.ownerRole}`);
      const seeing = await readTop(db.owner, options);
      expect(seeing.liveUnavailable).toBeUndefined();
      expect(seeing.tenants.find((t) => t.slug === acme.slug)).toMatchObject({ activeNow: 1, lockWaitsNow: 0 });
      await running;
    } finally {
      await db.admin.query(`grant pg_read_all_stats to ${db.ownerRole}`);
      await pool.end();
    }
  });

  it('the app role can neither read nor write the published figures', async () => {
    const pool = db.appPool({ max: 1 });
    const before = await db.admin.query('select count(*)::int as n from tenantry_private.tenant_activity');
    for (const sql of [
      'select * from tenantry_private.tenant_activity',
      `insert into tenantry_private.tenant_activity (instance, tenant_key, window_start, window_end) values ('x', '${small.id}', now(), now())`,
      'delete from tenantry_private.tenant_activity',
    ]) {
      await expect(runAs(small.id, () => pool.query(sql))).rejects.toMatchObject({ code: '42501' });
    }
    const after = await db.admin.query('select count(*)::int as n from tenantry_private.tenant_activity');
    expect(after.rows).toEqual(before.rows);
  });

  it('advice names timeouts and connection waits', () => {
    const advice = adviseOnLoad(
      [
        {
          tenantId: 'a',
          slug: 'a',
          tier: 'database',
          dbShare: 0.9,
          statements: 10,
          timeouts: 3,
          waits: 4,
          waitMs: 800,
        },
        { tenantId: 'b', slug: 'b', tier: 'shared', dbShare: 0.1, statements: 1, timeouts: 0, waits: 0, waitMs: 0 },
      ],
      { window: 'this hour' },
    );
    expect(advice).toEqual([
      "a hit its statement or lock timeout 3 time(s) this hour: look at its slow statements and locks, or its plan's limits",
      'a waited 200 ms on average for a connection (4 waits) this hour: a bigger pool, a higher weight, or its own database',
    ]);
  });

  it('advice has floors: no move below minDbTimeMs of DB time, no wait advice below minWaits', () => {
    const loads = [
      {
        tenantId: 'a',
        slug: 'a',
        tier: 'shared' as const,
        dbShare: 0.9,
        dbTimeMs: 900,
        statements: 10,
        timeouts: 0,
        waits: 4,
        waitMs: 800,
      },
      {
        tenantId: 'b',
        slug: 'b',
        tier: 'shared' as const,
        dbShare: 0.1,
        dbTimeMs: 100,
        statements: 1,
        timeouts: 0,
        waits: 0,
        waitMs: 0,
      },
    ];
    // without floors (the library's default): a trivial load is advised on
    expect(adviseOnLoad(loads, { window: 'this hour' })).toHaveLength(2);
    // tenants top's defaults: 60 s of DB time, 10 waits
    expect(adviseOnLoad(loads, { window: 'this hour', minDbTimeMs: 60_000, minWaits: 10 })).toEqual([]);
    const busy = [{ ...loads[0]!, dbTimeMs: 61_000, waits: 12, waitMs: 1200 }, loads[1]!];
    expect(adviseOnLoad(busy, { window: 'this hour', minDbTimeMs: 60_000, minWaits: 10 })).toEqual([
      'a used 90 % of DB time this hour: move it to its own database',
      'a waited 100 ms on average for a connection (12 waits) this hour: a bigger pool, a higher weight, or its own database',
    ]);
  });

  it('tenantry tenants top --json runs as a subprocess', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-top-'));
    try {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [
          '--import',
          'tsx',
          path.resolve('src/cli/main.ts'),
          '--database-url',
          db.adminUrl,
          '--dir',
          dir,
          'tenants',
          'top',
          '--json',
        ],
        { timeout: 60_000 },
      );
      const report = JSON.parse(stdout) as { tenants: Array<{ slug: string }> };
      expect(report.tenants.map((t) => t.slug)).toContain(acme.slug);
      const text = await promisify(execFile)(
        process.execPath,
        [
          '--import',
          'tsx',
          path.resolve('src/cli/main.ts'),
          '--database-url',
          db.adminUrl,
          '--dir',
          dir,
          'tenants',
          'top',
          '--window',
          '0',
        ],
        { timeout: 60_000 },
      ).catch((e: { code: number; stderr: string }) => e);
      expect((text as { code: number }).code).toBe(2);
      // the message says what is refused: 0 is not allowed
      expect((text as { stderr: string }).stderr).toContain(
        '--window must be a number greater than 0 and at most 10080',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
