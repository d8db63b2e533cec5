import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { currentTenant, runAs, CrossTenantRowError, TenantNotFoundError, type TenantPool } from '../../src/index.js';
import { QueryGuard, TenantTableMap } from '../../src/guard/index.js';
import { installTenantryMatchers } from '../../src/testing/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

installTenantryMatchers();

let db: TestDatabase;
let pool: TenantPool;
const A = randomUUID();
const B = randomUUID();

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(`
    create table notes (tenant_id uuid not null, id uuid not null default gen_random_uuid(), body text not null, primary key (tenant_id, id));
    select tenantry.register_tenant_table('notes');
    insert into notes (tenant_id, body) values ('${A}', 'a'), ('${B}', 'b');
    create view leaky_notes as select tenant_id, body from notes;`);
  await db.admin.query(`grant select on leaky_notes to ${db.appRole}`);
  pool = db.appPool();
});
afterAll(() => db?.drop());

describe('toThrowTenantScopeMissing', () => {
  it('passes for work with no tenant in context, sync and async', async () => {
    expect(() => currentTenant()).toThrowTenantScopeMissing();
    await expect(Promise.resolve().then(() => currentTenant())).rejects.toThrowTenantScopeMissing();
    expect(() => runAs(A, () => currentTenant())).not.toThrowTenantScopeMissing();
  });

  it('passes for a statement the query guard refuses in enforce mode', async () => {
    await QueryGuard.ready();
    const guarded = db.appPool({
      guard: new QueryGuard({ mode: 'enforce', tables: TenantTableMap.from(['public.notes']) }),
    });
    await expect(runAs(A, () => guarded.query('select * from notes'))).rejects.toThrowTenantScopeMissing();
    await expect(
      runAs(A, () => guarded.query('select * from notes where tenant_id = $1', [A])),
    ).resolves.not.toThrowTenantScopeMissing();
  });

  it('fails, with a message naming what was thrown, for another error or none', async () => {
    expect(() => expect(() => undefined).toThrowTenantScopeMissing()).toThrow(
      'expected an error with code TENANT_SCOPE_MISSING, but nothing was thrown',
    );
    await expect(expect(Promise.reject(new TenantNotFoundError())).rejects.toThrowTenantScopeMissing()).rejects.toThrow(
      'expected an error with code TENANT_SCOPE_MISSING, got TenantNotFoundError with code TENANT_NOT_FOUND',
    );
  });
});

describe('toThrowCrossTenantRow', () => {
  it("passes for the pool's result check, with the table and column when given", async () => {
    const read = () => runAs(A, () => pool.query('select tenant_id, body from leaky_notes'));
    await expect(read()).rejects.toThrowCrossTenantRow();
    await expect(read()).rejects.toThrowCrossTenantRow({ table: 'public.leaky_notes', column: 'tenant_id' });
    await expect(expect(read()).rejects.toThrowCrossTenantRow({ table: 'public.notes' })).rejects.toThrow(
      'expected CROSS_TENANT_ROW for table public.notes, got table public.leaky_notes',
    );
  });

  it('fails for other errors', () => {
    expect(new CrossTenantRowError({ tableOid: 1, column: 'tenant_id' })).toThrowCrossTenantRow({
      column: 'tenant_id',
    });
    expect(() => expect(new TenantNotFoundError()).toThrowCrossTenantRow()).toThrow(
      /got TenantNotFoundError with code TENANT_NOT_FOUND/,
    );
  });
});

describe('toBeRefusedByRls', () => {
  it('passes for a WITH CHECK refusal (42501) and for a statement that reached no row', async () => {
    await expect(
      runAs(B, () => pool.query('insert into notes (tenant_id, body) values ($1, $2)', [A, 'forged'])),
    ).rejects.toBeRefusedByRls();
    await expect(
      runAs(B, () => pool.query(`update notes set body = 'x' where tenant_id = $1`, [A])),
    ).resolves.toBeRefusedByRls();
    await expect(pool.query('select * from notes')).resolves.toBeRefusedByRls();
  });

  it('fails when the statement reached rows, or failed for another reason', async () => {
    await expect(
      expect(runAs(A, () => pool.query('select body from notes'))).resolves.toBeRefusedByRls(),
    ).rejects.toThrow('expected a refusal (42501 or no rows), but it reached 1 row(s)');
    await expect(expect(runAs(A, () => pool.query('select 1/0'))).rejects.toBeRefusedByRls()).rejects.toThrow(
      'expected a refusal (42501 or no rows), got error with code 22012',
    );
    await expect(runAs(A, () => pool.query('select body from notes'))).resolves.not.toBeRefusedByRls();
  });
});

describe('toHaveTenantryCode', () => {
  it("matches Tenantry's codes and SQLSTATEs", async () => {
    expect(new TenantNotFoundError()).toHaveTenantryCode('TENANT_NOT_FOUND');
    await expect(
      runAs(A, () => pool.query('insert into notes (tenant_id, id, body) select tenant_id, id, body from notes')),
    ).rejects.toHaveTenantryCode('23505');
    expect(new TenantNotFoundError()).not.toHaveTenantryCode('TENANT_SUSPENDED');
  });
});
