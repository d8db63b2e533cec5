import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { runAs } from '../src/context/tenant-context.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { createNotesTable } from './support/notes-table.js';

let db: TestDatabase;
const A = randomUUID();
const B = randomUUID();

beforeAll(async () => {
  db = await createTestDatabase();
  await createNotesTable(db, [
    [A, 'a-secret'],
    [B, 'b-secret'],
  ]);
  await db.owner.query(`
    -- a defect the result check must catch: a view owned by the owner role (BYPASSRLS), without
    -- security_invoker, handed to the app: it shows every tenant's rows
    create view leaky_notes as select tenant_id, body from notes;
    create table legacy_notes (org_id uuid not null, body text not null);
    insert into legacy_notes values ('${A}', 'a-legacy'), ('${B}', 'b-legacy');
  `);
  await db.admin.query(`grant select on leaky_notes to ${db.appRole};
    alter table legacy_notes disable row level security; grant select on legacy_notes to ${db.appRole}`);
});
afterAll(() => db?.drop());

describe('result check', () => {
  it('fails a query that returns another tenant’s row, naming the table and column but no data', async () => {
    const pool = db.appPool();
    const error = (await runAs(A, () => pool.query('select tenant_id, body from leaky_notes order by body')).catch(
      (e: unknown) => e,
    )) as {
      code?: string;
      message: string;
      details: Record<string, unknown>;
    };
    expect(error.code).toBe('CROSS_TENANT_ROW');
    const oid = (await db.admin.query(`select 'leaky_notes'::regclass::oid::int as oid`)).rows[0].oid;
    expect(error.details).toEqual({ tableOid: oid, table: 'public.leaky_notes', column: 'tenant_id' });
    expect(error.message).toBe("A row of public.leaky_notes came back with another tenant's tenant_id");
    expect(JSON.stringify({ m: error.message, d: error.details })).not.toMatch(/secret|[0-9a-f]{8}-[0-9a-f]{4}/);
    // a view row of the own tenant alone passes
    const own = await runAs(A, () => pool.query('select tenant_id, body from leaky_notes where tenant_id = $1', [A]));
    expect(own.rows).toEqual([{ tenant_id: A, body: 'a-secret' }]);
  });

  it('checks configured column names, and can be turned off', async () => {
    const named = db.appPool({ checkResults: { columns: ['org_id'] } });
    await expect(runAs(A, () => named.query('select org_id, body from legacy_notes'))).rejects.toMatchObject({
      code: 'CROSS_TENANT_ROW',
      details: { table: 'public.legacy_notes', column: 'org_id' },
    });
    const off = db.appPool({ checkResults: false });
    const all = await runAs(A, () => off.query('select tenant_id from leaky_notes'));
    expect(all.rowCount).toBe(2);
  });

  it('leaves computed columns, no-tenant queries and the pool in a usable state', async () => {
    const pool = db.appPool({ max: 1 });
    const computed = await runAs(A, () => pool.query(`select $1::uuid as tenant_id`, [B]));
    expect(computed.rows).toEqual([{ tenant_id: B }]); // not read from a table: not a row of B
    await expect(runAs(A, () => pool.query('select tenant_id from leaky_notes'))).rejects.toMatchObject({
      code: 'CROSS_TENANT_ROW',
    });
    const after = await runAs(A, () => pool.query('select body from notes'));
    expect(after.rows).toEqual([{ body: 'a-secret' }]);
  });

  it('names the table on the same connection after the statement, inside a transaction too, which stays usable', async () => {
    const pool = db.appPool({ max: 1 });
    const client = await pool.connect();
    try {
      await runAs(A, async () => {
        await client.query('begin');
        await expect(client.query('select tenant_id, body from leaky_notes')).rejects.toMatchObject({
          code: 'CROSS_TENANT_ROW',
          details: { table: 'public.leaky_notes' },
        });
        // a callback caller gets the named error too
        const viaCallback = await new Promise<unknown>((resolve) =>
          client.query('select tenant_id from leaky_notes', (err: unknown) => resolve(err)),
        );
        expect(viaCallback).toMatchObject({ code: 'CROSS_TENANT_ROW', details: { table: 'public.leaky_notes' } });
        const own = await client.query('select body from notes');
        expect(own.rows).toEqual([{ body: 'a-secret' }]);
        await client.query('commit');
      });
    } finally {
      client.release();
    }
  });

  it('falls back to the OID when the name cannot be read (the transaction failed before the lookup ran)', async () => {
    const pool = db.appPool({ max: 1 });
    const client = await pool.connect();
    try {
      await runAs(A, async () => {
        await client.query('begin');
        // queued on the client before the first answers: it runs (and fails) before the lookup
        const first = client.query('select tenant_id from leaky_notes').catch((e: unknown) => e);
        const second = client.query('select 1 / 0').catch((e: unknown) => e);
        const [error, failed] = (await Promise.all([first, second])) as Array<{
          code?: string;
          details?: Record<string, unknown>;
          message: string;
        }>;
        expect(failed!.code).toBe('22012');
        expect(error!.code).toBe('CROSS_TENANT_ROW');
        expect(error!.details).toEqual({ tableOid: expect.any(Number), column: 'tenant_id' });
        expect(error!.message).toMatch(/^A row of table OID \d+ came back with another tenant's tenant_id$/);
        await client.query('rollback');
      });
    } finally {
      client.release();
    }
  });
});
