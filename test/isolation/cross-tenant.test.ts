// Adversarial tests from the other tenant's side: every attempt to read or change another
// tenant's rows, or to reach around the policies, is refused, and the superuser confirms that
// nothing changed. The app role talks to real PostgreSQL (through pgbouncer in CI's second stage).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { runAs, runWithoutTenant } from '../../src/context/tenant-context.js';
import { TenantPool as TenantPoolClass, type TenantPool } from '../../src/data/tenant-pool.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let pool: TenantPool;
const A = randomUUID();
const B = randomUUID();

/** Rows the test plants; ids are fixed so attacks can target them by key. */
const ids = {
  noteA: randomUUID(),
  noteB: randomUUID(),
  taskA: randomUUID(),
  taskB: randomUUID(),
  invoiceA: randomUUID(),
  invoiceB: randomUUID(),
};

/** Each tenant table, the name of its tenant column and B's row in it. */
const TABLES = [
  { table: 'notes', column: 'tenant_id', idA: ids.noteA, idB: ids.noteB, text: 'body' },
  { table: 'tasks', column: 'tenant_id', idA: ids.taskA, idB: ids.taskB, text: 'title' },
  { table: 'invoices', column: 'org_id', idA: ids.invoiceA, idB: ids.invoiceB, text: 'memo' },
] as const;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(`
    create table notes (tenant_id uuid not null, id uuid not null, body text not null, primary key (tenant_id, id));
    select tenantry.register_tenant_table('notes');
    -- primary key on id alone: ON CONFLICT can target another tenant's row
    create table tasks (id uuid primary key, tenant_id uuid not null, title text not null, done boolean not null default false);
    select tenantry.register_tenant_table('tasks');
    create table invoices (id uuid primary key, org_id uuid not null, memo text not null, amount numeric not null);
    select tenantry.register_tenant_table('invoices', 'org_id');
    -- a child table whose foreign key includes the tenant: it cannot point into another tenant
    create table task_comments (tenant_id uuid not null, id uuid primary key default gen_random_uuid(), task_id uuid not null, body text not null);
    alter table tasks add unique (tenant_id, id);
    alter table task_comments add foreign key (tenant_id, task_id) references tasks (tenant_id, id);
    select tenantry.register_tenant_table('task_comments');
    -- a child table with a single-column foreign key (a known RLS limit, see docs/security.md)
    create table task_links (tenant_id uuid not null, id uuid primary key default gen_random_uuid(), task_id uuid not null references tasks (id));
    select tenantry.register_tenant_table('task_links');
  `);
  await db.owner.query(`insert into notes (tenant_id, id, body) values ($1, $3, 'a-note'), ($2, $4, 'b-note')`, [
    A,
    B,
    ids.noteA,
    ids.noteB,
  ]);
  await db.owner.query(`insert into tasks (id, tenant_id, title) values ($1, $3, 'a-task'), ($2, $4, 'b-task')`, [
    ids.taskA,
    ids.taskB,
    A,
    B,
  ]);
  await db.owner.query(
    `insert into invoices (id, org_id, memo, amount) values ($1, $3, 'a-invoice', 10), ($2, $4, 'b-invoice', 20)`,
    [ids.invoiceA, ids.invoiceB, A, B],
  );
  await db.owner.query(`insert into task_comments (tenant_id, task_id, body) values ($1, $2, 'b-comment')`, [
    B,
    ids.taskB,
  ]);
  await db.admin.query(
    `insert into tenantry.tenants (id, slug, name) values ($1, 'tenant-a', 'A'), ($2, 'tenant-b', 'B')`,
    [A, B],
  );
  pool = db.appPool();
});
afterAll(() => db?.drop());

interface Outcome {
  rows?: Record<string, unknown>[];
  rowCount?: number | null;
  code?: string;
}

/** Runs an attack and reports its rows, or the SQLSTATE / Tenantry code it failed with. */
async function attempt(
  fn: () => Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>,
): Promise<Outcome> {
  try {
    const r = await fn();
    return { rows: r.rows, rowCount: r.rowCount };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== 'string') throw error;
    return { code };
  }
}

