import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { runAs } from '../src/context/tenant-context.js';
import { TenantPool } from '../src/data/tenant-pool.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { createNotesTable } from './support/notes-table.js';

let db: TestDatabase;
let pool: TenantPool;
const A = randomUUID();
const B = randomUUID();

beforeAll(async () => {
  db = await createTestDatabase();
  await createNotesTable(db, [
    [A, 'a1'],
    [A, 'a2'],
    [B, 'b1'],
  ]);
  pool = db.appPool();
});
afterAll(() => db?.drop());

/** The backend that serves `tenant`'s next statement through `pool`: a new one means a new session. */
async function backendPid(pool: TenantPool, tenant: string): Promise<number> {
  return (await runAs(tenant, () => pool.query<{ p: number }>('select pg_backend_pid() as p'))).rows[0]!.p;
}

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
      const after = await client.query(
        `select current_setting('tenantry.context', true) as v, (select count(*)::int from notes) as n`,
      );
      expect(after.rows[0]).toEqual({ v: '', n: 0 });
    } finally {
      client.release();
    }
  });
});

describe('TenantPool edge cases', () => {
  it('re-parses a named statement whose first Parse failed', async () => {
    const client = await pool.connect();
    try {
      await expect(
        runAs(A, () => client.query({ name: 'broken', text: 'select * from no_such_table' })),
      ).rejects.toMatchObject({ code: '42P01' });
      await db.owner.query(
        `create table no_such_table (tenant_id uuid not null, v int); select tenantry.register_tenant_table('no_such_table')`,
      );
      await db.owner.query(`insert into no_such_table values ('${A}', 1), ('${B}', 2)`);
      const r = await runAs(A, () => client.query({ name: 'broken', text: 'select * from no_such_table' }));
      expect(r.rows.map((x: { v: number }) => x.v)).toEqual([1]);
    } finally {
      client.release();
    }
  });

  it('runs named prepared statements repeatedly under different tenants', async () => {
    for (const [t, n] of [
      [A, 2],
      [B, 1],
      [A, 2],
    ] as const) {
      const r = await runAs(t, () =>
        pool.query({
          name: 'count-notes',
          text: 'select count(*)::int as n from notes where $1::int = 1',
          values: [1],
        }),
      );
      expect(r.rows[0].n).toBe(n);
    }
  });

  it('runs multi-statement text only inside a transaction that carries the tenant', async () => {
    await expect(
      runAs(A, () => pool.query('select 1 as x; select count(*)::int as n from notes')),
    ).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    const client = await pool.connect();
    try {
      const r = await runAs(A, async () => {
        await client.query('begin');
        const both = await client.query('select 1 as x; select count(*)::int as n from notes');
        await client.query('commit');
        return both;
      });
      expect((r as unknown as Array<{ rows: unknown[] }>)[1]!.rows).toEqual([{ n: 2 }]);
      await runAs(A, () => client.query('begin'));
      await expect(runAs(A, () => client.query('select 1; select 1/0'))).rejects.toMatchObject({ code: '22012' });
      await expect(runAs(A, () => client.query('rollback; select * from notes'))).rejects.toMatchObject({
        code: 'UNSUPPORTED',
      });
      await runAs(A, () => client.query('rollback'));
      // outside a transaction nothing would override a planted session value: refused even with no tenant
      await expect(client.query('select 1; select count(*)::int as n from notes')).rejects.toMatchObject({
        code: 'UNSUPPORTED',
      });
      // inside one, text that would end the transaction is refused too
      await runAs(A, () => client.query('begin'));
      await expect(runAs(A, () => client.query('commit; select * from notes'))).rejects.toMatchObject({
        code: 'UNSUPPORTED',
      });
      await runAs(A, () => client.query('rollback'));
      expect((await client.query('')).rowCount).toBeNull();
    } finally {
      client.release();
    }
    expect((await runAs(B, () => pool.query('select count(*)::int as n from notes'))).rows[0].n).toBe(1);
  });

  it('commits a statement without parameters on its own (one implicit transaction)', async () => {
    const client = await pool.connect();
    try {
      await runAs(A, () => client.query(`insert into notes (tenant_id, body) values ('${A}', 'no-params')`));
      expect((client as unknown as { transactionStatus: string }).transactionStatus).toBe('I');
    } finally {
      client.release();
    }
    const stored = await db.admin.query(`select count(*)::int as n from notes where body = 'no-params'`);
    expect(stored.rows[0].n).toBe(1);
  });

  it('starts a lazy thenable returned to runAs inside the tenant scope', async () => {
    let ran: string | undefined;
    const lazy = {
      then(resolve: (v: string) => void) {
        ran = 'started';
        void pool.query('select body from notes order by body limit 1').then((r) => resolve(r.rows[0]?.body));
      },
    };
    const body = await runAs(A, () => lazy);
    expect(ran).toBe('started');
    expect(body).toBe('a1');
  });
});

