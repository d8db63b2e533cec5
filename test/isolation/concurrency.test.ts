// Many tenants, a small pool, thousands of interleaved operations: autocommit statements (with
// and without parameters), transactions that commit, fail or roll back, savepoints,
// multi-statement strings (run inside transactions, refused outside them), statements with no
// tenant. Every row
// must belong to the tenant in context, nothing may be left on a pooled connection, and the
// pool's transaction rules (destroy on release inside a transaction, refuse a tenant switch
// inside one) must hold without hanging a connection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { runAs, runWithoutTenant } from '../../src/context/tenant-context.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { createNotesTable } from '../support/notes-table.js';
import { codeOf } from '../support/refusal-code.js';

let db: TestDatabase;
const TENANT_COUNT = 60;
const tenants: string[] = Array.from({ length: TENANT_COUNT }, () => randomUUID());
const SEED_ROWS = 3;

/** Rejects when `promise` takes longer than `ms`: a hang is a failure, not a timeout of the whole file. */
function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, hung]).finally(() => clearTimeout(timer));
}

/** Small deterministic PRNG so a failing interleaving can be replayed from its seed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

beforeAll(async () => {
  db = await createTestDatabase();
  await createNotesTable(db);
  await db.owner.query(
    `insert into notes (tenant_id, body) select t, 'seed-' || i from unnest($1::uuid[]) t, generate_series(1, ${SEED_ROWS}) i`,
    [tenants],
  );
});
afterAll(() => db?.drop());

describe('thousands of interleaved operations on a small pool', () => {
  it('every row read belongs to the tenant in context; commits and rollbacks land as expected; nothing stale is left', async () => {
    const pool = db.appPool({ max: 6 });
    const committed = new Map(tenants.map((t) => [t, SEED_ROWS]));
    const seed = Date.now() % 100_000;
    const random = prng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const counts: Record<string, number> = {};

    const expectOwn = (rows: { tenant_id?: unknown }[], tenant: string, what: string) => {
      for (const row of rows) expect(row.tenant_id, `${what}: row of another tenant (seed ${seed})`).toBe(tenant);
    };

    const ops: Record<string, (t: string) => Promise<void>> = {
      async readExtended(t) {
        const r = await pool.query('select tenant_id, body from notes where body <> $1', ['']);
        expect(r.rows.length).toBeGreaterThanOrEqual(SEED_ROWS);
        expectOwn(r.rows, t, 'extended read');
      },
      async readParameterless(t) {
        const r = await pool.query('select tenant_id from notes');
        expect(r.rows.length).toBeGreaterThanOrEqual(SEED_ROWS);
        expectOwn(r.rows, t, 'parameterless read');
      },
      async writeParameterless(t) {
        // no parameters: sent with the extended protocol behind the prefix, commits on its own
        const r = await pool.query(`update notes set body = body where body like 'seed-%' returning tenant_id`);
        expect(r.rows.length).toBe(SEED_ROWS);
        expectOwn(r.rows, t, 'parameterless write');
      },
      async multiStatementInTransaction(t) {
        const client = await pool.connect();
        try {
          await client.query('begin');
          await client.query('insert into notes (tenant_id, body) values ($1, $2)', [t, 'multi']);
          // a simple Query: no prefix of its own, the transaction carries the tenant
          const results = (await client.query(
            `select tenant_id from notes; select tenantry.current_tenant_id()::text as t; insert into notes (tenant_id, body) select tenantry.current_tenant_id(), 'multi' returning tenant_id`,
          )) as unknown as pg.QueryResult[];
          expect(results).toHaveLength(3);
          expectOwn(results[0]!.rows, t, 'multi-statement read in transaction');
          expect(results[1]!.rows).toEqual([{ t }]);
          expectOwn(results[2]!.rows, t, 'multi-statement insert in transaction');
          await client.query('commit');
          committed.set(t, committed.get(t)! + 2);
        } finally {
          client.release();
        }
      },
      async multiStatementRefusedOutsideTransaction(t) {
        expect(
          await codeOf(
            pool.query(
              `select tenant_id from notes; insert into notes (tenant_id, body) values ('${t}', 'never-sent')`,
            ),
          ),
        ).toBe('UNSUPPORTED');
        const client = await pool.connect();
        try {
          expect(await codeOf(client.query(`select 1; select tenant_id from notes`))).toBe('UNSUPPORTED');
          // nothing was sent: the client is idle and serves the next statement at once
          expect((client as unknown as { transactionStatus: string }).transactionStatus).toBe('I');
          expectOwn(
            (await within(5_000, client.query('select tenant_id from notes'), 'statement after a refusal')).rows,
            t,
            'after refusal',
          );
        } finally {
          client.release();
        }
      },
      async insertAutocommit(t) {
        const r = await pool.query('insert into notes (tenant_id, body) values ($1, $2) returning tenant_id', [
          t,
          'auto',
        ]);
        expectOwn(r.rows, t, 'insert returning');
        committed.set(t, committed.get(t)! + 1);
      },
      async transactionCommit(t) {
        const client = await pool.connect();
        try {
          await client.query('begin');
          await client.query('insert into notes (tenant_id, body) values ($1, $2)', [t, 'tx']);
          const inTx = await client.query('select tenant_id from notes');
          expectOwn(inTx.rows, t, 'read in transaction');
          const who = await client.query('select tenantry.current_tenant_id()::text as t');
          expect(who.rows[0].t).toBe(t);
          await client.query('commit');
          committed.set(t, committed.get(t)! + 1);
        } finally {
          client.release();
        }
      },
      async transactionErrorThenRollback(t) {
        const client = await pool.connect();
        try {
          await client.query('begin');
          await client.query('insert into notes (tenant_id, body) values ($1, $2)', [t, 'doomed']);
          expect(await codeOf(client.query('select 1/0'))).toBe('22012');
          expect(await codeOf(client.query('select tenant_id from notes'))).toBe('25P02');
          await within(5_000, client.query('rollback'), 'ROLLBACK after an error');
          const after = await client.query('select tenant_id from notes where body <> $1', ['']);
          expectOwn(after.rows, t, 'read after rollback');
        } finally {
          client.release();
        }
      },
      async transactionRollback(t) {
        const client = await pool.connect();
        try {
          await client.query('begin');
          await client.query('insert into notes (tenant_id, body) values ($1, $2)', [t, 'undone']);
          const r = await client.query('select tenant_id from notes where body = $1', ['undone']);
          expect(r.rows.length).toBeGreaterThan(0);
          expectOwn(r.rows, t, 'read before rollback');
          await client.query('rollback');
        } finally {
          client.release();
        }
      },
      async savepoint(t) {
        const client = await pool.connect();
        try {
          await client.query('begin');
          await client.query('insert into notes (tenant_id, body) values ($1, $2)', [t, 'sp-1']);
          await client.query('savepoint s');
          expect(
            await codeOf(
              client.query('insert into notes (tenant_id, body) values ($1::uuid, $2)', ['not-a-uuid', 'x']),
            ),
          ).toBe('22P02');
          await within(5_000, client.query('rollback to savepoint s'), 'ROLLBACK TO SAVEPOINT');
          await client.query('insert into notes (tenant_id, body) values ($1, $2)', [t, 'sp-2']);
          expectOwn((await client.query('select tenant_id from notes')).rows, t, 'read after savepoint');
          await client.query('commit');
          committed.set(t, committed.get(t)! + 2);
        } finally {
          client.release();
        }
      },
      async noTenant(t) {
        await runWithoutTenant(async () => {
          expect((await pool.query('select tenant_id from notes where body <> $1', [''])).rows).toEqual([]);
          expect((await pool.query('select tenant_id from notes')).rows).toEqual([]);
          // with no tenant, a multi-statement string outside a transaction is refused as well
          expect(await codeOf(pool.query('select tenant_id from notes; select count(*)::int as n from notes'))).toBe(
            'UNSUPPORTED',
          );
          expect(await codeOf(pool.query('insert into notes (tenant_id, body) values ($1, $2)', [t, 'orphan']))).toBe(
            '42501',
          );
        });
      },
      async foreignInsert(t) {
        const other = pick(tenants.filter((x) => x !== t));
        expect(await codeOf(pool.query('insert into notes (tenant_id, body) values ($1, $2)', [other, 'forged']))).toBe(
          '42501',
        );
      },
      async nestedTenants(t) {
        const other = pick(tenants);
        const [mine, theirs] = await Promise.all([
          pool.query('select tenant_id from notes where body <> $1', ['']),
          runAs(other, () => pool.query('select tenant_id from notes where body <> $1', [''])),
        ]);
        expectOwn(mine.rows, t, 'outer tenant');
        expectOwn(theirs.rows, other, 'nested tenant');
      },
      async heldClientAcrossTenants(t) {
        // one checked-out client serving several tenants in turn (a job runner does this)
        const client = await pool.connect();
        try {
          for (const x of [t, pick(tenants), pick(tenants)]) {
            const r = await runAs(x, () => client.query('select tenant_id from notes where body <> $1', ['']));
            expectOwn(r.rows, x, 'held client');
          }
        } finally {
          client.release();
        }
      },
    };
    const names = Object.keys(ops);

    const WORKERS = 40;
    const OPS_PER_WORKER = 75;
    const workers = Array.from({ length: WORKERS }, async () => {
      for (let i = 0; i < OPS_PER_WORKER; i++) {
        const t = pick(tenants);
        const name = pick(names);
        counts[name] = (counts[name] ?? 0) + 1;
        await runAs(t, () => within(20_000, ops[name]!(t), name));
      }
    });
    const settled = await Promise.allSettled(workers);
    const failures = settled
      .filter((s): s is PromiseRejectedResult => s.status === 'rejected')
      .map((s) => String(s.reason));
    expect(failures, `seed ${seed}`).toEqual([]);
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(WORKERS * OPS_PER_WORKER);

    // what really is stored, per tenant, equals what was committed
    const { rows } = await db.admin.query('select tenant_id, count(*)::int as n from notes group by tenant_id');
    expect(Object.fromEntries(rows.map((r) => [r.tenant_id, r.n]))).toEqual(Object.fromEntries(committed));

    // no stale context or transaction on any pooled connection
    const clients = await Promise.all(Array.from({ length: 6 }, () => pool.connect()));
    try {
      for (const client of clients) {
        const seen = await client.query(
          `select current_setting('tenantry.context', true) as v, (select count(*)::int from notes) as n, $1::int as one`,
          [1],
        );
        expect(seen.rows[0]).toEqual({ v: '', n: 0, one: 1 });
        // the session as it is, without the pool's prefix: no session-level value, no rows, idle
        const bare = await (pg.Client.prototype.query as (this: unknown, q: string) => Promise<pg.QueryResult>).call(
          client,
          `select coalesce(current_setting('tenantry.context', true), '') as v, (select count(*)::int from notes) as n, now() = statement_timestamp() as fresh`,
        );
        expect(bare.rows[0]).toEqual({ v: '', n: 0, fresh: true });
      }
    } finally {
      for (const client of clients) client.release();
    }
  });
});

describe('transaction rules of the pool', () => {
  it('a client released inside an open transaction is destroyed: the next borrower does not inherit it', async () => {
    const pool = db.appPool({ max: 1 });
    const [t] = tenants as [string];
    const removed = new Promise<unknown>((resolve) => pool.once('remove', resolve));
    const first = await pool.connect();
    await runAs(t, async () => {
      await first.query('begin');
      await first.query(`update notes set body = body where body = $1`, ['seed-1']); // holds a row lock
      await first.query('insert into notes (tenant_id, body) values ($1, $2)', [t, 'never-committed']);
    });
    first.release();
    expect(await within(5_000, removed, 'removal of the released client')).toBe(first);

    const second = await within(10_000, pool.connect(), 'borrowing after a destroyed client');
    try {
      expect(second).not.toBe(first);
      await runAs(t, async () => {
        // the same session would see its own uncommitted row
        const r = await second.query('select count(*)::int as n from notes where body = $1', ['never-committed']);
        expect(r.rows[0].n).toBe(0);
        await second.query('begin');
        await second.query(`set local lock_timeout = '10s'`);
        await within(
          15_000,
          second.query(`update notes set body = body where body = $1`, ['seed-1']),
          'taking the lock the old transaction held',
        );
        await second.query('commit');
      });
    } finally {
      second.release();
    }
    expect(
      (await db.admin.query(`select count(*)::int as n from notes where body = 'never-committed'`)).rows[0].n,
    ).toBe(0);
  });

  it('a client released inside a failed transaction is destroyed too', async () => {
    const pool = db.appPool({ max: 1 });
    const first = await pool.connect();
    await runAs(tenants[1]!, async () => {
      await first.query('begin');
      await codeOf(first.query('select 1/0'));
    });
    first.release();
    const second = await pool.connect();
    try {
      expect(second).not.toBe(first);
      const r = await runAs(tenants[1]!, () => second.query('select tenant_id from notes where body <> $1', ['']));
      const stored = await db.admin.query('select count(*)::int as n from notes where tenant_id = $1', [tenants[1]]);
      expect(r.rows.length).toBe(stored.rows[0].n);
      expect(r.rows.every((row) => row.tenant_id === tenants[1])).toBe(true);
    } finally {
      second.release();
    }
  });

  it('a statement under tenant B in a transaction begun under tenant A is refused with TENANT_CONTEXT_MISMATCH', async () => {
    const pool = db.appPool({ max: 2 });
    const [A, B] = tenants as [string, string];
    const client = await pool.connect();
    try {
      await runAs(A, async () => {
        await client.query('begin');
        await client.query('insert into notes (tenant_id, body) values ($1, $2)', [A, 'tx-of-a']);
      });
      expect(await codeOf(runAs(B, () => client.query('select tenant_id from notes where body <> $1', [''])))).toBe(
        'TENANT_CONTEXT_MISMATCH',
      );
      expect(await codeOf(runAs(B, () => client.query('select tenant_id from notes')))).toBe('TENANT_CONTEXT_MISMATCH');
      expect(
        await codeOf(
          runAs(B, () => client.query('insert into notes (tenant_id, body) values ($1, $2)', [B, 'b-in-a'])),
        ),
      ).toBe('TENANT_CONTEXT_MISMATCH');
      expect(
        await codeOf(runWithoutTenant(() => client.query('select tenant_id from notes where body <> $1', ['']))),
      ).toBe('TENANT_CONTEXT_MISMATCH');
      // the refusals wrote nothing: A's transaction goes on and commits
      await runAs(A, async () => {
        const r = await within(
          5_000,
          client.query('select tenant_id from notes where body = $1', ['tx-of-a']),
          'A after refusals',
        );
        expect(r.rows).toEqual([{ tenant_id: A }]);
        await client.query('commit');
      });
      // a transaction begun with no tenant refuses a tenant too
      await runWithoutTenant(() => client.query('begin'));
      expect(await codeOf(runAs(A, () => client.query('select tenant_id from notes where body <> $1', [''])))).toBe(
        'TENANT_CONTEXT_MISMATCH',
      );
      // ROLLBACK needs no tenant: it is allowed from any context
      await within(
        5_000,
        runAs(B, () => client.query('rollback')),
        'ROLLBACK under another tenant',
      );
      expect((client as unknown as { transactionStatus: string }).transactionStatus).toBe('I');
    } finally {
      client.release();
    }
    const stored = await db.admin.query(`select tenant_id, body from notes where body in ('tx-of-a', 'b-in-a')`);
    expect(stored.rows).toEqual([{ tenant_id: A, body: 'tx-of-a' }]);
  });

  it('ROLLBACK after an error works and does not hang, from the same tenant or another', async () => {
    const pool = db.appPool({ max: 1 });
    const [A, B] = tenants.slice(2) as [string, string];
    const client = await pool.connect();
    try {
      for (const rollbackAs of [A, B]) {
        await runAs(A, async () => {
          await client.query('begin');
          await client.query('insert into notes (tenant_id, body) values ($1, $2)', [A, 'rolled-back']);
          expect(await codeOf(client.query('select * from no_such_table'))).toBe('42P01');
        });
        await within(
          5_000,
          runAs(rollbackAs, () => client.query('rollback')),
          'ROLLBACK after an error',
        );
        const r = await within(
          5_000,
          runAs(B, () => client.query('select tenant_id from notes where body <> $1', [''])),
          'next statement',
        );
        expect(r.rows.every((row) => row.tenant_id === B)).toBe(true);
      }
    } finally {
      client.release();
    }
    expect((await db.admin.query(`select count(*)::int as n from notes where body = 'rolled-back'`)).rows[0].n).toBe(0);
  });

  it('a statement that cannot run in a transaction block is refused (25001) with or without a tenant; the connection stays usable', async () => {
    // every statement shares one implicit transaction with its prefix: VACUUM, CREATE INDEX
    // CONCURRENTLY and the like belong on the owner's plain pool (docs/security.md)
    const pool = db.appPool({ max: 1 });
    const [A] = tenants as [string];
    const indexes = `select count(*)::int as n from pg_indexes where tablename = 'notes'`;
    const before = (await db.admin.query(indexes)).rows[0].n;
    const client = await pool.connect();
    try {
      for (const text of [
        'vacuum notes',
        'create index concurrently on notes (body)',
        'reindex table concurrently notes',
      ]) {
        expect(await within(5_000, codeOf(runAs(A, () => client.query(text))), text)).toBe('25001');
        expect(await within(5_000, codeOf(runWithoutTenant(() => client.query(text))), text)).toBe('25001');
      }
      const r = await within(
        5_000,
        runAs(A, () => client.query('select tenant_id from notes where body <> $1', [''])),
        'after 25001',
      );
      expect(r.rows.length).toBeGreaterThan(0);
      expect(r.rows.every((row) => row.tenant_id === A)).toBe(true);
    } finally {
      client.release();
    }
    expect((await db.admin.query(indexes)).rows[0].n, 'no index was created').toBe(before);
  });

  // Used to fail on PostgreSQL 18 when a parameterless statement went out as a simple Query after
  // the prefix: the server left that implicit transaction open. It now goes out with the extended
  // protocol, behind the prefix and before its own Sync, on every version.
  it('a parameterless autocommit statement commits and leaves the connection idle', async () => {
    const pool = db.appPool({ max: 1 });
    const [A, B] = tenants.slice(4) as [string, string];
    let removed = 0;
    pool.on('remove', () => removed++);
    await runAs(A, () => pool.query(`insert into notes (tenant_id, body) values ('${A}', 'simple-autocommit')`));
    expect(
      (await db.admin.query(`select count(*)::int as n from notes where body = 'simple-autocommit'`)).rows[0].n,
    ).toBe(1);
    for (let i = 0; i < 3; i++) await runAs(A, () => pool.query('select 1'));
    await runWithoutTenant(() => pool.query(`update notes set body = body where body = 'simple-autocommit'`));
    expect(removed, 'autocommit statements must not cost a new connection').toBe(0);
    const client = await pool.connect();
    try {
      await runAs(A, () => client.query('select count(*) from notes'));
      expect((client as unknown as { transactionStatus: string }).transactionStatus).toBe('I');
      const b = await runAs(B, () => client.query('select tenant_id from notes'));
      expect(b.rows.every((row) => row.tenant_id === B)).toBe(true);
      expect((client as unknown as { transactionStatus: string }).transactionStatus).toBe('I');
      // the server agrees: the session is idle, not idle in transaction
      const pid = (client as unknown as { processID: number }).processID;
      if (!process.env.TENANTRY_TEST_APP_PORT) {
        const { rows } = await db.admin.query('select state from pg_stat_activity where pid = $1', [pid]);
        expect(rows).toEqual([{ state: 'idle' }]);
      }
    } finally {
      client.release();
    }
    expect(removed).toBe(0);
    await db.admin.query(`delete from notes where body = 'simple-autocommit'`);
  });
});

describe('an error in the context prefix itself', () => {
  let broken: TestDatabase;
  beforeAll(async () => {
    broken = await createTestDatabase();
    await broken.owner.query(`
      create table notes (tenant_id uuid not null, body text not null);
      select tenantry.register_tenant_table('notes');
    `);
    await broken.owner.query(`insert into notes values ($1, 'mine')`, [tenants[0]]);
  });
  afterAll(() => broken?.drop());

  it('fails the statement promptly and leaves the connection in sync', async () => {
    const pool = broken.appPool({ max: 1 });
    const [A] = tenants as [string];
    const client = await pool.connect();
    try {
      // make the prefix's own set_config fail: the app role may no longer execute it
      await broken.admin.query('revoke execute on function pg_catalog.set_config(text, text, boolean) from public');
      try {
        await runAs(A, async () => {
          expect(await within(5_000, codeOf(client.query('select body from notes')), 'parameterless statement')).toBe(
            '42501',
          );
          expect(
            await within(
              5_000,
              codeOf(client.query('select body from notes where body <> $1', [''])),
              'parameterised statement',
            ),
          ).toBe('42501');
          expect(await within(5_000, codeOf(client.query('begin')), 'BEGIN')).toBe('42501');
          expect((client as unknown as { transactionStatus: string }).transactionStatus).toBe('I'); // BEGIN never ran
          // a multi-statement string under a tenant outside a transaction gets no prefix: refused before it is sent
          expect(await within(5_000, codeOf(client.query('select 1; select 2')), 'multi-statement')).toBe(
            'UNSUPPORTED',
          );
        });
        // with no tenant too: outside a transaction nothing could override a planted session value
        expect(
          await within(
            5_000,
            codeOf(runWithoutTenant(() => client.query('select 1 as one; select body from notes'))),
            'multi-statement, no tenant',
          ),
        ).toBe('UNSUPPORTED');
        const other = broken.appPool({ max: 1 });
        expect(await within(5_000, codeOf(other.query('select body from notes')), 'pool.query with no tenant')).toBe(
          '42501',
        );
        expect(
          await within(
            5_000,
            codeOf(other.query('select body from notes where body <> $1', [''])),
            'pool.query, parameterised',
          ),
        ).toBe('42501');
      } finally {
        await broken.admin.query('grant execute on function pg_catalog.set_config(text, text, boolean) to public');
      }
      // the same connection works again at once: nothing was left unread or unsynced on it
      const r = await within(
        5_000,
        runAs(A, () => client.query('select body from notes where body <> $1', [''])),
        'after repair',
      );
      expect(r.rows).toEqual([{ body: 'mine' }]);
      const r2 = await within(
        5_000,
        runAs(A, () => client.query('select body from notes')),
        'parameterless after repair',
      );
      expect(r2.rows).toEqual([{ body: 'mine' }]);
    } finally {
      client.release();
    }
  });
});
