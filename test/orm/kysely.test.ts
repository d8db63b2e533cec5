// Kysely used unchanged on a TenantPool: its PostgresDialect checks out clients and runs
// statements on them; the pool applies the tenant of the caller's context to each one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { Kysely, PostgresDialect, sql, type Generated } from 'kysely';
import { runAs, runWithoutTenant } from '../../src/context/tenant-context.js';
import type { TenantPool } from '../../src/data/tenant-pool.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { createNotesTable } from '../support/notes-table.js';

interface Database {
  notes: {
    id: Generated<string>;
    tenant_id: Generated<string>; // defaults to the tenant in context
    body: string;
    created_at: Generated<Date>;
  };
}

let tdb: TestDatabase;
let pool: TenantPool;
let db: Kysely<Database>;
const A = randomUUID();
const B = randomUUID();

/** What the superuser sees: the truth, past RLS. */
async function stored(): Promise<{ tenant_id: string; body: string }[]> {
  return (await tdb.admin.query('select tenant_id, body from notes order by tenant_id, body')).rows;
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  await createNotesTable(tdb, [
    [A, 'a-seed'],
    [B, 'b-seed'],
  ]);
  pool = tdb.appPool({ max: 4 });
  db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
});
afterAll(async () => {
  await db?.destroy(); // ends the pool
  await tdb?.drop();
});

describe('Kysely on a TenantPool', () => {
  it('selects see only the tenant in context, and nothing without one', async () => {
    const a = await runAs(A, () => db.selectFrom('notes').select(['tenant_id', 'body']).execute());
    const b = await runAs(B, () => db.selectFrom('notes').select('body').where('body', 'like', '%seed').execute());
    const none = await runWithoutTenant(() => db.selectFrom('notes').selectAll().execute());
    expect(a).toEqual([{ tenant_id: A, body: 'a-seed' }]);
    expect(b).toEqual([{ body: 'b-seed' }]);
    expect(none).toEqual([]);
  });

  it('inserts take the tenant from context (column default) and return it', async () => {
    const row = await runAs(A, () =>
      db.insertInto('notes').values({ body: 'a-kysely' }).returning(['tenant_id', 'body']).executeTakeFirstOrThrow(),
    );
    expect(row).toEqual({ tenant_id: A, body: 'a-kysely' });
    expect(await stored()).toContainEqual({ tenant_id: A, body: 'a-kysely' });
  });

  it('an insert naming another tenant is refused by PostgreSQL (42501), and nothing is stored', async () => {
    const before = await stored();
    const error = await runAs(A, () => db.insertInto('notes').values({ tenant_id: B, body: 'forged' }).execute()).catch(
      (e: unknown) => e,
    );
    expect((error as { code?: string }).code).toBe('42501');
    expect(await stored()).toEqual(before);
  });

  it('updates and deletes of another tenant’s rows touch nothing', async () => {
    const before = await stored();
    const updated = await runAs(A, () =>
      db.updateTable('notes').set({ body: 'pwned' }).where('tenant_id', '=', B).executeTakeFirst(),
    );
    const deleted = await runAs(A, () => db.deleteFrom('notes').where('body', '=', 'b-seed').executeTakeFirst());
    expect(updated.numUpdatedRows).toBe(0n);
    expect(deleted.numDeletedRows).toBe(0n);
    expect(await stored()).toEqual(before);
  });

  it('a transaction commits as the tenant in context', async () => {
    const seen = await runAs(B, () =>
      db.transaction().execute(async (trx) => {
        await trx.insertInto('notes').values({ body: 'b-tx-1' }).execute();
        await trx.insertInto('notes').values({ body: 'b-tx-2' }).execute();
        return trx.selectFrom('notes').select('body').orderBy('body').execute();
      }),
    );
    expect(seen.map((r) => r.body)).toEqual(['b-seed', 'b-tx-1', 'b-tx-2']);
    const rows = await stored();
    expect(rows).toContainEqual({ tenant_id: B, body: 'b-tx-1' });
    expect(rows).toContainEqual({ tenant_id: B, body: 'b-tx-2' });
  });

  it('a transaction that throws rolls back', async () => {
    const before = await stored();
    const error = await runAs(A, () =>
      db.transaction().execute(async (trx) => {
        await trx.insertInto('notes').values({ body: 'a-doomed' }).execute();
        throw new Error('changed my mind');
      }),
    ).catch((e: unknown) => e);
    expect((error as Error).message).toBe('changed my mind');
    expect(await stored()).toEqual(before);
  });

  it('a transaction that fails in PostgreSQL rolls back and frees its connection', async () => {
    const before = await stored();
    const error = await runAs(A, () =>
      db.transaction().execute(async (trx) => {
        await trx.insertInto('notes').values({ body: 'a-doomed' }).execute();
        await sql`select 1/0`.execute(trx);
      }),
    ).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('22012');
    expect(await stored()).toEqual(before);
    expect(await runAs(A, () => db.selectFrom('notes').select('body').where('body', '=', 'a-seed').execute())).toEqual([
      { body: 'a-seed' },
    ]);
  });

  it('many tenants at once, mixing transactions and plain statements, stay apart', async () => {
    const tenants = Array.from({ length: 20 }, () => randomUUID());
    await Promise.all(
      tenants.map((t, i) =>
        runAs(t, async () => {
          if (i % 2)
            await db
              .insertInto('notes')
              .values({ body: `own-${t}` })
              .execute();
          else
            await db.transaction().execute((trx) =>
              trx
                .insertInto('notes')
                .values({ body: `own-${t}` })
                .execute(),
            );
          for (let round = 0; round < 5; round++) {
            const rows = await db.selectFrom('notes').select(['tenant_id', 'body']).execute();
            expect(rows).toEqual([{ tenant_id: t, body: `own-${t}` }]);
          }
        }),
      ),
    );
    const { rows } = await tdb.admin.query(`select tenant_id, body from notes where tenant_id = any($1)`, [tenants]);
    expect(rows.length).toBe(tenants.length);
    for (const row of rows) expect(row.body).toBe(`own-${row.tenant_id}`);
  });

  it('raw sql through Kysely is isolated too', async () => {
    const r = await runAs(B, () => sql<{ body: string }>`select body from notes where tenant_id <> ${B}`.execute(db));
    expect(r.rows).toEqual([]);
  });

  // Used to fail on PostgreSQL 18 (a parameterless statement left its transaction open and the
  // pool rolled it back): parameterless statements now go out with the extended protocol.
  // Kysely sends no parameters here.
  it('a write without parameters commits', async () => {
    await runAs(A, () =>
      db
        .updateTable('notes')
        .set({ body: sql`body || '!'` })
        .execute(),
    );
    const rows = (await stored()).filter((r) => r.tenant_id === A);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.body.endsWith('!'))).toBe(true);
    expect((await stored()).filter((r) => r.tenant_id !== A).every((r) => !r.body.endsWith('!'))).toBe(true);
  });
});