describe('registration', () => {
  it('lets the app insert into serial columns of a registered table', async () => {
    await db.owner.query(
      `create table counters (tenant_id uuid not null, n bigserial, primary key (tenant_id, n)); select tenantry.register_tenant_table('counters')`,
    );
    const r = await runAs(A, () => pool.query(`insert into counters (tenant_id) values ($1) returning n`, [A]));
    expect(Number(r.rows[0].n)).toBeGreaterThan(0);
  });

  it('forgets a dropped table, and refuses temporary objects to the app', async () => {
    await db.owner.query(
      `create table ephemeral (tenant_id uuid not null); select tenantry.register_tenant_table('ephemeral')`,
    );
    const count = `select count(*)::int as n from tenantry.registered_tables where relid::text = 'ephemeral'`;
    expect((await db.admin.query(count)).rows[0].n).toBe(1);
    await db.owner.query('drop table ephemeral');
    expect(
      (
        await db.admin.query(
          `select count(*)::int as n from tenantry.registered_tables r left join pg_class c on c.oid = r.relid where c.oid is null`,
        )
      ).rows[0].n,
    ).toBe(0);
    await expect(pool.query('create temp table scratchpad (v int)')).rejects.toMatchObject({ code: '42501' });
  });
});

describe('prepareContextStatement', () => {
  it('parses the prefix once per connection, isolates tenants, and never lends a session that could have replaced it', async () => {
    const prepared = db.appPool({ prepareContextStatement: true, max: 1 });
    const stored = async (t: string) =>
      (await db.admin.query('select count(*)::int as n from notes where tenant_id = $1', [t])).rows[0].n as number;
    for (const t of [A, B, A]) {
      const r = await runAs(t, () => prepared.query('select count(*)::int as n from notes'));
      expect(r.rows[0].n).toBe(await stored(t));
    }
    const names = await runAs(A, () =>
      prepared.query(`select name from pg_prepared_statements where name = 'tenantry_context'`),
    );
    expect(names.rowCount).toBe(1);
    // statements that could replace the named prefix run, but their session is never lent again:
    // the next statement, of either tenant, gets a fresh session with the pool's own prefix
    const pids = new Set<number>();
    const texts = [
      'deallocate all',
      '/* hidden */ DEALLOCATE tenantry_context',
      `do $$ begin execute 'deallocate tenantry_context'; execute 'prepare tenantry_context(text) as select pg_catalog.set_config(''tenantry.context'', '''', true)'; end $$`,
      `do $$ begin execute 'deallocate all'; end $$`,
    ];
    for (const text of texts) {
      pids.add(await backendPid(prepared, A));
      await runAs(A, () => prepared.query(text));
      for (const t of [B, A])
        expect((await runAs(t, () => prepared.query('select count(*)::int as n from notes'))).rows[0].n, text).toBe(
          await stored(t),
        );
    }
    pids.add(await backendPid(prepared, A));
    expect(pids.size).toBe(texts.length + 1); // one session per quarantined statement, then a fresh one
    // on one checked-out client: after A's DO, B's statements are refused on it, A's still run
    const client = await prepared.connect();
    try {
      await runAs(A, () => client.query(`do $$ begin perform 1; end $$`));
      await expect(runAs(B, () => client.query('select body from notes'))).rejects.toMatchObject({
        code: 'UNSUPPORTED',
      });
      await expect(client.query('select body from notes')).rejects.toMatchObject({ code: 'UNSUPPORTED' });
      expect((await runAs(A, () => client.query('select count(*)::int as n from notes'))).rows[0].n).toBe(
        await stored(A),
      );
    } finally {
      client.release();
    }
    expect((await runAs(B, () => prepared.query('select body from notes'))).rows).toEqual([{ body: 'b1' }]);
    // words inside strings or identifiers are no statements: the session stays
    const before = await backendPid(prepared, A);
    expect((await runAs(A, () => prepared.query(`select 'prepare; do' as deallocate`))).rows).toEqual([
      { deallocate: 'prepare; do' },
    ]);
    expect(await backendPid(prepared, A)).toBe(before);
    await prepared.end();
  });

  it("with an unnamed prefix too, tenant A cannot replace a named statement that tenant B's request runs next", async () => {
    const plain = db.appPool({ max: 1, prepareContextStatement: false });
    expect(await plain.poolerInfo()).toMatchObject({ namedStatements: 'safe', prefix: 'unnamed' });
    const listNotes = { name: 'list_notes', text: 'select body from notes order by body' };
    const mine = async (t: string) =>
      (await db.admin.query('select body from notes where tenant_id = $1 order by body', [t])).rows;
    // injected SQL of tenant A: replace B's statement with one that leaks B's rows into a session setting
    const evil = `prepare list_notes as select pg_catalog.set_config('x.leak', (select string_agg(body, ',') from notes), false) as body`;
    // an attacker's review hid the two statements from the client's lexer three ways (a long
    // dollar tag, a string continued across a -- comment, standard_conforming_strings off): any
    // multi-statement text now quarantines its session, and is refused while that setting is off
    const TAG = `$${'t'.repeat(70)}$`;
    for (const inject of [
      [`deallocate list_notes`, evil],
      [`do $$ begin execute 'deallocate list_notes'; execute $q$${evil}$q$; end $$`],
      [`select 1; select ${TAG}'${TAG}; deallocate list_notes; ${evil}; select 'tail'`],
      [`select 1; select E'a' -- c\n'\\''; deallocate list_notes; ${evil}; select 'z'`],
      [`set standard_conforming_strings = off`, `select 1; select '\\''; deallocate list_notes; ${evil}; select 'z'`],
    ]) {
      expect((await runAs(B, () => plain.query(listNotes))).rows).toEqual(await mine(B));
      // in one transaction of A's, so both statements share the session (the pool lends one client)
      const client = await plain.connect();
      try {
        await runAs(A, async () => {
          await client.query('begin');
          for (const text of inject)
            await client.query(text).catch((e: { code?: string }) => expect(e.code).toBe('UNSUPPORTED'));
          await client.query('rollback');
        });
      } finally {
        client.release();
      }
      // B's next run is its own statement, and nothing was leaked for A to read
      expect((await runAs(B, () => plain.query(listNotes))).rows).toEqual(await mine(B));
      expect((await runAs(A, () => plain.query(`select current_setting('x.leak', true) as leak`))).rows).toEqual([
        { leak: null },
      ]);
    }
    // release(false) (any falsy value: "no error") still closes a quarantined session
    const c1 = await plain.connect();
    const pid = (await runAs(A, () => c1.query('select pg_backend_pid() as p'))).rows[0].p;
    await runAs(A, () => c1.query(`do $$ begin perform 1; end $$`));
    c1.release(false as unknown as undefined);
    const next = await runAs(B, () => plain.query('select pg_backend_pid() as p, count(*)::int as n from notes'));
    expect(next.rows[0].p).not.toBe(pid);
    await plain.end();
  });

  it("'auto' uses the named prefix once the self-test finds it safe, without waiting for it", async () => {
    const auto = db.appPool({ max: 1, prepareContextStatement: 'auto' });
    const named = () =>
      runAs(A, () =>
        auto.query(`select count(*)::int as n from pg_prepared_statements where name = 'tenantry_context'`),
      );
    // the first statement does not wait for the self-test (the prefix may still be unnamed)
    expect([0, 1]).toContain((await named()).rows[0].n);
    const info = await auto.poolerInfo();
    expect(info).toMatchObject({ pooler: 'none', namedStatements: 'safe', prefix: 'named' });
    await named(); // parses it
    expect((await named()).rows[0].n).toBe(1);
    // tenants stay apart on the named prefix, and an empty context reads nothing
    expect((await runAs(B, () => auto.query('select body from notes'))).rows).toEqual([{ body: 'b1' }]);
    expect((await auto.query('select body from notes')).rowCount).toBe(0);
    await auto.end();
  });

  it('false keeps the unnamed prefix; anything but true, false or auto is refused at construction', async () => {
    const off = db.appPool({ prepareContextStatement: false, max: 1 });
    expect(await off.poolerInfo()).toMatchObject({ namedStatements: 'safe', prefix: 'unnamed' });
    const n = await runAs(A, () =>
      off.query(`select count(*)::int as n from pg_prepared_statements where name like 'tenantry%'`),
    );
    expect(n.rows[0].n).toBe(0);
    await off.end();
    expect(() => db.appPool({ prepareContextStatement: 'yes' as unknown as boolean })).toThrow(
      /prepareContextStatement must be/,
    );
  });

  it('by default names the prefix and the app’s statements once the self-test finds a session per client, and nothing without the self-test', async () => {
    const byDefault = db.appPool({ max: 1 });
    expect(await byDefault.poolerInfo()).toMatchObject({
      mode: 'none',
      namedStatements: 'safe',
      prefix: 'named',
      statements: 'named',
    });
    const names = (pool: TenantPool) =>
      runAs(A, async () => {
        await pool.query('select body from notes where length($1) > 0', ['x']);
        const r = await pool.query<{ name: string }>(
          `select name from pg_prepared_statements where name like 'tenantry%' and length($1) = 0 order by name`,
          [''],
        );
        return r.rows.map((row) => row.name);
      });
    expect(await names(byDefault)).toEqual(expect.arrayContaining(['tenantry_context', 'tenantry_s1']));
    // each tenant still sees only its own rows through the named forms, from either side
    const bodies = async (t: string) =>
      (
        await runAs(t, () =>
          byDefault.query<{ body: string }>('select body from notes where length($1) > 0 order by body', ['x']),
        )
      ).rows;
    const adminBodies = async (t: string) =>
      (await db.admin.query<{ body: string }>('select body from notes where tenant_id = $1 order by body', [t])).rows;
    expect(await bodies(A)).toEqual(await adminBodies(A));
    expect(await bodies(B)).toEqual(await adminBodies(B));
    await byDefault.end();

    const noSelfTest = db.appPool({ max: 1, poolerSelfTest: false });
    expect(await names(noSelfTest)).toEqual([]);
    await noSelfTest.end();
  });
});