/** Everything stored in the tenant tables, read by the superuser (who skips RLS). */
async function snapshot(): Promise<string> {
  const parts: string[] = [];
  for (const t of [
    'notes',
    'tasks',
    'invoices',
    'task_comments',
    'task_links',
    'tenantry.tenants',
    'tenantry.registered_tables',
  ]) {
    const { rows } = await db.admin.query(`select to_jsonb(x) as j from ${t} x order by to_jsonb(x)::text`);
    parts.push(`${t}:${JSON.stringify(rows.map((r) => r.j))}`);
  }
  return parts.join('\n');
}

/** Asserts the attack is refused as `expected` says and that nothing stored changed. */
async function expectRefusedAndUnchanged(
  attack: () => Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>,
  expected: { code: string } | { rowCount: 0 } | { rows: 'none' },
): Promise<void> {
  const before = await snapshot();
  const outcome = await attempt(attack);
  if ('code' in expected) expect(outcome, 'attack should fail').toMatchObject({ code: expected.code });
  else if ('rowCount' in expected) {
    expect(outcome.code, 'attack should run and change nothing').toBeUndefined();
    expect(outcome.rowCount).toBe(0);
  } else {
    expect(outcome.code, 'attack should run and see nothing').toBeUndefined();
    expect(outcome.rows).toEqual([]);
  }
  expect(await snapshot()).toBe(before);
}

describe('the harness can see a change (positive control)', () => {
  it('an own-row update by A is stored and visible to the superuser', async () => {
    const before = await snapshot();
    const r = await runAs(A, () => pool.query(`update notes set body = body where id = $1`, [ids.noteA]));
    expect(r.rowCount).toBe(1);
    const r2 = await runAs(A, () => pool.query(`update notes set body = 'a-note-2' where id = $1`, [ids.noteA]));
    expect(r2.rowCount).toBe(1);
    expect(await snapshot()).not.toBe(before);
    await runAs(A, () => pool.query(`update notes set body = 'a-note' where id = $1`, [ids.noteA]));
    expect(await snapshot()).toBe(before);
  });
});

