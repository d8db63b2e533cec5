import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantCatalog } from '../src/catalog/tenant-catalog.js';
import { runAs } from '../src/context/tenant-context.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';

let db: TestDatabase;
let catalog: TenantCatalog;

beforeAll(async () => {
  db = await createTestDatabase();
  catalog = new TenantCatalog(db.owner);
});
afterAll(() => db?.drop());

describe('TenantCatalog', () => {
  it('creates a tenant in the shared tier and finds it by id and slug', async () => {
    const t = await catalog.create({ slug: 'acme', name: 'Acme Inc.', settings: { plan: 'pro' } });
    expect(t).toMatchObject({
      slug: 'acme',
      name: 'Acme Inc.',
      status: 'active',
      placement: { tier: 'shared' },
      settings: { plan: 'pro' },
    });
    expect((await catalog.get(t.id)).slug).toBe('acme');
    expect((await catalog.get('acme')).id).toBe(t.id);
    expect(await catalog.find('nope')).toBeUndefined();
  });

  it('refuses a taken slug and bad input with stable codes', async () => {
    await catalog.create({ slug: 'taken', name: 'One' });
    await expect(catalog.create({ slug: 'taken', name: 'Two' })).rejects.toMatchObject({
      code: 'TENANT_SLUG_TAKEN',
      status: 409,
    });
    await expect(catalog.create({ slug: 'Bad Slug', name: 'x' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'slug' },
    });
    await expect(catalog.create({ slug: 'ok', name: '' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      details: { field: 'name' },
    });
    await expect(catalog.get('00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({
      code: 'TENANT_NOT_FOUND',
      status: 404,
    });
  });

  it('suspends, resumes and soft-deletes, refusing impossible moves', async () => {
    const t = await catalog.create({ slug: 'lifecycle', name: 'L' });
    const suspended = await catalog.suspend(t.id);
    expect(suspended.status).toBe('suspended');
    expect(suspended.suspendedAt).toBeInstanceOf(Date);
    expect((await catalog.suspend(t.id)).status).toBe('suspended'); // idempotent
    expect((await catalog.resume('lifecycle')).status).toBe('active');
    const deleted = await catalog.softDelete(t.id);
    expect(deleted.status).toBe('deleted');
    expect(deleted.deletedAt).toBeInstanceOf(Date);
    await expect(catalog.resume(t.id)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', status: 409 });
    const stored = await db.admin.query('select status from tenantry.tenants where id = $1', [t.id]);
    expect(stored.rows[0].status).toBe('deleted');
  });

  it('lists every tenant exactly once across pages, even within one millisecond', async () => {
    const before = (await catalog.list({ limit: 1000 })).tenants.length;
    await db.owner.query(
      `insert into tenantry.tenants (slug, name) select 'bulk-' || g, 'Bulk ' || g from generate_series(1, 57) g`,
    );
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await catalog.list({ limit: 10, cursor });
      seen.push(...page.tenants.map((t) => t.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen.length).toBe(before + 57);
    expect(new Set(seen).size).toBe(seen.length);
    const suspendedOnly = await catalog.list({ status: 'suspended' });
    expect(suspendedOnly.tenants.every((t) => t.status === 'suspended')).toBe(true);
    await expect(catalog.list({ cursor: 'garbage' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(catalog.list({ limit: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('shows the app role only its own tenant row, and none without a tenant', async () => {
    const a = await catalog.create({ slug: 'self-a', name: 'A' });
    await catalog.create({ slug: 'self-b', name: 'B' });
    const pool = db.appPool();
    const mine = await runAs(a.id, () => pool.query('select slug from tenantry.tenants'));
    expect(mine.rows).toEqual([{ slug: 'self-a' }]);
    expect((await pool.query('select * from tenantry.tenants')).rowCount).toBe(0);
    await expect(runAs(a.id, () => pool.query(`update tenantry.tenants set name = 'x'`))).rejects.toMatchObject({
      code: '42501',
    });
    await expect(
      runAs(a.id, () => pool.query(`insert into tenantry.tenants (slug, name) values ('evil', 'x')`)),
    ).rejects.toMatchObject({ code: '42501' });
  });
});
