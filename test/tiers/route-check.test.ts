// The database's own route check, in both context modes: a statement carries the route epoch it
// was sent on, and each database knows which tenants it serves under which epoch.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
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
    await createNotesTable(db, [
      [A, 'a1'],
      [B, 'b1'],
    ]);
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
    await expect(runAs(B, () => pool.query(`insert into notes (body) values ('during freeze')`))).rejects.toMatchObject(
      { code: 'TR004' },
    );
    await setLocal(B, 'moved', 8);
    await expect(count(pool, B)).rejects.toMatchObject({ code: 'TR003' });
    await setLocal(B, 'active', 0);
    expect(await count(pool, B)).toBe(1);
    // A is untouched by B's states, and nothing B tried was written
    expect(await count(pool, A)).toBe(1);
    expect((await db.admin.query(`select count(*)::int as n from notes where body = 'during freeze'`)).rows[0].n).toBe(
      0,
    );
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

  it('costs nothing where only the default route is served: unsigned mode keeps the inlined form until a tenant is placed', async () => {
    const language = async () =>
      (
        await db.admin.query(
          `select l.lanname from pg_proc p join pg_language l on l.oid = p.prolang where p.oid = 'tenantry.current_tenant_id()'::regprocedure`,
        )
      ).rows[0].lanname;
    await db.owner.query('delete from tenantry.local_tenants');
    expect(await language()).toBe(contextMode === 'unsigned' ? 'sql' : 'plpgsql');
    const pool = db.appPool({ contextMode });
    await expect(runAs(A, () => pool.query('select 1 from notes'))).resolves.toMatchObject({ rowCount: 1 });
    if (contextMode === 'unsigned') {
      // the fast form still refuses a context that names a route epoch (it lives nowhere here)
      const client = new pg.Client({ connectionString: db.appUrl }); // plain: no prefix to override the value
      await client.connect();
      try {
        await client.query('begin');
        await client.query(`select set_config('tenantry.context', $1, true)`, [`${A}.5`]);
        await expect(client.query('select 1 from notes')).rejects.toMatchObject({ code: 'TR003' });
      } finally {
        await client.query('rollback');
        await client.end();
      }
    }
    await setLocal(B, 'active', 3);
    expect(await language()).toBe('plpgsql');
    await expect(count(pool, B)).rejects.toMatchObject({ code: 'TR003' });
    await db.owner.query('delete from tenantry.local_tenants');
    expect(await language()).toBe(contextMode === 'unsigned' ? 'sql' : 'plpgsql');
  });

  // unsigned values are forgeable by design (docs/security.md): only signed ones can be tampered with
  it.runIf(contextMode === 'signed')('a signed value cannot be reshaped to drop its route epoch', async () => {
    const { ContextSigner } = await import('../../src/data/context-signer.js');
    const value = new ContextSigner(db.contextSecret).encode(A, 12345);
    const reshaped = `${value.slice(0, value.length - 65)}7${value.slice(value.length - 64)}`;
    const client = new pg.Client({ connectionString: db.appUrl });
    await client.connect();
    try {
      for (const v of [reshaped, value.replace('.12345.', '.12345..')]) {
        await client.query('begin');
        await client.query(`select set_config('tenantry.context', $1, true)`, [v]);
        await expect(client.query('select tenantry.current_tenant_id()')).rejects.toMatchObject({ code: 'TR001' });
        await client.query('rollback');
      }
    } finally {
      await client.end();
    }
  });

  it('doctor flags a route check that cannot work and a tenant frozen for long, with working fixes', async () => {
    const { runDoctor } = await import('../../src/policy/doctor.js');
    const codes = async () => (await runDoctor(db.adminUrl)).findings.map((f) => [f.code, f.object]);
    await setLocal(B, 'active', 0);
    expect(await codes()).toEqual([]);
    if (contextMode === 'unsigned') {
      // the inlined form planted back while a tenant is placed here
      await db.owner.query(
        `create or replace function tenantry.current_tenant_id() returns uuid language sql stable as $$ select nullif(current_setting('tenantry.context', true), '')::uuid $$`,
      );
      expect(await codes()).toEqual([['ROUTE_CHECK_INLINED_WITH_PLACEMENTS', 'tenantry.current_tenant_id()']]);
      const report = await runDoctor(db.adminUrl);
      await db.owner.query(report.findings[0]!.fix);
      expect(await codes()).toEqual([]);
    }
    await db.owner.query(
      `update tenantry.local_tenants set state = 'frozen', updated_at = now() - interval '20 minutes' where tenant_key = $1`,
      [B],
    );
    const found = (await runDoctor(db.adminUrl)).findings;
    expect(found.map((f) => [f.code, f.severity, f.object])).toEqual([['TENANT_FROZEN_LONG', 'warning', B]]);
    await setLocal(B, 'active', 0);
  });

  it('the app role cannot change where tenants live', async () => {
    const pool = db.appPool({ contextMode });
    for (const sql of [
      `select * from tenantry.local_tenants`,
      `update tenantry.local_tenants set state = 'active'`,
      `delete from tenantry.local_tenants`,
      `update tenantry.local_route set serves_default = true`,
      `insert into tenantry.local_tenants values ('${A}', 'active', 1)`,
    ]) {
      await expect(pool.query(sql), sql).rejects.toMatchObject({ code: '42501' });
    }
  });
});