describe.each(TABLES)('tenant table $table', ({ table, column, idA, idB, text }) => {
  const asA = <T>(fn: () => T): T => runAs(A, fn);

  it('A reads only its own rows (parameterised, parameterless, and a multi-statement string in a transaction)', async () => {
    const extended: pg.QueryResult = await asA(() =>
      pool.query(`select ${column} as t from ${table} where ${text} <> $1 order by id`, ['']),
    );
    expect(extended.rows.length).toBeGreaterThan(0);
    expect(extended.rows.every((r) => r.t === A)).toBe(true);
    const parameterless: pg.QueryResult = await asA(() =>
      pool.query(`select ${column} as t from ${table} order by id`),
    );
    expect(parameterless.rows.map((r) => r.t)).toEqual(extended.rows.map((r) => r.t));
    // the simple protocol: several statements in one string, inside a transaction begun under A
    const client = await pool.connect();
    try {
      const results = await asA(async () => {
        await client.query('begin');
        const r = (await client.query(
          `select ${column} as t from ${table} order by id; select count(*)::int as n from ${table}`,
        )) as unknown as pg.QueryResult[];
        await client.query('commit');
        return r;
      });
      expect(results[0]!.rows.map((r) => r.t)).toEqual(extended.rows.map((r) => r.t));
      expect(results[1]!.rows).toEqual([{ n: extended.rows.length }]);
    } finally {
      client.release();
    }
  });

  it('A cannot read B row by key, by tenant, or through a join, CTE or locking read', async () => {
    await expectRefusedAndUnchanged(() => asA(() => pool.query(`select * from ${table} where id = $1`, [idB])), {
      rows: 'none',
    });
    await expectRefusedAndUnchanged(() => asA(() => pool.query(`select * from ${table} where ${column} = $1`, [B])), {
      rows: 'none',
    });
    await expectRefusedAndUnchanged(
      () =>
        asA(() =>
          pool.query(
            `with x as (select * from ${table}) select x.* from x join ${table} y on y.id = x.id where x.${column} = $1`,
            [B],
          ),
        ),
      { rows: 'none' },
    );
    await expectRefusedAndUnchanged(
      () => asA(() => pool.query(`select * from ${table} where id = $1 for update`, [idB])),
      { rows: 'none' },
    );
  });

  it('A cannot update B rows', async () => {
    await expectRefusedAndUnchanged(
      () => asA(() => pool.query(`update ${table} set ${text} = 'pwned' where id = $1`, [idB])),
      { rowCount: 0 },
    );
    await expectRefusedAndUnchanged(
      () => asA(() => pool.query(`update ${table} set ${text} = 'pwned' where ${column} = $1`, [B])),
      { rowCount: 0 },
    );
    await expectRefusedAndUnchanged(
      () =>
        asA(() =>
          pool.query(`with u as (update ${table} set ${text} = 'pwned' where id = $1 returning *) select * from u`, [
            idB,
          ]),
        ),
      { rows: 'none' },
    );
  });

  it('A cannot move its own row into B (WITH CHECK)', async () => {
    await expectRefusedAndUnchanged(
      () => asA(() => pool.query(`update ${table} set ${column} = $1 where id = $2`, [B, idA])),
      {
        code: '42501',
      },
    );
  });

  it('A cannot delete B rows', async () => {
    await expectRefusedAndUnchanged(() => asA(() => pool.query(`delete from ${table} where id = $1`, [idB])), {
      rowCount: 0,
    });
    await expectRefusedAndUnchanged(() => asA(() => pool.query(`delete from ${table} where ${column} = $1`, [B])), {
      rowCount: 0,
    });
  });

  it('A cannot insert a row carrying B as tenant (WITH CHECK, error 42501)', async () => {
    const insert =
      table === 'notes'
        ? () => pool.query(`insert into notes (tenant_id, id, body) values ($1, gen_random_uuid(), 'forged')`, [B])
        : table === 'tasks'
          ? () => pool.query(`insert into tasks (id, tenant_id, title) values (gen_random_uuid(), $1, 'forged')`, [B])
          : () =>
              pool.query(
                `insert into invoices (id, org_id, memo, amount) values (gen_random_uuid(), $1, 'forged', 1)`,
                [B],
              );
    await expectRefusedAndUnchanged(() => asA(insert), { code: '42501' });
  });

  it('A cannot truncate (TRUNCATE skips RLS, so the app role must not hold it)', async () => {
    await expectRefusedAndUnchanged(() => asA(() => pool.query(`truncate ${table}`)), { code: '42501' });
  });

  it('with no tenant, reads see nothing and writes change nothing', async () => {
    await runWithoutTenant(async () => {
      await expectRefusedAndUnchanged(() => pool.query(`select * from ${table}`), { rows: 'none' });
      await expectRefusedAndUnchanged(() => pool.query(`select * from ${table} where id = any($1)`, [[idA, idB]]), {
        rows: 'none',
      });
      await expectRefusedAndUnchanged(
        () => pool.query(`update ${table} set ${text} = 'pwned' where id = any($1)`, [[idA, idB]]),
        {
          rowCount: 0,
        },
      );
      await expectRefusedAndUnchanged(() => pool.query(`delete from ${table}`), { rowCount: 0 });
      // a multi-statement string with no tenant cannot carry a prefix: refused before it is sent
      const before = await snapshot();
      await expect(
        pool.query(`select * from ${table}; update ${table} set ${text} = 'pwned'; delete from ${table}`),
      ).rejects.toMatchObject({
        code: 'UNSUPPORTED',
      });
      expect(await snapshot()).toBe(before);
    });
  });

  it('a multi-statement write under A: refused outside a transaction, confined to A inside one', async () => {
    const attack = `update ${table} set ${text} = 'pwned'; delete from ${table} where id = '${idB}'; select ${column} as t from ${table}`;
    await expectRefusedAndUnchanged(() => asA(() => pool.query(attack)), { code: 'UNSUPPORTED' });
    const before = await snapshot();
    const client = await pool.connect();
    try {
      const results = await asA(async () => {
        await client.query('begin');
        const r = (await client.query(attack)) as unknown as pg.QueryResult[];
        await client.query('rollback');
        return r;
      });
      const ownRows = (await db.admin.query(`select count(*)::int as n from ${table} where ${column} = $1`, [A]))
        .rows[0].n;
      expect(results.map((r) => r.rowCount)).toEqual([ownRows, 0, ownRows]);
      expect(results[2]!.rows.every((r) => r.t === A)).toBe(true);
    } finally {
      client.release();
    }
    expect(await snapshot()).toBe(before);
  });
});

