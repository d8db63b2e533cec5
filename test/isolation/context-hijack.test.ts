// search_path hijacks against the context checks: signed mode's tenantry.current_tenant_id() /
// home_tenant_id() and the route check (tenantry.check_route, and tenantry.enter_route which
// calls it) run as their owner (SECURITY DEFINER) and resolve names through the search_path they
// pin (`pg_catalog, pg_temp`), never the caller's. These tests attack that from the app role's side:
// the app role cannot plant anything (no CREATE, no TEMP), and even with shadows planted by a
// superuser in public (what a careless `GRANT CREATE ON SCHEMA public` would allow) and the
// caller's search_path putting them first, a forged context is still refused and a valid one
// still reads its own rows only: the planted objects are never called. A control shows that a
// definer function without a pinned path does call them. (Issue 15 tried SQL-standard bodies
// without the SET clause as a cheaper design; measured slower, not adopted: docs/benchmarks.md.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createHmac, randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
const A = randomUUID();
const B = randomUUID();

function sign(tenant: string, expiresAt: number, secret: string): string {
  const payload = `${tenant}.${expiresAt}`;
  return `${payload}.${createHmac('sha256', Buffer.from(secret, 'utf8')).update(payload).digest('hex')}`;
}
const inFiveMinutes = () => Math.floor(Date.now() / 1000) + 300;

/** Every planted object raises HJ001 when called: a call anywhere would fail the statement with it. */
const SHADOWS = [
  ['function', 'public.encode(bytea, text)', 'text'],
  ['function', 'public.sha256(bytea)', 'bytea'],
  ['function', 'public."right"(text, integer)', 'text'],
  ['function', 'public."left"(text, integer)', 'text'],
  ['function', 'public.length(text)', 'integer'],
  ['function', 'public.split_part(text, text, integer)', 'text'],
  ['function', 'public.current_setting(text, boolean)', 'text'],
  ['function', 'public.convert_to(text, name)', 'bytea'],
  ['function', 'public.now()', 'timestamptz'],
  ['function', 'public.string_to_array(text, text)', 'text[]'],
  ['function', 'public.set_config(text, text, boolean)', 'text'],
  ['function', 'public.textregexne(text, text)', 'boolean'],
  // what core 007's checks call (issue 15)
  ['function', 'public.substr(text, integer, integer)', 'text'],
  ['function', 'public.extract(text, timestamp with time zone)', 'numeric'],
  ['function', 'public.array_length(anyarray, integer)', 'integer'],
  // what core 008's fast path calls besides (its format regex, the uuid cast)
  ['function', 'public.textregexeq(text, text)', 'boolean'],
  ['function', 'public.uuid(text)', 'uuid'],
] as const;

async function plantShadows(): Promise<void> {
  for (const [, signature, returns] of SHADOWS) {
    await db.admin.query(
      `create function ${signature} returns ${returns} language plpgsql as $$ begin raise exception 'hijacked' using errcode = 'HJ001'; end $$`,
    );
    await db.admin.query(`grant execute on function ${signature} to public`);
  }
  // operators the checks use, for text: a hijacked `<>` would accept any signature, `=` any key
  await db.admin.query(`
    create function public.always_false(text, text) returns boolean language plpgsql as $$ begin raise exception 'hijacked' using errcode = 'HJ001'; end $$;
    create operator public.<> (leftarg = text, rightarg = text, function = public.always_false);
    create operator public.= (leftarg = text, rightarg = text, function = public.always_false);
    create operator public.!~ (leftarg = text, rightarg = text, function = public.always_false);
    create function public.always_false_int(integer, integer) returns boolean language plpgsql as $$ begin raise exception 'hijacked' using errcode = 'HJ001'; end $$;
    create operator public.< (leftarg = integer, rightarg = integer, function = public.always_false_int);
    create operator public.> (leftarg = integer, rightarg = integer, function = public.always_false_int);
    create function public.always_false_bytea(bytea, bytea) returns bytea language plpgsql as $$ begin raise exception 'hijacked' using errcode = 'HJ001'; end $$;
    create operator public.|| (leftarg = bytea, rightarg = bytea, function = public.always_false_bytea);
    create operator public.~ (leftarg = text, rightarg = text, function = public.always_false);
    create function public.always_false_numeric(numeric, numeric) returns boolean language plpgsql as $$ begin raise exception 'hijacked' using errcode = 'HJ001'; end $$;
    create operator public.>= (leftarg = numeric, rightarg = numeric, function = public.always_false_numeric);
    create function public.always_false_bigint(bigint, bigint) returns boolean language plpgsql as $$ begin raise exception 'hijacked' using errcode = 'HJ001'; end $$;
    create operator public.= (leftarg = bigint, rightarg = bigint, function = public.always_false_bigint);
    create table public.context_gate (tenant_key text, state text, epoch bigint, hold text);
    grant select on public.context_gate to public;
    create table public.context_key (ipad bytea, opad bytea);
    create table public.local_tenants (tenant_key text, state text, epoch bigint);
    create table public.inactive_tenants (tenant_key text, status text);
    grant select on public.context_key, public.local_tenants, public.inactive_tenants to public;`);
}

