// The purge of a soft-deleted tenant in one database (shared tier): restore before it, the
// refusals (not deleted, retention, unaccounted tables, confirmation), the run with a write racing
// it, the owner's scan of every table afterwards, the other tenant untouched, the signed report.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { TenantCatalog } from '../../src/catalog/tenant-catalog.js';
import { TenantPurger, tenantsDueForPurge, type PurgeParticipant } from '../../src/lifecycle/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { APP_DDL, nonEmpty, rowsOfTenant, seedTenant } from './support/purge-fixtures.js';

let db: TestDatabase;
let catalog: TenantCatalog;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(APP_DDL);
  // a job queue outside the tenant tables: its tenant_id column is accounted for by a participant
  await db.owner.query(
    `create schema queue; create table queue.jobs (id bigserial primary key, tenant_id uuid not null, name text not null)`,
  );
  catalog = new TenantCatalog(db.owner);
});
afterAll(async () => {
  await db?.drop();
});

const jobs: PurgeParticipant = {
  name: 'jobs',
  tables: ['queue.jobs'],
  plan: async (tenantId) =>
    (await db.owner.query<{ n: number }>('select count(*)::int as n from queue.jobs where tenant_id = $1', [tenantId]))
      .rows[0]!.n,
  purge: async (tenantId) =>
    (await db.owner.query('delete from queue.jobs where tenant_id = $1', [tenantId])).rowCount ?? 0,
};

function purger(extra: Partial<ConstructorParameters<typeof TenantPurger>[0]> = {}): TenantPurger {
  return new TenantPurger({
    catalog: db.owner,
    owners: { home: db.ownerUrl },
    participants: [jobs],
    batchSize: 100,
    ...extra,
  });
}

async function tenantWithData(slug: string, n: number): Promise<string> {
  const t = await catalog.create({ slug, name: slug });
  await seedTenant(db.owner, t.id, n);
  await db.owner.query(`insert into queue.jobs (tenant_id, name) select $1, 'job' from generate_series(1, 5)`, [t.id]);
  return t.id;
}