describe('inserts and upserts across tenants', () => {
  it('with no tenant, an insert for any tenant is refused', async () => {
    for (const tenant of [A, B]) {
      await expectRefusedAndUnchanged(
        () => pool.query(`insert into notes (tenant_id, id, body) values ($1, gen_random_uuid(), 'x')`, [tenant]),
        {
          code: '42501',
        },
      );
    }
  });

  it('A cannot take over B row with INSERT ... ON CONFLICT DO UPDATE', async () => {
    // the conflicting row belongs to B: the UPDATE's USING policy refuses it
    await expectRefusedAndUnchanged(
      () =>
        runAs(A, () =>
          pool.query(
            `insert into tasks (id, tenant_id, title) values ($1, $2, 'mine now') on conflict (id) do update set title = 'pwned', tenant_id = excluded.tenant_id`,
            [ids.taskB, A],
          ),
        ),
      { code: '42501' },
    );
    await expectRefusedAndUnchanged(
      () =>
        runAs(A, () =>
          pool.query(`insert into tasks (id, tenant_id, title) values ($1, $2, 'x') on conflict (id) do nothing`, [
            ids.taskB,
            B,
          ]),
        ),
      { code: '42501' },
    );
  });

  it('A cannot attach a child row to B parent when the foreign key includes the tenant', async () => {
    await expectRefusedAndUnchanged(
      () =>
        runAs(A, () =>
          pool.query(`insert into task_comments (tenant_id, task_id, body) values ($1, $2, 'spam')`, [A, ids.taskB]),
        ),
      { code: '23503' },
    );
  });

  it('KNOWN LIMIT (docs/security.md): a single-column foreign key lets A point at B row, because RI checks skip RLS', async () => {
    // Documented so the doc's advice (include tenant_id in foreign keys) stays true: if this
    // starts failing, PostgreSQL or the install changed and docs/security.md must change too.
    const r = await runAs(A, () =>
      pool.query(`insert into task_links (tenant_id, task_id) values ($1, $2) returning task_id`, [A, ids.taskB]),
    );
    expect(r.rows).toEqual([{ task_id: ids.taskB }]);
    // A still cannot read B's task through the link
    const joined = await runAs(A, () =>
      pool.query(`select t.title from task_links l join tasks t on t.id = l.task_id`),
    );
    expect(joined.rows).toEqual([]);
    await db.admin.query('delete from task_links');
  });
});

describe('statistics', () => {
  it('planner statistics (pg_stats) of a tenant table are hidden from the app role', async () => {
    await db.owner.query('analyze notes');
    const admin = await db.admin.query(`select count(*)::int as n from pg_stats where tablename = 'notes'`);
    expect(admin.rows[0].n).toBeGreaterThan(0); // control: there are statistics to hide
    const app = await runAs(A, () =>
      pool.query(`select attname, most_common_vals::text from pg_stats where tablename = 'notes'`),
    );
    expect(app.rows).toEqual([]);
  });

  it('KNOWN LIMIT (docs/security.md): table sizes across all tenants are visible in pg_class', async () => {
    await db.owner.query('analyze notes');
    const r = await runAs(A, () =>
      pool.query(`select reltuples::int as n from pg_class where oid = 'notes'::regclass`),
    );
    expect(r.rows[0].n).toBe(2); // both tenants' rows are counted: volume leaks, contents do not
  });
});

describe('the tenant catalog', () => {
  it('each tenant sees only its own catalog row; no tenant sees none', async () => {
    const a = await runAs(A, () => pool.query(`select id from tenantry.tenants`));
    expect(a.rows).toEqual([{ id: A }]);
    const none = await pool.query(`select id from tenantry.tenants`);
    expect(none.rows).toEqual([]);
    await expectRefusedAndUnchanged(
      () => runAs(A, () => pool.query(`update tenantry.tenants set name = 'pwned' where id = $1`, [B])),
      {
        code: '42501',
      },
    );
  });
});

