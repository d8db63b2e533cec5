// Every wait of a TenantPool ends, with an error that has a code: a checkout (POOL_TIMEOUT), a
// statement (STATEMENT_TIMEOUT), a lock (LOCK_TIMEOUT). Work whose signal aborts (a client that went
// away, a deadline) sends nothing it had not sent and cancels what runs; a client released with
// replies still due is drained or destroyed; a backend that dies while connecting rejects the connect.
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs, runWithSignal } from '../src/context/tenant-context.js';
import { TenantPool } from '../src/data/tenant-pool.js';
import { DeadlineExceededError } from '../src/errors/wait-errors.js';
import { createNotesTable } from './support/notes-table.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';

let db: TestDatabase;
const A = randomUUID();
const B = randomUUID();

beforeAll(async () => {
  db = await createTestDatabase();
  await createNotesTable(db, [
    [A, 'a1'],
    [B, 'b1'],
  ]);
});
afterAll(() => db?.drop());

/** The error a promise rejects with (fails the test if it resolves), and how long it took. */
async function failure(promise: Promise<unknown>): Promise<{ error: { code?: string; status?: number }; ms: number }> {
  const started = Date.now();
  try {
    await promise;
  } catch (error) {
    return { error: error as { code?: string; status?: number }, ms: Date.now() - started };
  }
  throw new Error('expected a failure');
}

/** Bodies of every note of a tenant, read as the superuser (the ground truth). */
async function bodiesOf(tenant: string): Promise<string[]> {
  const { rows } = await db.admin.query<{ body: string }>('select body from notes where tenant_id = $1 order by body', [
    tenant,
  ]);
  return rows.map((r) => r.body);
}

