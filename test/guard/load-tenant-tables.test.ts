import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTenantTables } from '../../src/guard/tenant-table-map.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(`
    create table public.notes (id serial primary key, tenant_id uuid not null, body text);
    create schema billing;
    create table billing.invoices (id serial primary key, org_id uuid not null);
    create table public.plans (id serial primary key, name text);
    select tenantry.register_tenant_table('public.notes');
    select tenantry.register_tenant_table('billing.invoices', 'org_id');
    select tenantry.register_global_table('public.plans');`);
});
afterAll(() => db?.drop());

describe('loadTenantTables', () => {
  it('reads the tenant tables and their column from the registry, with the search path', async () => {
    const map = await loadTenantTables(db.owner);
    expect(map.tables.map((t) => `${t.schema}.${t.name}:${t.column}`)).toEqual(['billing.invoices:org_id', 'public.notes:tenant_id']);
    expect(map.searchPath).toContain('public');
    expect(map.resolve(undefined, 'notes')?.schema).toBe('public');
    expect(map.resolve(undefined, 'plans')).toBeUndefined();
    expect(map.resolve('billing', 'invoices')?.column).toBe('org_id');
  });

  it('is refused to the app role, which must use a static list', async () => {
    const app = db.appPool();
    await expect(loadTenantTables(app)).rejects.toMatchObject({ code: '42501' });
  });
});