describe('prepareStatements', () => {
  const preparedNames = (pool: TenantPool) =>
    runAs(A, () =>
      pool.query<{ name: string; statement: string }>(
        `select name, statement from pg_prepared_statements where name like 'tenantry_s%' and length($1) = 0 order by name`,
        [''],
      ),
    );

  it('names the app’s parameterised statements per connection; each tenant still sees only its rows, from either side', async () => {
    const named = db.appPool({ prepareStatements: true, prepareContextStatement: false, max: 1 });
    expect(await named.poolerInfo()).toMatchObject({ namedStatements: 'safe', statements: 'named', prefix: 'unnamed' });
    const byBody = 'select body from notes where body like $1 order by body';
    const stored = async (t: string) =>
      (await db.admin.query('select body from notes where tenant_id = $1 order by body', [t])).rows;
    for (let i = 0; i < 6; i++)
      for (const t of [A, B]) expect((await runAs(t, () => named.query(byBody, ['%']))).rows).toEqual(await stored(t));
    const names = (await preparedNames(named)).rows;
    expect(names.filter((n) => n.statement === byBody)).toHaveLength(1); // parsed once, whatever the tenant
    // no parameters: unnamed; an explicit name: the app's own
    await runAs(A, () => named.query('select count(*) from notes'));
    await runAs(A, () =>
      named.query({ name: 'mine', text: 'select count(*) from notes where body <> $1', values: [''] }),
    );
    const after = (await preparedNames(named)).rows.map((n) => n.statement);
    expect(after).not.toContain('select count(*) from notes');
    expect(after).not.toContain('select count(*) from notes where body <> $1');
    // writes: A's insert lands in A; A cannot write B's tenant id (WITH CHECK); B sees none of it
    const insert = 'insert into notes (tenant_id, body) values ($1, $2)';
    await runAs(A, () => named.query(insert, [A, 'a-named']));
    await expect(runAs(A, () => named.query(insert, [B, 'b-forged']))).rejects.toMatchObject({ code: '42501' });
    expect((await runAs(B, () => named.query(byBody, ['%-named']))).rows).toEqual([]);
    expect((await runAs(A, () => named.query(byBody, ['%-named']))).rows).toEqual([{ body: 'a-named' }]);
    expect((await db.admin.query(`select tenant_id from notes where body in ('a-named', 'b-forged')`)).rows).toEqual([
      { tenant_id: A },
    ]);
    await db.owner.query(`delete from notes where body = 'a-named'`);
    await named.end();
  });

  it('a statement whose result type changed after DDL runs again under a fresh name outside a transaction, and fails once (0A000) inside one', async () => {
    await db.owner.query(`create table shapes (tenant_id uuid not null, id int not null, primary key (tenant_id, id));
      select tenantry.register_tenant_table('shapes'); insert into shapes values ('${A}', 1)`);
    const named = db.appPool({ prepareStatements: true, prepareContextStatement: false, max: 1 });
    await named.poolerInfo();
    const q = 'select * from shapes where id = $1';
    expect((await runAs(A, () => named.query(q, [1]))).rows).toEqual([{ tenant_id: A, id: 1 }]);
    await db.owner.query(`alter table shapes add column label text default 'x'`);
    // outside a transaction block: run again at once under a fresh name, the app sees the new shape
    expect((await runAs(A, () => named.query(q, [1]))).rows).toEqual([{ tenant_id: A, id: 1, label: 'x' }]);
    expect((await runAs(B, () => named.query(q, [1]))).rows).toEqual([]);
    // inside one, the app sees the error (the transaction is aborted); the next transaction runs it
    await db.owner.query(`alter table shapes add column size int default 2`);
    const client = await named.connect();
    try {
      await runAs(A, async () => {
        await client.query('begin');
        await expect(client.query(q, [1])).rejects.toMatchObject({ code: '0A000' });
        await client.query('rollback');
        await client.query('begin');
        expect((await client.query(q, [1])).rows).toEqual([{ tenant_id: A, id: 1, label: 'x', size: 2 }]);
        await client.query('commit');
      });
    } finally {
      client.release();
    }
    // a write outside a transaction that hits it is not applied twice
    await db.owner.query(`create table bumps (tenant_id uuid not null, n int not null, primary key (tenant_id));
      select tenantry.register_tenant_table('bumps'); insert into bumps values ('${A}', 0)`);
    const bump = 'update bumps set n = n + $1 returning *';
    expect((await runAs(A, () => named.query(bump, [1]))).rows).toEqual([{ tenant_id: A, n: 1 }]);
    await db.owner.query(`alter table bumps add column note text`);
    expect((await runAs(A, () => named.query(bump, [1]))).rows).toEqual([{ tenant_id: A, n: 2, note: null }]);
    expect((await db.admin.query(`select n from bumps where tenant_id = $1`, [A])).rows).toEqual([{ n: 2 }]);
    await named.end();
  });

  it('names at most 256 texts per connection; a session where tenant A deallocates one is never lent to B', async () => {
    const named = db.appPool({ prepareStatements: true, prepareContextStatement: false, max: 1 });
    await named.poolerInfo();
    for (let i = 0; i < 300; i++) await runAs(A, () => named.query(`select $1::int + ${i} as n`, [1]));
    expect((await preparedNames(named)).rows.length).toBe(256);
    const byBody = 'select body from notes where body like $1 order by body';
    await runAs(B, () => named.query(byBody, ['%']));
    const before = await backendPid(named, A);
    await runAs(A, () => named.query('deallocate all'));
    expect((await runAs(B, () => named.query(byBody, ['%']))).rows).toEqual([{ body: 'b1' }]);
    expect(await backendPid(named, A)).not.toBe(before);
    await named.end();
    expect(() => db.appPool({ prepareStatements: 'yes' as unknown as boolean })).toThrow(/prepareStatements must be/);
  });
});