/** Backends of the app role running `fragment` now. */
async function running(fragment: string): Promise<number> {
  const { rows } = await db.admin.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
      where usename = $1 and state = 'active' and query like '%' || $2 || '%' and pid <> pg_backend_pid()`,
    [db.appRole, fragment],
  );
  return rows[0]!.n;
}

async function until(what: string, check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('checkout timeout', () => {
  it('query and connect fail with POOL_TIMEOUT (503) when no connection frees up in time', async () => {
    const pool = db.appPool({ max: 1, connectionTimeoutMillis: 300 });
    const held = await pool.connect();
    try {
      const viaQuery = await failure(runAs(A, () => pool.query('select 1')));
      expect(viaQuery.error).toMatchObject({ code: 'POOL_TIMEOUT', status: 503 });
      expect(viaQuery.ms).toBeGreaterThanOrEqual(250);
      expect(viaQuery.ms).toBeLessThan(3000);
      expect((await failure(pool.connect())).error).toMatchObject({ code: 'POOL_TIMEOUT', status: 503 });
    } finally {
      held.release();
    }
    expect((await runAs(A, () => pool.query('select body from notes'))).rows).toEqual([{ body: 'a1' }]);
  });

  it('is bounded by default', () => {
    const pool = db.appPool();
    expect((pool.options as { connectionTimeoutMillis?: number }).connectionTimeoutMillis).toBe(5000);
  });
});

describe('statement timeout', () => {
  it('cancels a statement past statementTimeoutMs (STATEMENT_TIMEOUT, 504), inside a transaction too', async () => {
    const pool = db.appPool({ max: 1, statementTimeoutMs: 300 });
    const slow = await failure(runAs(A, () => pool.query('select pg_sleep(5)')));
    expect(slow.error).toMatchObject({ code: 'STATEMENT_TIMEOUT', status: 504 });
    expect(slow.ms).toBeLessThan(3000);
    // nothing of the insert is left: the timeout cancelled the statement and its implicit transaction
    const write = await failure(
      runAs(A, () => pool.query(`insert into notes (body) select 'slow write' from pg_sleep(5)`)),
    );
    expect(write.error).toMatchObject({ code: 'STATEMENT_TIMEOUT' });
    expect(await bodiesOf(A)).toEqual(['a1']);
    const client = await pool.connect();
    try {
      await runAs(A, async () => {
        await client.query('begin');
        expect((await failure(client.query('select pg_sleep(5)'))).error).toMatchObject({ code: 'STATEMENT_TIMEOUT' });
        await client.query('rollback');
      });
      // the timeout travels with each statement, transaction-locally: fast statements are not affected
      const r = await runAs(A, () => client.query(`select current_setting('statement_timeout') as t`));
      expect(r.rows).toEqual([{ t: '300ms' }]);
    } finally {
      client.release();
    }
  });

  it('leaves no session-level timeout behind (pooler-safe: nothing outlives the transaction)', async () => {
    const pool = db.appPool({ max: 1, statementTimeoutMs: 300 });
    const client = await pool.connect();
    try {
      await runAs(A, () => client.query('select 1'));
      // read on the same session without the pool's prefix (pg's own query): the session's value
      const raw = (await (pg.Client.prototype.query as (text: string) => Promise<pg.QueryResult<{ t: string }>>).call(
        client,
        `select current_setting('statement_timeout') as t`,
      )) as pg.QueryResult<{ t: string }>;
      expect(raw.rows[0]!.t).not.toBe('300ms');
    } finally {
      client.release();
    }
  });
});

describe('lock timeout', () => {
  it('a lock not granted answers LOCK_TIMEOUT (503) and changes nothing', async () => {
    const pool = db.appPool({ max: 1 });
    const locker = await db.admin.connect();
    try {
      await locker.query('begin');
      await locker.query(`select * from notes where tenant_id = $1 for update`, [A]);
      // NOWAIT answers 55P03 at once, as lock_timeout does when it runs out
      const nowait = await failure(runAs(A, () => pool.query('select body from notes for update nowait')));
      expect(nowait.error).toMatchObject({ code: 'LOCK_TIMEOUT', status: 503 });
    } finally {
      await locker.query('rollback');
      locker.release();
    }
    expect(await bodiesOf(A)).toEqual(['a1']);
  });
});

describe('aborted work', () => {
  it('runAs starts a unit of work: it does not inherit the signal around it; runWithSignal keeps the tenant', async () => {
    const { currentSignal, tryCurrentTenant } = await import('../src/context/tenant-context.js');
    const outer = new AbortController();
    runWithSignal(outer.signal, () => {
      expect(currentSignal()).toBe(outer.signal);
      runAs(A, () => expect(currentSignal()).toBeUndefined());
      runAs(A, () =>
        runWithSignal(outer.signal, () => expect([tryCurrentTenant(), currentSignal()]).toEqual([A, outer.signal])),
      );
    });
  });

  it('a statement whose signal aborted before it was sent is never sent (REQUEST_ABORTED)', async () => {
    const pool = db.appPool({ max: 1 });
    const controller = new AbortController();
    controller.abort();
    const refused = await failure(
      runAs(A, () => pool.query(`insert into notes (body) values ('written after abort')`), {
        signal: controller.signal,
      }),
    );
    expect(refused.error).toMatchObject({ code: 'REQUEST_ABORTED' });

    // waiting for a connection when the client goes away: refused when its turn comes
    const held = await pool.connect();
    const controller2 = new AbortController();
    const waiting = runAs(A, () =>
      runWithSignal(controller2.signal, () => pool.query(`insert into notes (body) values ('queued then aborted')`)),
    );
    await new Promise((r) => setTimeout(r, 100));
    controller2.abort();
    held.release();
    expect((await failure(waiting)).error).toMatchObject({ code: 'REQUEST_ABORTED' });
    expect(await bodiesOf(A)).toEqual(['a1']);
  });

  it('a running statement is cancelled by a PostgreSQL cancel request; its connection is not reused', async () => {
    const pool = db.appPool({ max: 1 });
    const used: unknown[] = [];
    const removed: unknown[] = [];
    pool.on('acquire', (client) => used.push(client));
    pool.on('remove', (client) => removed.push(client));
    const controller = new AbortController();
    const write = runAs(A, () => pool.query(`insert into notes (body) select 'cancelled write' from pg_sleep(10)`), {
      signal: controller.signal,
    });
    await until('the statement to run', async () => (await running('cancelled write')) === 1);
    controller.abort();
    const cancelled = await failure(write);
    expect(cancelled.error).toMatchObject({ code: 'REQUEST_ABORTED' });
    expect(cancelled.ms).toBeLessThan(3000);
    // the cancel request is asynchronous: the backend stops the statement as it reads it (at once on
    // a quiet machine, later under load), well before the statement's own 10 s
    await until('the cancelled statement to stop', async () => (await running('cancelled write')) === 0);
    expect(await bodiesOf(A)).toEqual(['a1']);
    // a late cancel could hit whatever ran next on that session: the pool dropped it and opened
    // another (compared as client connections: behind pgbouncer, backend pids are pgbouncer's choice)
    const next = await runAs(B, () => pool.query<{ body: string }>('select body from notes'));
    expect(next.rows).toEqual([{ body: 'b1' }]);
    expect(removed).toEqual([used[0]]);
    expect(used).toHaveLength(2);
    expect(used[1]).not.toBe(used[0]);
  });

  it("a deadline's reason is the error: DEADLINE_EXCEEDED (504)", async () => {
    const pool = db.appPool({ max: 1 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new DeadlineExceededError(200)), 200);
    const late = await failure(
      runAs(A, () => pool.query(`select 'deadline', pg_sleep(10)`), { signal: controller.signal }),
    );
    expect(late.error).toMatchObject({ code: 'DEADLINE_EXCEEDED', status: 504 });
    expect(late.ms).toBeLessThan(3000);
    await until('the cancelled statement to end', async () => (await running(`'deadline'`)) === 0);
  });

  it('inside a transaction: the running statement is cancelled, ROLLBACK still runs, nothing is written', async () => {
    const pool = db.appPool({ max: 1 });
    const controller = new AbortController();
    const client = await pool.connect();
    const work = runAs(
      A,
      async () => {
        await client.query('begin');
        await client.query(`insert into notes (body) values ('in aborted transaction')`);
        try {
          await client.query(`select 'long in tx', pg_sleep(10)`);
        } finally {
          await client.query('rollback').catch(() => undefined);
        }
      },
      { signal: controller.signal },
    );
    await until('the statement to run', async () => (await running('long in tx')) === 1);
    controller.abort();
    expect((await failure(work)).error).toMatchObject({ code: 'REQUEST_ABORTED' });
    client.release();
    expect(await bodiesOf(A)).toEqual(['a1']);
  });
});

describe('release with replies still due', () => {
  it('a client released with a statement in flight is destroyed; the next borrower is clean', async () => {
    const pool = db.appPool({ max: 1 });
    const first = await pool.connect();
    // the shape seen through pgbouncer: BEGIN and a write sent, the client handed back at once
    const pending = runAs(A, () => [
      first.query('begin'),
      first.query(`insert into notes (body) values ('left behind')`),
    ]);
    first.release();
    await Promise.allSettled(pending);
    const second = await pool.connect();
    try {
      // compared as client connections: behind pgbouncer, backend pids are pgbouncer's choice
      expect(second).not.toBe(first);
      const r = await runAs(B, () => second.query<{ body: string }>('select body from notes'));
      expect(r.rows).toEqual([{ body: 'b1' }]);
      expect((second as unknown as { transactionStatus: string }).transactionStatus).toBe('I');
    } finally {
      second.release();
    }
    expect(await bodiesOf(A)).toEqual(['a1']);
  });

  it('a client released between an error and its ReadyForQuery is drained and reused', async () => {
    const pool = db.appPool({ max: 1 });
    const first = await pool.connect();
    // pg calls back on ErrorResponse, before ReadyForQuery: release from the callback itself
    await new Promise<void>((resolve) => {
      runAs(A, () =>
        first.query('select 1/0', (err: Error) => {
          expect((err as { code?: string }).code).toBe('22012');
          expect((first as unknown as { repliesPending: boolean }).repliesPending).toBe(true);
          first.release();
          resolve();
        }),
      );
    });
    const second = await pool.connect();
    try {
      expect(second).toBe(first);
      expect((second as unknown as { transactionStatus: string }).transactionStatus).toBe('I');
      const r = await runAs(B, () => second.query<{ body: string }>('select body from notes'));
      expect(r.rows).toEqual([{ body: 'b1' }]);
    } finally {
      second.release();
    }
  });
});

describe('a backend that dies while connecting', () => {
  /** A loopback server that answers a startup with ReadyForQuery and a FATAL error in one write. */
  async function dyingServer(): Promise<{ url: string; close(): Promise<void> }> {
    const message = (type: string, body: Buffer) => {
      const head = Buffer.alloc(5);
      head.write(type, 0, 'latin1');
      head.writeInt32BE(body.length + 4, 1);
      return Buffer.concat([head, body]);
    };
    const int32 = (...values: number[]) => {
      const b = Buffer.alloc(4 * values.length);
      values.forEach((v, i) => b.writeInt32BE(v, 4 * i));
      return b;
    };
    const fields = Buffer.from(
      'SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0\0',
      'latin1',
    );
    const answer = Buffer.concat([
      message('R', int32(0)), // AuthenticationOk
      message('K', int32(4242, 1234)), // BackendKeyData
      message('Z', Buffer.from('I', 'latin1')), // ReadyForQuery
      message('E', fields), // ErrorResponse, FATAL
    ]);
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      let received = Buffer.alloc(0);
      socket.on('data', (chunk) => {
        received = Buffer.concat([received, chunk]);
        if (received.length >= 4 && received.length >= received.readInt32BE(0)) {
          socket.write(answer);
          socket.end();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    return {
      url: `postgres://app:secret@127.0.0.1:${port}/app`,
      close: () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
    };
  }

  it('connect() and query() reject with the FATAL error; no unhandled error event', async () => {
    const server = await dyingServer();
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    const pool = new TenantPool({ connectionString: server.url, contextMode: 'unsigned', max: 2 });
    pool.on('error', () => undefined);
    try {
      expect((await failure(pool.connect())).error).toMatchObject({ code: '57P01' });
      expect((await failure(runAs(A, () => pool.query('select 1')))).error).toMatchObject({ code: '57P01' });
      await new Promise((r) => setTimeout(r, 100));
      expect(uncaught).toEqual([]);
      expect(pool.totalCount).toBe(0);
    } finally {
      process.off('uncaughtException', onUncaught);
      await pool.end();
      await server.close();
    }
  });

  it('through a RoutedTenantPool too', async () => {
    const { RoutedTenantPool } = await import('../src/tiers/routed-tenant-pool.js');
    const { TenantRouter } = await import('../src/tiers/tenant-router.js');
    const server = await dyingServer();
    const home = new pg.Pool({ connectionString: db.routerUrl, max: 1 });
    const router = new TenantRouter({ pool: home });
    const pool = new RoutedTenantPool({ router, clusters: { home: server.url }, contextMode: 'unsigned' });
    try {
      expect((await failure(pool.connect())).error).toMatchObject({ code: '57P01' });
      expect(pool.activeConnections).toBe(0);
    } finally {
      await pool.end();
      await router.close();
      await home.end();
      await server.close();
    }
  });
});
