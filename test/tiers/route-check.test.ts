// The database's own route check, in both context modes: a statement carries the route epoch it
// was sent on, and each database knows which tenants it serves under which epoch.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import type { ContextMode } from '../../src/policy/install-sql.js';
import { createNotesTable } from '../support/notes-table.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

describe.each<ContextMode>(['signed', 'unsigned'])('the route check (%s context)', (contextMode) => {
  let db: TestDatabase;
  const A = randomUUID();
  const B = randomUUID();

  beforeAll(async () => {
    db = await createTestDatabase({ contextMode });
    await createNotesTable(db, [[A, 'a1'], [B, 'b1']]);
  });
  afterAll(async () => {
    await db?.drop();
  });

  const count = (pool: ReturnType<TestDatabase['appPool']>, tenant: string) =>
    runAs(tenant, () => pool.query<{ n: number }>('select count(*)::int as n from notes')).then((r) => r.rows[0]!.n);
  const setLocal = (tenant: string, state: string, epoch: number) =>
    db.owner.query(
      `insert into tenantry.local_tenants (tenant_key, state, epoch) values ($1, $2, $3)
       on conflict (tenant_key) do update set state = excluded.state, epoch = excluded.epoch`,
      [tenant, state, epoch],
    );

  it('serves the default route where no local row says otherwise', async () => {
    expect(await count(db.appPool({ contextMode }), A)).toBe(1);
  });

  it('refuses a stale epoch (TR003), a moved tenant (TR003) and a frozen one (TR004)', async () => {
    const pool = db.appPool({ contextMode });
    await setLocal(B, 'active', 7);
    await expect(count(pool, B)).rejects.toMatchObject({ code: 'TR003' }); // sent on the default route, epoch 0
    await setLocal(B, 'frozen', 0);
    await expect(count(pool, B)).rejects.toMatchObject({ code: 'TR004' });
    await expect(runAs(B, () => pool.query(`insert into notes (body) values ('during freeze')`))).rejects.toMatchObject({ code: 'TR004' });
    await setLocal(B, 'moved', 8);
    await expect(count(pool, B)).rejects.toMatchObject({ code: 'TR003' });
    await setLocal(B, 'active', 0);
    expect(await count(pool, B)).toBe(1);
    // A is untouched by B's states, and nothing B tried was written
    expect(await count(pool, A)).toBe(1);
    expect((await db.admin.query(`select count(*)::int as n from notes where body = 'during freeze'`)).rows[0].n).toBe(0);
  });

  it('refuses the default route in a database that does not serve it', async () => {
    const pool = db.appPool({ contextMode });
    await db.owner.query('update tenantry.local_route set serves_default = false');
    try {
      await expect(count(pool, A)).rejects.toMatchObject({ code: 'TR003' });
      // a tenant placed here explicitly is still served (its local row names epoch 0 here)
      expect(await count(pool, B)).toBe(1);
    } finally {
      await db.owner.query('update tenantry.local_route set serves_default = true');
    }
  });

  it('the app role cannot change where tenants live', async () => {
    const pool = db.appPool({ contextMode });
    for (const sql of [`update tenantry.local_tenants set state = 'active'`, `delete from tenantry.local_tenants`, `update tenantry.local_route set serves_default = true`, `insert into tenantry.local_tenants values ('${A}', 'active', 1)`]) {
      await expect(pool.query(sql), sql).rejects.toMatchObject({ code: '42501' });
    }
  });
});