describe('session state a tenant can leave behind (second review)', () => {
  it('a pg.Query without values is classed by what it sends: one statement goes extended, several quarantine or are refused', async () => {
    const p = db.appPool({ max: 1 });
    const run = (q: pg.Query) =>
      new Promise<unknown[]>((resolve, reject) => {
        const rows: unknown[] = [];
        q.on('row', (r: unknown) => rows.push(r));
        q.on('error', reject);
        q.on('end', () => resolve(rows));
      });
    const client = await p.connect();
    try {
      // one statement: the tenant's rows, from either side
      const a = runAs(A, () =>
        run(client.query(new pg.Query('select body from notes order by body')) as unknown as pg.Query),
      );
      expect((await a).length).toBe((await db.admin.query('select 1 from notes where tenant_id = $1', [A])).rowCount);
      const b = runAs(B, () => run(client.query(new pg.Query('select body from notes')) as unknown as pg.Query));
      expect(await b).toEqual([{ body: 'b1' }]);
      // several outside a transaction: refused before anything is sent
      const refused = runAs(A, () => run(client.query(new pg.Query('select 1; select 2')) as unknown as pg.Query));
      await expect(refused).rejects.toMatchObject({ code: 'UNSUPPORTED' });
      // several inside A's transaction: they run, and the session serves no other tenant
      await runAs(A, async () => {
        await client.query('begin');
        await run(client.query(new pg.Query('select 1; select 2')) as unknown as pg.Query);
        await client.query('rollback');
      });
      await expect(runAs(B, () => client.query('select body from notes'))).rejects.toMatchObject({
        code: 'UNSUPPORTED',
      });
    } finally {
      client.release();
    }
    await p.end();
  });

  it('a named statement whose first run fails after its Parse (WITH CHECK) still runs for the next tenant', async () => {
    for (const options of [{ prepareStatements: true }, {}]) {
      const p = db.appPool({ max: 1, ...options });
      await p.poolerInfo();
      const insert = 'insert into notes (tenant_id, body) values ($1, $2)';
      const config = (values: unknown[]) =>
        'prepareStatements' in options ? { text: insert, values } : { name: 'add_note', text: insert, values };
      await expect(runAs(A, () => p.query(config([B, 'forged'])))).rejects.toMatchObject({ code: '42501' });
      for (const body of ['b-after-1', 'b-after-2']) await runAs(B, () => p.query(config([B, body])));
      expect(
        (await db.admin.query(`select tenant_id, body from notes where body like 'b-after-%' or body = 'forged'`)).rows,
      ).toEqual([
        { tenant_id: B, body: 'b-after-1' },
        { tenant_id: B, body: 'b-after-2' },
      ]);
      await db.owner.query(`delete from notes where body like 'b-after-%'`);
      await p.end();
    }
  });

  it("a session whose client_encoding or DateStyle tenant A changed is not lent to B: B's text is stored as sent", async () => {
    const p = db.appPool({ max: 1 });
    const before = await backendPid(p, A);
    await runAs(A, () =>
      p.query(`select set_config('client_encoding', 'LATIN1', false), set_config('DateStyle', 'SQL, DMY', false)`),
    );
    expect(await backendPid(p, B)).not.toBe(before);
    const { rows } = await runAs(B, () =>
      p.query(`insert into notes (tenant_id, body) values ($1, $2) returning created_at`, [B, 'café-B']),
    );
    expect(rows[0].created_at).toBeInstanceOf(Date);
    expect(
      (await db.admin.query(`select octet_length(body) as n from notes where tenant_id = $1 and body = 'café-B'`, [B]))
        .rows,
    ).toEqual([{ n: 7 }]);
    await db.owner.query(`delete from notes where body = 'café-B'`);
    // SET LOCAL inside a transaction ends with it: the session is kept
    const kept = await backendPid(p, A);
    await runAs(A, async () => {
      const c = await p.connect();
      try {
        await c.query('begin');
        await c.query(`set local timezone = 'Asia/Tokyo'`);
        await c.query('commit');
      } finally {
        c.release();
      }
    });
    expect(await backendPid(p, B)).toBe(kept);
    await p.end();
  });
});