describe('a table nobody registered', () => {
  beforeEach(async () => {
    await db.owner.query(`
      drop table if exists secrets;
      create table secrets (tenant_id uuid not null, body text not null);
    `);
    await db.owner.query(`insert into secrets values ($1, 'a-secret'), ($2, 'b-secret')`, [A, B]);
  });

  it('is unreachable by the app role: permission denied', async () => {
    await expectRefusedAndUnchanged(() => runAs(A, () => pool.query(`select * from secrets`)), { code: '42501' });
    await expectRefusedAndUnchanged(() => pool.query(`select * from secrets`), { code: '42501' });
    await expectRefusedAndUnchanged(() => runAs(A, () => pool.query(`insert into secrets values ($1, 'x')`, [A])), {
      code: '42501',
    });
  });

  it('stays closed after GRANT to the app: RLS was forced with no policy, so 0 rows and no writes', async () => {
    const { rows } = await db.admin.query(
      `select relrowsecurity, relforcerowsecurity from pg_class where oid = 'secrets'::regclass`,
    );
    expect(rows[0]).toEqual({ relrowsecurity: true, relforcerowsecurity: true });
    await db.owner.query(`grant select, insert, update, delete on secrets to ${db.appRole}`);
    await expectRefusedAndUnchanged(() => runAs(A, () => pool.query(`select * from secrets`)), { rows: 'none' });
    await expectRefusedAndUnchanged(
      () => runAs(B, () => pool.query(`select * from secrets where tenant_id = $1`, [B])),
      { rows: 'none' },
    );
    await expectRefusedAndUnchanged(() => pool.query(`select * from secrets`), { rows: 'none' });
    await expectRefusedAndUnchanged(() => runAs(A, () => pool.query(`update secrets set body = 'pwned'`)), {
      rowCount: 0,
    });
    await expectRefusedAndUnchanged(() => runAs(A, () => pool.query(`delete from secrets`)), { rowCount: 0 });
    await expectRefusedAndUnchanged(() => runAs(A, () => pool.query(`insert into secrets values ($1, 'x')`, [A])), {
      code: '42501',
    });
  });

  it('is also locked when a superuser creates it', async () => {
    await db.admin.query(
      `drop table if exists admin_made; create table admin_made (tenant_id uuid not null, body text); grant select on admin_made to ${db.appRole}`,
    );
    await db.admin.query(`insert into admin_made values ($1, 'a')`, [A]);
    await expectRefusedAndUnchanged(() => runAs(A, () => pool.query(`select * from admin_made`)), { rows: 'none' });
  });
});

