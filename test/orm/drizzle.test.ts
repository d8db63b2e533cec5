// Drizzle (drizzle-orm/node-postgres) used unchanged on a TenantPool, and raw node-postgres in
// its callback style: the tenant of the caller's context reaches every statement.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { drizzle } from 'drizzle-orm/node-postgres';
import { pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { eq, ne, sql } from 'drizzle-orm';
import { runAs, runWithoutTenant } from '../../src/context/tenant-context.js';
import type { TenantPool } from '../../src/data/tenant-pool.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { createNotesTable } from '../support/notes-table.js';

const notes = pgTable('notes', {
  id: uuid('id').primaryKey().defaultRandom(),
  tenantId: uuid('tenant_id')
    .notNull()
    .default(sql`tenantry.current_tenant_id()`),
  body: text('body').notNull(),
});

let tdb: TestDatabase;
let pool: TenantPool;
let db: ReturnType<typeof drizzle>;
const A = randomUUID();
const B = randomUUID();

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
  db = drizzle(pool);
});
afterAll(() => tdb?.drop());

describe('Drizzle on a TenantPool', () => {
  it('selects see only the tenant in context, and nothing without one', async () => {
    // Drizzle queries are lazy (they run when awaited); awaiting them inside runAs always works,
    // and runAs also starts one that fn returns unawaited (see below)
    const a = await runAs(A, async () => await db.select({ tenantId: notes.tenantId, body: notes.body }).from(notes));
    const b = await runAs(B, async () => await db.select({ body: notes.body }).from(notes).where(ne(notes.body, '')));
    const none = await runWithoutTenant(async () => await db.select().from(notes));
    expect(a).toEqual([{ tenantId: A, body: 'a-seed' }]);
    expect(b).toEqual([{ body: 'b-seed' }]);
    expect(none).toEqual([]);
  });

  it('inserts take the tenant from context and return it', async () => {
    const rows = await runAs(
      A,
      async () =>
        await db.insert(notes).values({ body: 'a-drizzle' }).returning({ tenantId: notes.tenantId, body: notes.body }),
    );
    expect(rows).toEqual([{ tenantId: A, body: 'a-drizzle' }]);
    expect(await stored()).toContainEqual({ tenant_id: A, body: 'a-drizzle' });
  });

  it('an insert naming another tenant is refused (42501) and nothing is stored', async () => {
    const before = await stored();
    const error = await runAs(A, async () => await db.insert(notes).values({ tenantId: B, body: 'forged' })).catch(
      (e: unknown) => e,
    );
    const code =
      (error as { code?: string; cause?: { code?: string } }).cause?.code ?? (error as { code?: string }).code;
    expect(code).toBe('42501');
    expect(await stored()).toEqual(before);
  });

  it('updates and deletes of another tenant’s rows touch nothing', async () => {
    const before = await stored();
    const updated = await runAs(
      A,
      async () => await db.update(notes).set({ body: 'pwned' }).where(eq(notes.tenantId, B)).returning(),
    );
    const deleted = await runAs(A, async () => await db.delete(notes).where(eq(notes.body, 'b-seed')).returning());
    expect(updated).toEqual([]);
    expect(deleted).toEqual([]);
    expect(await stored()).toEqual(before);
  });

  it('a transaction commits as the tenant in context; tx.rollback() undoes', async () => {
    const seen = await runAs(B, () =>
      db.transaction(async (tx) => {
        await tx.insert(notes).values({ body: 'b-tx' });
        return tx.select({ body: notes.body }).from(notes).orderBy(notes.body);
      }),
    );
    expect(seen.map((r) => r.body)).toEqual(['b-seed', 'b-tx']);
    expect(await stored()).toContainEqual({ tenant_id: B, body: 'b-tx' });

    const before = await stored();
    await runAs(B, () =>
      db.transaction(async (tx) => {
        await tx.insert(notes).values({ body: 'b-undone' });
        tx.rollback();
      }),
    ).catch(() => undefined);
    expect(await stored()).toEqual(before);
  });

  it('many tenants at once stay apart', async () => {
    const tenants = Array.from({ length: 20 }, () => randomUUID());
    await Promise.all(
      tenants.map((t, i) =>
        runAs(t, async () => {
          if (i % 2) await db.insert(notes).values({ body: `own-${t}` });
          else await db.transaction((tx) => tx.insert(notes).values({ body: `own-${t}` }));
          for (let round = 0; round < 5; round++) {
            expect(await db.select({ tenantId: notes.tenantId, body: notes.body }).from(notes)).toEqual([
              { tenantId: t, body: `own-${t}` },
            ]);
          }
        }),
      ),
    );
    const { rows } = await tdb.admin.query(`select tenant_id, body from notes where tenant_id = any($1)`, [tenants]);
    expect(rows.length).toBe(tenants.length);
  });

  // pgbouncer 1.18 in transaction mode does not carry named prepared statements across
  // server sessions (protocol-level prepared statements arrived in pgbouncer 1.21).
  it.skipIf(Boolean(process.env.TENANTRY_TEST_APP_PORT))(
    'a named prepared statement reused across tenants returns each tenant its rows',
    async () => {
      const single = drizzle(tdb.appPool({ max: 1 }));
      const byBody = single
        .select({ tenantId: notes.tenantId, body: notes.body })
        .from(notes)
        .where(ne(notes.body, sql.placeholder('not')))
        .prepare('notes_by_body');
      for (let round = 0; round < 3; round++) {
        expect(await runAs(A, () => byBody.execute({ not: 'x' }))).toContainEqual({ tenantId: A, body: 'a-seed' });
        const b = await runAs(B, () => byBody.execute({ not: 'x' }));
        expect(b.length).toBeGreaterThan(0);
        expect(b.every((r) => r.tenantId === B)).toBe(true);
        expect(await runWithoutTenant(() => byBody.execute({ not: 'x' }))).toEqual([]);
      }
    },
  );

  // Drizzle's query builders are lazy thenables that start only when `.then` is called. runAs
  // starts a non-Promise thenable that fn returns inside the tenant scope and returns a Promise
  // of its value; before that, the caller's `await` started it outside the scope, with no tenant.
  it('runAs(t, () => lazyDrizzleQuery) runs the query as t', async () => {
    const rows = await runAs(A, () =>
      db.select({ tenantId: notes.tenantId, body: notes.body }).from(notes).where(eq(notes.body, 'a-seed')),
    );
    expect(rows).toEqual([{ tenantId: A, body: 'a-seed' }]);
    const returned = runAs(B, () => db.select({ tenantId: notes.tenantId }).from(notes).where(ne(notes.body, '')));
    expect(returned).toBeInstanceOf(Promise); // already started, inside B's scope
    const bRows = await returned;
    expect(bRows.length).toBeGreaterThan(0);
    expect(bRows.every((r) => r.tenantId === B)).toBe(true);
    const inserted = await runAs(B, () =>
      db.insert(notes).values({ body: 'b-lazy' }).returning({ tenantId: notes.tenantId }),
    );
    expect(inserted).toEqual([{ tenantId: B }]);
    expect(await stored()).toContainEqual({ tenant_id: B, body: 'b-lazy' });
    await tdb.admin.query(`delete from notes where body = 'b-lazy'`);
  });

  it('runWithoutTenant(() => lazyDrizzleQuery) inside a tenant’s scope runs with no tenant', async () => {
    const rows = await runAs(A, () => runWithoutTenant(() => db.select().from(notes)));
    expect(rows).toEqual([]);
  });

  it('a lazy query returned from runAs never reaches another tenant’s rows', async () => {
    const read = await runAs(A, () => db.select({ tenantId: notes.tenantId }).from(notes));
    expect(read.length).toBeGreaterThan(0);
    expect(read.every((r) => r.tenantId === A)).toBe(true);
    const before = await stored();
    const write = await runAs(B, () => db.insert(notes).values({ tenantId: A, body: 'lazy-forged' })).catch(
      (e: unknown) => e,
    );
    expect(((write as { cause?: { code?: string } }).cause ?? (write as { code?: string })).code).toBe('42501');
    const update = await runAs(B, () =>
      db.update(notes).set({ body: 'pwned' }).where(eq(notes.tenantId, A)).returning(),
    );
    expect(update).toEqual([]);
    expect(await stored()).toEqual(before);
  });

  // Used to fail on PostgreSQL 18 (a parameterless statement left its transaction open and the
  // pool rolled it back): parameterless statements now go out with the extended protocol.
  it('a write without parameters commits', async () => {
    await runAs(A, async () => await db.update(notes).set({ body: sql`${notes.body} || '!'` }));
    const rows = (await stored()).filter((r) => r.tenant_id === A);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.body.endsWith('!'))).toBe(true);
    expect((await stored()).filter((r) => r.tenant_id !== A).every((r) => !r.body.endsWith('!'))).toBe(true);
  });
});

