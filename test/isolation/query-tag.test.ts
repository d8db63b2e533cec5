// TenantPool.query carries the caller’s tenant to the connection with a tag on its own copy of the query
// config (issue 15 tried a private class field instead of its WeakMap: not cheaper). What a caller
// passes cannot choose the tenant: a config carrying look-alike fields, a config reused for
// another tenant at once, or a config copied from one that went through the pool runs as the
// tenant of the runAs around the call, and the other tenant's rows are neither read nor changed.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import type { TenantPool } from '../../src/data/tenant-pool.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let pool: TenantPool;
const A = randomUUID();
const B = randomUUID();

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(`
    create table notes (tenant_id uuid not null, id uuid not null default gen_random_uuid(), body text not null, primary key (tenant_id, id));
    select tenantry.register_tenant_table('notes');`);
  await db.owner.query(`insert into notes (tenant_id, body) values ($1, 'a1'), ($2, 'b1')`, [A, B]);
  pool = db.appPool();
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

const bodies = (r: { rows: Array<{ body: string }> }) => r.rows.map((x) => x.body);

describe('the tag of a pool query is the caller’s tenant, whatever the config carries', () => {
  it('look-alike fields (tenantId, tag, verdict) on the config change nothing', async () => {
    const config = { text: 'select body from notes', tenantId: B, tag: { tenantId: B }, verdict: null, values: [] };
    expect(bodies(await runAs(A, () => pool.query(config)))).toEqual(['a1']);
    const update = { text: `update notes set body = 'x'`, tenantId: B, tag: { tenantId: B } };
    await runAs(A, () => pool.query(update));
    expect(bodies(await db.admin.query(`select body from notes where tenant_id = $1`, [B]))).toEqual(['b1']);
    await db.owner.query(`update notes set body = 'a1' where tenant_id = $1`, [A]);
  });

  it('one config object used by two tenants at once, and a copy of a config the pool tagged, each run as their caller', async () => {
    const config = { text: 'select body from notes where body <> $1', values: ['none'] };
    const runs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const tenant = i % 2 === 0 ? A : B;
        return runAs(tenant, () => pool.query(config)).then((r) => [tenant, bodies(r)] as const);
      }),
    );
    for (const [tenant, seen] of runs) expect(seen).toEqual([tenant === A ? 'a1' : 'b1']);
    // a config as pg hands it around (a copy with the same prototype and fields) run by B stays B's
    const copy = Object.defineProperties(
      Object.create(Object.getPrototypeOf(config)),
      Object.getOwnPropertyDescriptors(config),
    );
    expect(bodies(await runAs(B, () => pool.query(copy)))).toEqual(['b1']);
    // a string query, and a query outside any runAs (no tenant: nothing)
    expect(bodies(await runAs(B, () => pool.query('select body from notes')))).toEqual(['b1']);
    expect(bodies(await pool.query('select body from notes'))).toEqual([]);
  });
});