/** A raw app-role session (no TenantPool, no prefix) with the shadows first on its search path. */
async function hijackedSession(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.appUrl });
  await client.connect();
  await client.query('set search_path = public, pg_catalog, tenantry');
  return client;
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(`
    create table notes (tenant_id uuid not null, id uuid not null default gen_random_uuid(), body text not null, primary key (tenant_id, id));
    select tenantry.register_tenant_table('notes');`);
  await db.owner.query(`insert into notes (tenant_id, body) values ($1, 'a1'), ($2, 'b1')`, [A, B]);
});
afterAll(() => db?.drop());

describe('the context checks resolve names through their own pinned search_path', () => {
  it('are SECURITY DEFINER with search_path pinned to pg_catalog, pg_temp (and only planner settings besides)', async () => {
    const { rows } = await db.admin.query<{ fn: string; definer: boolean; config: string[] | null }>(
      `select p.oid::regprocedure::text as fn, p.prosecdef as definer, p.proconfig as config
         from pg_proc p
        where p.oid in ('tenantry.current_tenant_id()'::regprocedure, 'tenantry.home_tenant_id()'::regprocedure,
                        'tenantry.check_route(text)'::regprocedure)
        order by 1`,
    );
    expect(rows).toHaveLength(3);
    // the signed checks also keep their plans on the indexes (core 009): planner settings, nothing
    // that resolves a name
    const planner = ['enable_seqscan=off', 'jit=off'];
    for (const r of rows) {
      expect(r.definer, r.fn).toBe(true);
      expect(
        r.config?.filter((c) => !planner.includes(c)),
        r.fn,
      ).toEqual(['search_path=pg_catalog, pg_temp']);
    }
    expect(rows.filter((r) => r.fn !== 'tenantry.check_route(text)').map((r) => r.config)).toEqual([
      ['search_path=pg_catalog, pg_temp', ...planner],
      ['search_path=pg_catalog, pg_temp', ...planner],
    ]);
  });

  it('the app role cannot plant a shadow: no CREATE in public or its own schemas, no TEMP (42501), and nothing changed', async () => {
    const client = new pg.Client({ connectionString: db.appUrl });
    await client.connect();
    try {
      for (const ddl of [
        `create function public.encode(bytea, text) returns text language sql as 'select ''x'''`,
        `create table public.context_key (ipad bytea, opad bytea)`,
        `create temp table local_tenants (tenant_key text, state text, epoch bigint)`,
        `create function pg_temp.sha256(bytea) returns bytea language sql as 'select ''\\x00''::bytea'`,
      ])
        expect(await codeOf(client.query(ddl)), ddl).toBe('42501');
    } finally {
      await client.end();
    }
    const { rows } = await db.admin.query(
      `select count(*)::int as n from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and p.proname in ('encode', 'sha256')`,
    );
    expect(rows[0].n).toBe(0);
  });

  describe('with shadows planted in public by a superuser, first on the caller’s search_path', () => {
    beforeAll(plantShadows);

    it('a forged value for B is refused (TR001), not accepted by a shadow, and B’s rows stay unread and unchanged', async () => {
      const client = await hijackedSession();
      try {
        const forged = [
          `${B}.${inFiveMinutes()}.${'0'.repeat(64)}`,
          sign(B, inFiveMinutes(), 'not-the-secret-not-the-secret-not-the-secret'),
          `${B}.${inFiveMinutes()}.${'f'.repeat(64)}`,
        ];
        for (const value of forged) {
          await client.query('begin');
          await client.query(`select pg_catalog.set_config('tenantry.context', $1, true)`, [value]);
          expect(await codeOf(client.query('select body from notes')), value).toBe('TR001');
          await client.query('rollback');
          await client.query('begin');
          await client.query(`select pg_catalog.set_config('tenantry.context', $1, true)`, [value]);
          expect(await codeOf(client.query(`update notes set body = 'owned'`)), value).toBe('TR001');
          await client.query('rollback');
        }
      } finally {
        await client.end();
      }
      const { rows } = await db.admin.query(`select body from notes where tenant_id = $1`, [B]);
      expect(rows.map((r) => r.body)).toEqual(['b1']);
    });

    it('a valid value for A reads A’s rows only: no shadow ran (a call would fail with HJ001)', async () => {
      const client = await hijackedSession();
      try {
        await client.query('begin');
        await client.query(`select pg_catalog.set_config('tenantry.context', $1, true)`, [
          sign(A, inFiveMinutes(), db.contextSecret),
        ]);
        const { rows } = await client.query('select body from notes');
        expect(rows.map((r) => r.body)).toEqual(['a1']);
        const home = await client.query('select tenantry.home_tenant_id()::text as id');
        expect(home.rows[0].id).toBe(A);
        await client.query('commit');
      } finally {
        await client.end();
      }
    });

    it('an expired value is still refused (TR001), and the route check still refuses a stale route (TR003)', async () => {
      const client = await hijackedSession();
      try {
        await client.query('begin');
        await client.query(`select pg_catalog.set_config('tenantry.context', $1, true)`, [
          sign(A, Math.floor(Date.now() / 1000) - 10, db.contextSecret),
        ]);
        expect(await codeOf(client.query('select body from notes'))).toBe('TR001');
        await client.query('rollback');
        // the routed prefix (core 006 qualified its operators), with a route epoch A does not live under here
        expect(await codeOf(client.query(`select tenantry.enter_route($1, '')`, [`${A}.7`]))).toBe('TR003');
        expect(await codeOf(client.query(`select tenantry.check_route($1)`, [`${A}.7`]))).toBe('TR003');
        // and the default route still passes, without calling a shadow
        expect(await codeOf(client.query(`select tenantry.check_route($1)`, [A]))).toBeUndefined();
      } finally {
        await client.end();
      }
    });

    it('the routed prefixes without enter_route (routeCheck policy) call no shadow: the context and a schema path set, A reads its rows only', async () => {
      const { CONTEXT_PREFIX_SQL, SCHEMA_PREFIX_SQL } = await import('../../src/data/context-prefix.js');
      const client = await hijackedSession();
      try {
        const value = sign(A, inFiveMinutes(), db.contextSecret);
        for (const [sql, values] of [
          [CONTEXT_PREFIX_SQL, [value]],
          [SCHEMA_PREFIX_SQL, [value, 'public, pg_catalog, tenantry']],
        ] as const) {
          await client.query('begin');
          await client.query(sql, [...values]);
          const { rows } = await client.query('select body from notes');
          expect(rows.map((r) => r.body)).toEqual(['a1']);
          await client.query('commit');
        }
      } finally {
        await client.end();
      }
    });

    it('control: a definer function without a pinned search_path DOES call the shadows (what the pinned path prevents)', async () => {
      await db.admin.query(
        `create function public.naive_probe() returns text language sql stable security definer
           as $$ select encode(sha256(convert_to('x', 'UTF8')), 'hex') $$`,
      );
      const client = await hijackedSession();
      try {
        expect(await codeOf(client.query('select public.naive_probe()'))).toBe('HJ001');
      } finally {
        await client.end();
      }
    });

    it('the TenantPool still works as before with the shadows in place', async () => {
      const pool = db.appPool({ options: '-c search_path=public,pg_catalog,tenantry' } as never);
      const { runAs } = await import('../../src/context/tenant-context.js');
      const { rows } = await runAs(A, () => pool.query('select body from notes'));
      expect(rows.map((r: { body: string }) => r.body)).toEqual(['a1']);
    });
  });
});
