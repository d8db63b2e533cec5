// pg-cursor and pg-query-stream on a suspended or deleted tenant's context: the database refuses
// it (TR005/TR006, core migration 005) and the reader gets the codes pool.query gives
// (TENANT_SUSPENDED, TENANT_DELETED), not the raw SQLSTATE. The bystander's cursor still reads its
// own rows, and nothing of the refused tenant changed.
import Cursor from 'pg-cursor';
import QueryStream from 'pg-query-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantCatalog } from '../../src/catalog/tenant-catalog.js';
import { runAs } from '../../src/context/tenant-context.js';
import type { TenantPool } from '../../src/data/tenant-pool.js';
import { TenantDeletedError, TenantSuspendedError } from '../../src/errors/tenantry-error.js';
import { createNotesTable } from '../support/notes-table.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let pool: TenantPool;
let catalog: TenantCatalog;

beforeAll(async () => {
  db = await createTestDatabase();
  pool = db.appPool({ max: 2 });
  catalog = new TenantCatalog(db.owner);
});
afterAll(async () => {
  await db?.drop();
});

async function cursorRead(tenantId: string): Promise<unknown[]> {
  return runAs(tenantId, async () => {
    const client = await pool.connect();
    try {
      const cursor = client.query(new Cursor('select body from notes order by body'));
      try {
        return await cursor.read(100);
      } finally {
        await cursor.close().catch(() => undefined);
      }
    } finally {
      client.release();
    }
  });
}

async function streamRead(tenantId: string): Promise<unknown[]> {
  return runAs(tenantId, async () => {
    const client = await pool.connect();
    try {
      const rows: unknown[] = [];
      for await (const row of client.query(new QueryStream('select body from notes order by body'))) rows.push(row);
      return rows;
    } finally {
      client.release();
    }
  });
}

const rowsOf = async (id: string) =>
  (await db.admin.query('select body from notes where tenant_id = $1 order by body', [id])).rows;

describe('cursors and streams of an inactive tenant', () => {
  it.each([
    ['suspended', TenantSuspendedError, 'TENANT_SUSPENDED'],
    ['deleted', TenantDeletedError, 'TENANT_DELETED'],
  ] as const)('%s: refused with the library error, the bystander unaffected', async (state, type, code) => {
    const gone = await catalog.create({ slug: `gone-${state}`, name: 'Gone' });
    const here = await catalog.create({ slug: `here-${state}`, name: 'Here' });
    if (state === 'suspended')
      await createNotesTable(db, [
        [gone.id, 'g1'],
        [gone.id, 'g2'],
        [here.id, 'h1'],
      ]);
    else
      await db.owner.query(`insert into notes (tenant_id, body) values ($1, 'g1'), ($1, 'g2'), ($2, 'h1')`, [
        gone.id,
        here.id,
      ]);
    expect(await cursorRead(gone.id)).toHaveLength(2);
    if (state === 'suspended') await catalog.suspend(gone.id);
    else await catalog.softDelete(gone.id);
    const before = await rowsOf(gone.id);

    const viaCursor = await cursorRead(gone.id).catch((e: unknown) => e);
    expect(viaCursor).toBeInstanceOf(type);
    expect(viaCursor).toMatchObject({ code });
    const viaStream = await streamRead(gone.id).catch((e: unknown) => e);
    expect(viaStream).toBeInstanceOf(type);
    expect(viaStream).toMatchObject({ code });

    // the other tenant reads its own rows, only those, and the refused tenant's rows are as they were
    expect(await cursorRead(here.id)).toEqual([{ body: 'h1' }]);
    expect(await streamRead(here.id)).toEqual([{ body: 'h1' }]);
    expect(await rowsOf(gone.id)).toEqual(before);
  });
});