describe('a server session this client did not start (the named-defaults try-out)', () => {
  // What a session pooler without a reset (pgbouncer with server_reset_query empty) does: a new
  // client gets a server session where another client's SQL already ran. Here the statements
  // are planted through pg's own Client.query (under TenantClient's checks), on a connection the
  // TenantClient has not yet used for a named statement: it is as new to it as a lent session.
  const plant = (client: pg.PoolClient, text: string) =>
    (pg.Client.prototype.query as (t: string) => Promise<unknown>).call(client, text);
  const adminNotes = async () =>
    (
      await db.admin.query<{ tenant_id: string; body: string }>(
        'select tenant_id, body from notes order by tenant_id, body',
      )
    ).rows;

  it.each([
    [
      'the named context prefix',
      `prepare tenantry_context(text) as select pg_catalog.set_config('tenantry.context', $1, true), pg_catalog.set_config('x.stolen', $1, false)`,
    ],
    [
      'an app statement the pool names',
      `prepare tenantry_s1(text) as select pg_catalog.set_config('x.stolen', (select string_agg(body, ',') from notes), false) as body`,
    ],
  ])(
    "%s planted before this client: B's statement is refused (42P05), never runs it, and the session is not lent again",
    async (_what, evil) => {
      const named = db.appPool({
        max: 1,
        prepareContextStatement: true,
        prepareStatements: true,
        poolerSelfTest: false,
      });
      const before = await adminNotes();
      const client = await named.connect();
      const pid = (
        await (pg.Client.prototype.query as (t: string) => Promise<pg.QueryResult<{ p: number }>>).call(
          client,
          'select pg_backend_pid() as p',
        )
      ).rows[0]!.p;
      await plant(client, evil);
      // B's statement on that session: refused, the planted text not run
      await expect(
        runAs(B, () => client.query<{ body: string }>('select body from notes where body like $1', ['%'])),
      ).rejects.toMatchObject({ code: '42P05' });
      const stolen = await (
        pg.Client.prototype.query as (t: string) => Promise<pg.QueryResult<{ v: string | null }>>
      ).call(client, `select current_setting('x.stolen', true) as v`);
      expect(stolen.rows[0]!.v ?? '').toBe('');
      // and nothing more of anyone's runs there
      await expect(
        runAs(B, () => client.query('select body from notes where body like $1', ['%'])),
      ).rejects.toMatchObject({
        code: 'UNSUPPORTED',
      });
      client.release();
      // the next checkout is a new session, where B's statement runs as B's
      const b = await runAs(B, () =>
        named.query<{ body: string; p: number }>('select body, pg_backend_pid() as p from notes where body like $1', [
          '%',
        ]),
      );
      expect(b.rows.map((r) => r.body)).toEqual(['b1']);
      expect(b.rows[0]!.p).not.toBe(pid);
      expect(await adminNotes()).toEqual(before);
      await named.end();
    },
  );

  it('a named prefix whose first Parse the server refused (a failed transaction) is parsed again, not bound (no 26000 for the next tenant)', async () => {
    const named = db.appPool({ max: 1, prepareContextStatement: true, poolerSelfTest: false });
    const client = await named.connect();
    // statements sent before the prefix's form became named (as with 'auto' before the self-test answers)
    await plant(client, 'begin');
    await plant(client, 'select 1/0').catch(() => undefined);
    // A's first named prefix: its Parse is refused (25P02, the transaction failed)
    await expect(runAs(A, () => client.query('select body from notes'))).rejects.toMatchObject({ code: '25P02' });
    await client.query('rollback');
    client.release();
    const b = await runAs(B, () => named.query<{ body: string }>('select body from notes where body like $1', ['%']));
    expect(b.rows.map((r) => r.body)).toEqual((await adminNotes()).filter((r) => r.tenant_id === B).map((r) => r.body));
    const a = await runAs(A, () => named.query<{ body: string }>('select body from notes order by body'));
    expect(a.rows.map((r) => r.body)).toEqual((await adminNotes()).filter((r) => r.tenant_id === A).map((r) => r.body));
    await named.end();
  });
});