describe('the app role cannot reach around the policies', () => {
  const refused = async (sql: string, code = '42501') => {
    await expectRefusedAndUnchanged(() => runAs(A, () => pool.query(sql)), { code });
  };

  it('cannot read or write the private schema (the context key)', async () => {
    await refused(`select * from tenantry_private.context_key`);
    await refused(`select ipad from tenantry_private.context_key`);
    await refused(`delete from tenantry_private.context_key`);
    await refused(`update tenantry_private.context_key set ipad = opad`);
    await refused(`insert into tenantry_private.context_key (id, ipad, opad) values (true, '\\x00', '\\x00')`);
    await refused(`create table tenantry_private.mine (x int)`);
  });

  it('cannot read or change the registry and meta tables', async () => {
    await refused(`select * from tenantry.registered_tables`);
    await refused(`delete from tenantry.registered_tables`);
    await refused(`select * from tenantry.meta`);
    await refused(`update tenantry.meta set value = 'unsigned' where key = 'context_mode'`);
  });

  it('cannot call the registration functions', async () => {
    await refused(`select tenantry.register_tenant_table('notes')`);
    await refused(`select tenantry.register_tenant_table('notes', 'id')`);
    await refused(`select tenantry.register_global_table('notes', true)`);
    await refused(`select tenantry.unregister_table('notes')`);
  });

  it('cannot create tables, functions or schemas', async () => {
    await refused(`create table public.mine (tenant_id uuid)`);
    await refused(`create table mine (tenant_id uuid)`);
    await refused(`create function public.f() returns int language sql as 'select 1'`);
    await refused(`create schema mine`);
    await refused(`create table tenantry.mine (x int)`);
  });

  it('cannot switch RLS off, drop or replace policies', async () => {
    await refused(`alter table notes no force row level security`);
    await refused(`alter table notes disable row level security`);
    await refused(`drop policy tenantry_isolation on notes`);
    await refused(`create policy open_door on notes using (true)`);
    await refused(`alter policy tenantry_isolation on notes using (true)`);
    await refused(`alter table notes owner to ${db.appRole}`);
    await refused(`drop table notes`);
  });

  it('cannot become the owner or a superuser', async () => {
    await refused(`set role ${db.ownerRole}`);
    await refused(`set role postgres`);
    await refused(`set session authorization ${db.ownerRole}`);
    // refused by the pool before it is sent (a role may change its own defaults), and by PostgreSQL
    await refused(`alter role ${db.appRole} bypassrls`, 'UNSUPPORTED');
    await refused(`alter role ${db.appRole} superuser`, 'UNSUPPORTED');
    const raw = new pg.Client({ connectionString: db.appUrl });
    await raw.connect();
    try {
      for (const sql of [`alter role ${db.appRole} bypassrls`, `alter role ${db.appRole} superuser`])
        await expect(raw.query(sql), sql).rejects.toMatchObject({ code: '42501' });
    } finally {
      await raw.end();
    }
    await refused(`grant ${db.ownerRole} to ${db.appRole}`);
  });

  it('cannot turn row security off for itself (it is refused, not bypassed)', async () => {
    // row_security = off makes PostgreSQL raise instead of filtering for a role that does not bypass RLS
    const client = await pool.connect();
    try {
      await runAs(A, async () => {
        // as a statement of its own, then reads and writes in the same transaction
        await client.query('begin');
        await client.query('set local row_security = off');
        await expectRefusedAndUnchanged(() => client.query(`select * from notes`), { code: '42501' });
        await client.query('rollback');
        await client.query('begin');
        await client.query(`select set_config('row_security', 'off', true)`);
        await expectRefusedAndUnchanged(
          () => client.query(`update notes set body = 'pwned' where id = $1`, [ids.noteB]),
          { code: '42501' },
        );
        await client.query('rollback');
        // as one string in a transaction begun under A (sent without a prefix)
        await client.query('begin');
        await expectRefusedAndUnchanged(() => client.query(`set local row_security = off; select * from notes`), {
          code: '42501',
        });
        await client.query('rollback');
        // inside a single statement
        await expectRefusedAndUnchanged(
          () => client.query(`do $$ begin set local row_security = off; perform * from notes; end $$`),
          { code: '42501' },
        );
      });
    } finally {
      client.release();
    }
    // at session level, for the rest of the session (an availability problem, not a leak). Straight
    // to PostgreSQL: behind pgbouncer the setting would stay on a server session other tests use.
    const direct = new URL(db.appUrl);
    direct.port = new URL(db.adminUrl).port;
    const single = new TenantPoolClass({
      connectionString: direct.toString(),
      contextSecret: db.contextSecret,
      max: 1,
    });
    let held = await single.connect(); // pool.query would discard the session after its first error
    try {
      // through the pool, a session-level SET quarantines the session: another tenant's statement is refused
      await runAs(A, () => held.query(`set row_security = on`));
      await expect(runAs(B, () => held.query(`select * from notes`))).rejects.toMatchObject({ code: 'UNSUPPORTED' });
      held.release(new Error('discard the quarantined session'));
      held = await single.connect();
      // straight to the session, as a function of the app's could: PostgreSQL refuses, nothing is read
      await (pg.Client.prototype.query as (this: unknown, q: string) => Promise<unknown>).call(
        held,
        `set row_security = off`,
      );
      await expectRefusedAndUnchanged(
        () => runAs(A, () => held.query(`select * from notes where id = $1`, [ids.noteB])),
        { code: '42501' },
      );
      await expectRefusedAndUnchanged(() => runAs(B, () => held.query(`delete from notes`)), { code: '42501' });
      await expectRefusedAndUnchanged(() => held.query(`select * from notes`), { code: '42501' });
      expect((await held.query(`select current_setting('row_security') as v`)).rows).toEqual([{ v: 'off' }]); // still the same session
    } finally {
      held.release(new Error('discard the session with row_security = off'));
      await single.end();
    }
    // as one string outside a transaction it never leaves the client
    await expectRefusedAndUnchanged(
      () => runAs(A, () => pool.query(`set local row_security = off; select * from notes`)),
      { code: 'UNSUPPORTED' },
    );
  });

  it('the app role is NOSUPERUSER, NOBYPASSRLS and owns no table', async () => {
    await expect(pool.assertSafeRole()).resolves.toBeUndefined();
    const owned = await db.admin.query(
      `select count(*)::int as n from pg_class c join pg_roles r on r.oid = c.relowner where r.rolname = $1`,
      [db.appRole],
    );
    expect(owned.rows[0].n).toBe(0);
  });
});
