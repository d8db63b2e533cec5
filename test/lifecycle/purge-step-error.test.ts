// A purge step that fails on a raw database or connection error stops the purge with
// PURGE_STEP_FAILED naming the step (not a bare SQLSTATE); the same command resumes it once fixed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantCatalog } from '../../src/catalog/tenant-catalog.js';
import { TenantPurger } from '../../src/lifecycle/index.js';
import { exportFixture, seedTenant, tenantDatabase, type ExportFixture } from './support/export-fixture.js';

let f: ExportFixture;

beforeAll(async () => {
  f = await exportFixture();
  await tenantDatabase(f, 'tg_purge_step');
  await seedTenant(f, 'gone', 5, 1, { tier: 'database', cluster: 'home', database: 'tg_purge_step' });
  await new TenantCatalog(f.db.owner, { placements: f.placements }).softDelete('gone');
});
afterAll(async () => {
  await f?.end();
});

describe('a failing purge step', () => {
  it('is PURGE_STEP_FAILED with the step, and the same purge resumes to the end once fixed', async () => {
    // the superuser URL points nowhere: the database drop cannot connect
    const broken = new TenantPurger({
      catalog: f.db.owner,
      owners: { home: f.db.ownerUrl },
      admins: { home: 'postgres://nobody@127.0.0.1:1/postgres' },
      extraTables: ['public.members'],
    });
    try {
      await expect(
        broken.run('gone', { confirm: 'gone', operator: 'test', ignoreRetention: true }),
      ).rejects.toMatchObject({ code: 'PURGE_STEP_FAILED', details: { step: 'database:home/tg_purge_step' } });
    } finally {
      await broken.end();
    }
    const fixed = new TenantPurger({
      catalog: f.db.owner,
      owners: { home: f.db.ownerUrl },
      admins: { home: f.db.adminUrl },
      extraTables: ['public.members'],
    });
    try {
      await fixed.run('gone', { confirm: 'gone', operator: 'test', ignoreRetention: true });
    } finally {
      await fixed.end();
    }
    expect((await f.db.owner.query(`select from pg_database where datname = 'tg_purge_step'`)).rowCount).toBe(0);
  });
});