describe("the second review's leak, replayed", () => {
  it("a pg.Query hiding DEALLOCATE/PREPARE behind standard_conforming_strings = off: B's rows stay B's", async () => {
    const p = db.appPool({ prepareStatements: true, prepareContextStatement: 'auto', max: 1 });
    await p.poolerInfo();
    const byBody = 'select body from notes where body like $1';
    await runAs(B, () => p.query(byBody, ['%']));
    await runAs(A, async () => {
      await p.query(`select set_config('standard_conforming_strings', 'off', false)`);
      const c = await p.connect();
      try {
        const evil = `select 'a\\'' ; deallocate tenantry_s1 ; prepare tenantry_s1(text) as select set_config('x.leak', coalesce((select string_agg(body, ',') from notes), 'none'), false) as body ; --'`;
        const q = new pg.Query(evil);
        const done = new Promise((resolve, reject) => {
          q.on('error', reject);
          q.on('end', resolve);
        });
        c.query(q as unknown as pg.QueryConfig);
        // the setting's change closed that session at release: this one reads strings standardly,
        // the text is one statement to the client, sent extended, and PostgreSQL refuses it whole
        await expect(done).rejects.toBeInstanceOf(Error);
      } finally {
        c.release();
      }
    });
    expect((await runAs(B, () => p.query(byBody, ['%']))).rows).toEqual([{ body: 'b1' }]);
    expect((await runAs(A, () => p.query(`select current_setting('x.leak', true) as leak`))).rows).toEqual([
      { leak: null },
    ]);
    await p.end();
  });
});