describe('raw node-postgres, callback style', () => {
  it('pool.query(text, cb) and pool.query(text, values, cb) run as the tenant of the caller', async () => {
    const query = (text: string, values?: unknown[]) =>
      new Promise<pg.QueryResult>((resolve, reject) => {
        const cb = (err: Error | undefined, res: pg.QueryResult) => (err ? reject(err) : resolve(res));
        if (values) pool.query(text, values, cb);
        else pool.query(text, cb);
      });
    const a = await runAs(A, () => query('select tenant_id from notes'));
    const b = await runAs(B, () => query('select tenant_id from notes where body <> $1', ['']));
    expect(a.rows.length).toBeGreaterThan(0);
    expect(a.rows.every((r) => r.tenant_id === A)).toBe(true);
    expect(b.rows.length).toBeGreaterThan(0);
    expect(b.rows.every((r) => r.tenant_id === B)).toBe(true);
    expect((await query('select tenant_id from notes')).rows).toEqual([]);
  });

  it('callbacks of many tenants interleaved each get their own rows', async () => {
    const tenants = [A, B, A, B, A, B, A, B];
    const results = await Promise.all(
      tenants.map(
        (t, i) =>
          new Promise<{ t: string; rows: { tenant_id: string }[] }>((resolve, reject) =>
            runAs(t, () =>
              i % 2
                ? pool.query('select tenant_id from notes', (err: Error | undefined, res: pg.QueryResult) =>
                    err ? reject(err) : resolve({ t, rows: res.rows }),
                  )
                : pool.query(
                    'select tenant_id from notes where body <> $1',
                    [''],
                    (err: Error | undefined, res: pg.QueryResult) =>
                      err ? reject(err) : resolve({ t, rows: res.rows }),
                  ),
            ),
          ),
      ),
    );
    for (const { t, rows } of results) {
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((r) => r.tenant_id === t)).toBe(true);
    }
  });

  it('pool.connect(cb) hands a client whose statements (with callbacks) run as the tenant of each call', async () => {
    const rows = await runAs(A, () => {
      return new Promise<{ tenant_id: string }[]>((resolve, reject) => {
        pool.connect((err, client, done) => {
          if (err || !client) return reject(err);
          client.query(
            'select tenant_id from notes where body <> $1',
            [''],
            (qerr: Error | undefined, res: pg.QueryResult) => {
              done();
              return qerr ? reject(qerr) : resolve(res.rows);
            },
          );
        });
      });
    });
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.tenant_id === A)).toBe(true);
  });
});