describe('restore', () => {
  it('undoes a soft delete before the purge, with every row still there', async () => {
    const id = await tenantWithData('restore-me', 10);
    const before = await rowsOfTenant(db.owner, id);
    expect((await catalog.softDelete(id)).status).toBe('deleted');
    const restored = await catalog.restore('restore-me');
    expect(restored).toMatchObject({ status: 'active', deletedAt: null });
    expect(await rowsOfTenant(db.owner, id)).toEqual(before);
    // an active tenant: restore is idempotent; a suspended one is not "deleted"
    expect((await catalog.restore(id)).status).toBe('active');
    await catalog.suspend(id);
    await expect(catalog.restore(id)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('purge', () => {
  it('refuses a tenant that is not deleted, and one whose retention is not over, changing nothing', async () => {
    const id = await tenantWithData('not-yet', 5);
    const p = purger({ policy: { retentionDays: 30 } });
    try {
      await expect(p.run('not-yet', { confirm: 'not-yet', operator: 'ops' })).rejects.toMatchObject({
        code: 'TENANT_NOT_DELETED',
      });
      await catalog.softDelete(id);
      // due 30 days after the soft delete, not before
      const due = async (at: Date) =>
        (await tenantsDueForPurge(db.owner, { retentionDays: 30 }, at)).map((d) => d.tenant.id).includes(id);
      expect(await due(new Date())).toBe(false);
      expect(await due(new Date(Date.now() + 31 * 86_400_000))).toBe(true);
      const plan = await p.plan('not-yet');
      expect(plan.blockers.map((b) => b.code)).toEqual(['PURGE_RETENTION']);
      expect(plan.retention).toMatchObject({ days: 30, source: 'default' });
      await expect(p.run('not-yet', { confirm: 'not-yet', operator: 'ops' })).rejects.toMatchObject({
        code: 'PURGE_RETENTION',
      });
      // the plan's retention: the plan's, then the tenant's own setting
      await db.owner.query(`update tenantry.tenants set settings = '{"plan": "free"}' where id = $1`, [id]);
      expect((await purger({ policy: { plans: { free: 0 } } }).plan(id)).blockers).toEqual([]);
      await db.owner.query(
        `update tenantry.tenants set settings = '{"plan": "free", "retentionDays": 90}' where id = $1`,
        [id],
      );
      expect((await purger({ policy: { plans: { free: 0 } } }).plan(id)).retention).toMatchObject({
        days: 90,
        source: 'tenant',
      });
      // a wrong confirmation
      await expect(
        p.run('not-yet', { confirm: 'not-ye', operator: 'ops', ignoreRetention: true }),
      ).rejects.toMatchObject({
        code: 'PURGE_CONFIRMATION_REQUIRED',
      });
      // another purge of the same tenant holds its lock (another process): refused, not queued
      const other = await db.owner.connect();
      try {
        await other.query('select pg_advisory_lock(hashtext($1))', [`tenantry.purge:${id}`]);
        await expect(
          p.run('not-yet', { confirm: 'not-yet', operator: 'ops', ignoreRetention: true }),
        ).rejects.toMatchObject({
          code: 'PURGE_BUSY',
        });
        await other.query('select pg_advisory_unlock(hashtext($1))', [`tenantry.purge:${id}`]);
      } finally {
        other.release();
      }
      expect(nonEmpty(await rowsOfTenant(db.owner, id))).toMatchObject({ 'public.notes': 5, 'queue.jobs': 5 });
      expect((await db.owner.query('select 1 from tenantry.purges where tenant_id = $1', [id])).rows).toEqual([]);
    } finally {
      await p.end();
    }
  });

  it('refuses while a table with a tenant_id column is not accounted for, naming it, and changes nothing', async () => {
    const id = await tenantWithData('stray', 5);
    await catalog.softDelete(id);
    await db.owner.query(`create table public.stray_exports (tenant_id uuid not null, body text)`);
    await db.owner.query(`insert into public.stray_exports values ($1, 'x')`, [id]);
    const before = await rowsOfTenant(db.owner, id);
    const p = purger();
    try {
      const plan = await p.plan('stray', { ignoreRetention: true });
      expect(plan.unaccounted).toEqual([{ cluster: 'home', database: db.name, table: 'public.stray_exports' }]);
      const error = await p
        .run('stray', { confirm: 'stray', operator: 'ops', ignoreRetention: true })
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'PURGE_UNACCOUNTED_TABLES' });
      expect((error as Error).message).toContain('public.stray_exports');
      expect(await rowsOfTenant(db.owner, id)).toEqual(before);
      // named as an extra table, it is purged with the rest
      const q = purger({ extraTables: ['public.stray_exports'] });
      const done = await q.run('stray', { confirm: 'stray', operator: 'ops', ignoreRetention: true });
      await q.end();
      expect(done.valid).toBe(true);
      expect(nonEmpty(await rowsOfTenant(db.owner, id))).toEqual({});
    } finally {
      await db.owner.query('drop table public.stray_exports');
      await p.end();
    }
  });

  it('removes every row of the tenant in every table, refuses a write racing it and a restore during it, leaves the other tenant as it was, and signs its report', async () => {
    const gone = await tenantWithData('gone', 450);
    const other = await tenantWithData('stays', 120);
    await db.owner.query(
      `insert into tenantry_private.audit_counters (tenant_id, last_seq) values ($1, 0) on conflict do nothing`,
      [gone],
    );
    const otherBefore = await rowsOfTenant(db.owner, other);
    const goneBefore = nonEmpty(await rowsOfTenant(db.owner, gone));
    expect(goneBefore).toMatchObject({ 'public.notes': 450, 'public.comments': 450, 'tenantry.audit_log': 4 });
    await catalog.softDelete(gone);
    const anonymisedEntries = async () =>
      (
        await db.owner.query<{ n: number }>(
          `select count(*)::int as n from tenantry.audit_log where reason is null and actor_id is null and action = 'note.create'`,
        )
      ).rows[0]!.n;
    const anonymisedBefore = await anonymisedEntries();

    const app = db.appPool();
    let raced: unknown = 'not tried';
    let restoreDuring: unknown = 'not tried';
    const noteProgress: number[] = [];
    const p = purger({
      onProgress: async (progress) => {
        // once the first batch of notes is gone: the tenant writes, and someone restores it
        if (progress.step.table === 'public.notes' && progress.removed > 0) noteProgress.push(progress.removed);
        if (raced === 'not tried' && progress.step.table === 'public.notes' && progress.removed > 0) {
          raced = await runAs(gone, () => app.query(`insert into notes (body) values ('late')`)).catch(
            (e: unknown) => e,
          );
          restoreDuring = await catalog.restore(gone).catch((e: unknown) => e);
        }
      },
    });
    const verified = await p.run('gone', { confirm: 'gone', operator: 'ops@example.com', ignoreRetention: true });
    await p.end();

    // refused by the route fence in the database (TR003), or earlier by a pool that knows the
    // tenant is deleted; either way the row is not there (the scan below)
    expect(['TR003', 'TENANT_DELETED', 'TENANT_ROUTE_STALE']).toContain((raced as { code?: string }).code);
    expect(restoreDuring).toMatchObject({ code: 'TENANT_PURGING' });
    // in batches of at most batchSize (100) rows, each its own transaction
    const batches = noteProgress.slice(0, -1).map((n, i) => n - (noteProgress[i - 1] ?? 0));
    expect(batches.length).toBeGreaterThanOrEqual(4);
    expect(Math.max(...batches)).toBeLessThanOrEqual(100);
    // as the owner, every table with a tenant_id column in the database: nothing of the tenant
    expect(nonEmpty(await rowsOfTenant(db.owner, gone))).toEqual({});
    expect(await rowsOfTenant(db.owner, other)).toEqual(otherBefore);
    expect(await catalog.find(gone)).toBeUndefined();
    // the audit entries were anonymised (kept, under another id), not left with the tenant's
    expect(await anonymisedEntries()).toBe(anonymisedBefore + 4);
    // the other tenant still works
    const { rows } = await runAs(other, () => app.query<{ n: number }>('select count(*)::int as n from notes'));
    expect(rows[0]!.n).toBe(120);
    // and gone's context is refused by the database from now on (the route fence)
    await expect(runAs(gone, () => app.query('select count(*) from notes'))).rejects.toBeInstanceOf(Error);

    expect(verified.valid).toBe(true);
    const r = verified.report;
    expect(r).toMatchObject({ tenant: { id: gone, slug: 'gone', tier: 'shared' }, operator: 'ops@example.com' });
    expect(r.policy).toMatchObject({ audit: 'anonymise', retentionWaived: true });
    const step = (table: string) => r.steps.find((s) => s.table === table)!;
    expect(step('public.notes')).toMatchObject({ rowsBefore: 450, rowsAfter: 0, action: 'delete' });
    expect(step('public.comments')).toMatchObject({ rowsBefore: 450, rowsAfter: 0 });
    expect(step('public.tenant_events')).toMatchObject({ rowsBefore: 3, rowsAfter: 0 });
    for (const t of ['sessions', 'api_keys', 'one_time_codes', 'domains'])
      expect(step(`tenantry_private.${t}`)).toMatchObject({ rowsBefore: 1, rowsAfter: 0 });
    expect(step('tenantry.audit_log')).toMatchObject({ rowsBefore: 4, rowsAfter: 0, action: 'anonymise' });
    expect(r.steps.find((s) => s.kind === 'participant')).toMatchObject({ name: 'jobs', rowsBefore: 5, rowsAfter: 0 });
    expect(step('tenantry.tenants')).toMatchObject({ kind: 'catalog', rowsBefore: 1, rowsAfter: 0 });
    expect(r.steps.every((s) => s.rowsAfter === 0)).toBe(true);
    expect(new Date(r.finishedAt).getTime()).toBeGreaterThanOrEqual(new Date(r.startedAt).getTime());

    // stored, verifiable later; an edited report no longer verifies
    const again = purger();
    expect((await again.report('gone')).valid).toBe(true);
    // a re-run after completion answers with the stored report; a restore now finds no tenant
    expect((await again.run('gone', { confirm: 'gone', operator: 'ops' })).report.purgeId).toBe(r.purgeId);
    await expect(catalog.restore('gone')).rejects.toMatchObject({ code: 'TENANT_NOT_FOUND' });
    await db.owner.query(
      `update tenantry.purges set report = replace(report, '"rowsBefore": 450', '"rowsBefore": 45') where tenant_id = $1`,
      [gone],
    );
    const tampered = await again.report('gone');
    expect(tampered).toMatchObject({ valid: false, problem: 'the signature does not match the report' });
    await again.end();
    // the app role can read neither the reports nor the key
    await expect(app.query('select * from tenantry.purges')).rejects.toMatchObject({ code: '42501' });
    await expect(app.query('select * from tenantry_private.purge_keys')).rejects.toMatchObject({ code: '42501' });
  });
});

describe('purge in unsigned context mode, audit entries kept', () => {
  it('the route fence refuses the purged tenant (a write during the purge and after it), the other tenant keeps working; audit entries stay under policy keep', async () => {
    const udb = await createTestDatabase({ contextMode: 'unsigned' });
    try {
      await udb.owner.query(APP_DDL);
      const c = new TenantCatalog(udb.owner);
      const gone = (await c.create({ slug: 'u-gone', name: 'u-gone' })).id;
      const other = (await c.create({ slug: 'u-other', name: 'u-other' })).id;
      await seedTenant(udb.owner, gone, 300);
      await seedTenant(udb.owner, other, 30);
      const otherBefore = await rowsOfTenant(udb.owner, other);
      await c.softDelete(gone);
      const app = udb.appPool({ contextMode: 'unsigned' });
      let raced: unknown = 'not tried';
      const p = new TenantPurger({
        catalog: udb.owner,
        owners: { home: udb.ownerUrl },
        batchSize: 50,
        policy: { audit: 'keep' },
        onProgress: async (progress) => {
          if (raced === 'not tried' && progress.step.table === 'public.notes' && progress.removed > 0)
            raced = await runAs(gone, () => app.query(`insert into notes (body) values ('late')`)).catch(
              (e: unknown) => e,
            );
        },
      });
      const verified = await p.run('u-gone', { confirm: 'u-gone', operator: 'ops', ignoreRetention: true });
      await p.end();
      expect(verified.valid).toBe(true);
      expect(['TR003', 'TENANT_DELETED', 'TENANT_ROUTE_STALE']).toContain((raced as { code?: string }).code);
      // policy keep: the audit log (and its counter) are the tables left holding the tenant's id, as the report says
      const kept = { 'tenantry.audit_log': 4, 'tenantry_private.audit_counters': 1 };
      expect(nonEmpty(await rowsOfTenant(udb.owner, gone))).toEqual(kept);
      expect(verified.report.steps.find((s) => s.table === 'tenantry.audit_log')).toMatchObject({
        action: 'keep',
        rowsBefore: 4,
        rowsAfter: 4,
      });
      expect(verified.report.policy.audit).toBe('keep');
      expect(await rowsOfTenant(udb.owner, other)).toEqual(otherBefore);
      // the purged tenant's 'deleted' hold (core migration 005) stays with the route fence: refused as deleted
      await expect(runAs(gone, () => app.query(`insert into notes (body) values ('after')`))).rejects.toMatchObject({
        code: 'TENANT_DELETED',
      });
      const { rows } = await runAs(other, () => app.query<{ n: number }>('select count(*)::int as n from notes'));
      expect(rows[0]!.n).toBe(30);
      expect(nonEmpty(await rowsOfTenant(udb.owner, gone))).toEqual(kept);
    } finally {
      await udb.drop();
    }
  });
});
