import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { runAs } from '../src/context/tenant-context.js';
import type { TenantPool } from '../src/data/tenant-pool.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';

let db: TestDatabase;
let pool: TenantPool;
const A = randomUUID();
const B = randomUUID();

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(`
    create table notes (tenant_id uuid not null, id uuid not null default gen_random_uuid(), body text not null, primary key (tenant_id, id));
    select tenantry.register_tenant_table('notes');
    insert into notes (tenant_id, body) values ('${A}', 'a1'), ('${A}', 'a2'), ('${B}', 'b1');
  `);
  pool = db.appPool();
});
afterAll(() => db?.drop());

describe('TenantPool', () => {
  it('shows each tenant only its rows', async () => {
    const a = await runAs(A, () => pool.query('select body from notes order by body'));
    const b = await runAs(B, () => pool.query('select body from notes where body like $1', ['%']));
    expect(a.rows.map((r: { body: string }) => r.body)).toEqual(['a1', 'a2']);
    expect(b.rows.map((r: { body: string }) => r.body)).toEqual(['b1']);
  });

  it('shows no rows without a tenant', async () => {
    const r = await pool.query('select * from notes');
    expect(r.rowCount).toBe(0);
  });

  it('keeps the context in an explicit transaction and drops it after', async () => {
    const client = await pool.connect();
    try {
      await runAs(A, async () => {
        await client.query('begin');
        const inTx = await client.query('select count(*)::int as n from notes');
        expect(inTx.rows[0].n).toBe(2);
        await client.query('commit');
      });
      const after = await client.query(`select current_setting('tenantry.context', true) as v, (select count(*)::int from notes) as n`);
      expect(after.rows[0]).toEqual({ v: '', n: 0 });
    } finally {
      client.release();
    }
  });
});
