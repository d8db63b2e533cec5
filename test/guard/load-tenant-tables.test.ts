import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTenantTables } from '../../src/guard/tenant-table-map.js';
import { analyzeStatement } from '../../src/guard/analyze-statement.js';
import { loadSqlParser } from '../../src/guard/sql-parser.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(`
    create table public.notes (id serial primary key, tenant_id uuid not null, body text);
    create schema billing;
    create table billing.invoices (id serial primary key, gone int, org_id uuid not null);
    alter table billing.invoices drop column gone; -- a dropped column takes no place
    create table public.plans (id serial primary key, name text);
    select tenantry.register_tenant_table('public.notes');
    select tenantry.register_tenant_table('billing.invoices', 'org_id');
    select tenantry.register_global_table('public.plans');`);
});
afterAll(() => db?.drop());

describe('loadTenantTables', () => {
  it('reads the tenant tables and their column from the registry, with the search path', async () => {
    const map = await loadTenantTables(db.owner);
    expect(map.tables.map((t) => `${t.schema}.${t.name}:${t.column}`)).toEqual([
      'billing.invoices:org_id',
      'public.notes:tenant_id',
    ]);
    expect(map.searchPath).toContain('public');
    expect(map.resolve(undefined, 'notes')?.schema).toBe('public');
    expect(map.resolve(undefined, 'plans')).toBeUndefined();
    expect(map.resolve('billing', 'invoices')?.column).toBe('org_id');
  });

  it('reads where the tenant column sits, so an INSERT without a column list can be judged', async () => {
    const map = await loadTenantTables(db.owner);
    expect(map.tables.map((t) => `${t.name}:${t.position}`)).toEqual(['invoices:2', 'notes:2']);
    await loadSqlParser();
    expect(analyzeStatement('insert into billing.invoices values (default, $1)', map).unscoped).toEqual([]);
    expect(analyzeStatement('insert into billing.invoices values (default)', map).unscoped).toHaveLength(1);
  });

  it('is refused to the app role, which must use a static list', async () => {
    const app = db.appPool();
    await expect(loadTenantTables(app)).rejects.toMatchObject({ code: '42501' });
  });
});
