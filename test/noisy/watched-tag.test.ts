// activityTag 'watched': a pool tags its tenants' statements in pg_stat_activity only while
// someone watches the live activity (tenants top, the console's top page: watchTenantActivity),
// as its publisher polls the watch. Unwatched, statements carry no tag (the tag's cost is not paid);
// watched, they do within the poll interval; the watch ends by itself; the app role can neither
// read nor start a watch; bad configuration is refused at construction.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { TenantCatalog } from '../../src/catalog/tenant-catalog.js';
import { activityTag } from '../../src/data/activity-tag.js';
import { TenantActivity } from '../../src/data/tenant-activity.js';
import {
  publishTenantActivity,
  readActivityWatch,
  watchTenantActivity,
} from '../../src/data/tenant-activity-publisher.js';
import { LIVE_STARTING, readTop } from '../../src/cli/top-command.js';
import { TenantPool } from '../../src/data/tenant-pool.js';
import { createNotesTable } from '../support/notes-table.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let acme: { id: string; slug: string };
let other: { id: string; slug: string };
const suffix = randomUUID().slice(0, 6);

beforeAll(async () => {
  db = await createTestDatabase();
  const catalog = new TenantCatalog(db.owner);
  acme = await catalog.create({ slug: `acme-${suffix}`, name: 'Acme' });
  other = await catalog.create({ slug: `other-${suffix}`, name: 'Other' });
  await createNotesTable(db, [
    [acme.id, 'a1'],
    [other.id, 'o1'],
  ]);
});
afterAll(() => db?.drop());

/** The application_name of the app role's backends while `acme` runs a statement of `seconds`. */
async function namesDuring(pool: TenantPool, seconds = 0.6): Promise<string[]> {
  const running = runAs(acme.id, () => pool.query(`select pg_sleep(${seconds})`));
  await new Promise((r) => setTimeout(r, (seconds * 1000) / 2));
  const { rows } = await db.admin.query<{ a: string }>(
    `select application_name as a from pg_stat_activity where usename = $1`,
    [db.appRole],
  );
  await running;
  return rows.map((r) => r.a);
}

const waitFor = async (check: () => boolean, ms: number) => {
  const until = Date.now() + ms;
  while (!check() && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
  return check();
};

describe("activityTag 'watched'", () => {
  it('tags nothing while nobody watches; tags within the poll once top watches; stops when the watch ends', async () => {
    await db.admin.query('delete from tenantry_private.activity_watch');
    const activity = new TenantActivity();
    const pool = db.appPool({ max: 2, activity, activityTag: 'watched', application_name: 'my-app' });
    const stop = publishTenantActivity(activity, db.owner, { watchPollMs: 250 });
    try {
      // nobody watches (after the publisher's first poll): the statement runs under the connection's own name
      await new Promise((r) => setTimeout(r, 400));
      expect(activity.watched).toBe(false);
      const unwatched = await namesDuring(pool);
      expect(unwatched).not.toContain(activityTag(acme.id));
      expect(unwatched).toContain('my-app');

      // top's first look starts the watch and says the live columns fill in from the next refresh
      const first = await readTop(db.admin, { windowMinutes: 60, limit: 20, storage: false, moveShare: 0.25 });
      expect(first.liveStarting).toBe(LIVE_STARTING);
      expect(await waitFor(() => activity.watched, 3000)).toBe(true);
      const watched = await namesDuring(pool);
      expect(watched).toContain(activityTag(acme.id));
      // a second look within the watch: nothing to say, and the live columns count the statement
      const running = runAs(acme.id, () => pool.query('select pg_sleep(0.8)'));
      await new Promise((r) => setTimeout(r, 300));
      const second = await readTop(db.admin, { windowMinutes: 60, limit: 20, storage: false, moveShare: 0.25 });
      await running;
      expect(second.liveStarting).toBeUndefined();
      expect(second.tenants.find((t) => t.slug === acme.slug)).toMatchObject({ activeNow: 1 });

      // the watch ends by itself (here: set to the past, as after its 60 s): untagged again
      await db.admin.query(`update tenantry_private.activity_watch set until = now() - interval '1 s'`);
      expect(await waitFor(() => !activity.watched, 3000)).toBe(true);
      expect(await namesDuring(pool)).not.toContain(activityTag(acme.id));
    } finally {
      await stop();
      await pool.end();
    }
    // stopped: not watched whatever the table says
    expect(activity.watched).toBe(false);
  });

  it('a watch only extends (never shortens); seconds out of range are refused', async () => {
    await db.admin.query('delete from tenantry_private.activity_watch');
    expect(await watchTenantActivity(db.owner, 600)).toBe(false);
    const long = await readActivityWatch(db.owner);
    expect(await watchTenantActivity(db.owner, 5)).toBe(true);
    expect(await readActivityWatch(db.owner)).toBe(long);
    expect(long - Date.now()).toBeGreaterThan(500_000);
    for (const bad of [0, -1, 1.5, 3601, Number.NaN])
      await expect(watchTenantActivity(db.owner, bad)).rejects.toMatchObject({ code: 'CONFIGURATION_ERROR' });
    expect(await readActivityWatch(db.owner)).toBe(long);
  });

  it('the app role can neither read, start nor end a watch (refused, nothing changed)', async () => {
    await db.admin.query('delete from tenantry_private.activity_watch');
    await watchTenantActivity(db.owner, 120);
    const before = await readActivityWatch(db.owner);
    const pool = db.appPool({ max: 1 });
    try {
      for (const sql of [
        'select * from tenantry_private.activity_watch',
        `insert into tenantry_private.activity_watch (until) values (now() + interval '1 day')`,
        `update tenantry_private.activity_watch set until = now() + interval '1 day'`,
        'delete from tenantry_private.activity_watch',
      ]) {
        await expect(runAs(other.id, () => pool.query(sql))).rejects.toMatchObject({ code: '42501' });
        await expect(pool.query(sql)).rejects.toMatchObject({ code: '42501' });
      }
    } finally {
      await pool.end();
    }
    expect(await readActivityWatch(db.owner)).toBe(before);
  });

  it('refuses bad configuration at construction', () => {
    const base = { connectionString: 'postgres://nobody@127.0.0.1:1/none', contextMode: 'unsigned' as const };
    expect(() => new TenantPool({ ...base, activityTag: 'watched' })).toThrow(/'watched' needs activity/);
    expect(() => new TenantPool({ ...base, activity: false, activityTag: 'watched' })).toThrow(/needs activity/);
    expect(() => new TenantPool({ ...base, activity: true, activityTag: 'always' as never })).toThrow(
      /activityTag must be true, false or 'watched'/,
    );
    expect(() => new TenantPool({ ...base, activity: true, activityTag: 'watched', citus: true } as never)).toThrow(
      /Citus mode does not carry/,
    );
    expect(() => publishTenantActivity(new TenantActivity(), db.owner, { watchPollMs: 100 })).toThrow(
      /watchPollMs must be at least 250/,
    );
  });
});