describe('an idle connection the server ends', () => {
  it('does not end the process when the app attached no listener: the logger is told, the pool serves on', async () => {
    const warnings: Array<{ fields: unknown; message: string }> = [];
    const logger = {
      info: () => undefined,
      warn: (fields: unknown, message: string) => void warnings.push({ fields, message }),
    };
    const p = new TenantPool({ connectionString: db.appUrl, contextSecret: db.contextSecret, logger, max: 2 });
    try {
      const pid = (await runAs(A, () => p.query<{ pid: number }>('select pg_backend_pid() as pid'))).rows[0]!.pid;
      expect(p.idleCount).toBe(1);
      expect(p.listenerCount('error')).toBe(1); // the pool's own, none of the app's
      await db.admin.query('select pg_terminate_backend($1)', [pid]);
      const deadline = Date.now() + 5000;
      while (warnings.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(warnings).toEqual([
        { fields: { sqlstate: '57P01' }, message: expect.stringContaining('an idle connection of this pool ended') },
      ]);
      expect((await runAs(A, () => p.query('select body from notes'))).rows.map((r) => r.body)).toEqual(
        (await db.admin.query('select body from notes where tenant_id = $1', [A])).rows.map((r) => r.body),
      );
    } finally {
      await p.end();
    }
  });
});
