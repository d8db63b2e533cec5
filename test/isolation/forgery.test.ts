// Forging the tenant context: SQL injected into a tenant's statements tries to choose another
// tenant (set_config, SET, multi-statement strings, session-level values, role defaults), a spy
// session looks for context values in pg_stat_activity, and tampered values are replayed.
// Signed mode must refuse all of it; unsigned mode's known weakness is pinned down by a test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { runAs, runWithoutTenant } from '../../src/context/tenant-context.js';
import { TenantPool as TenantPoolClass, type TenantPool } from '../../src/data/tenant-pool.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

/** App connections go through pgbouncer (transaction pooling): server sessions are shared. */
const behindPgbouncer = Boolean(process.env.TENANTRY_TEST_APP_PORT);

const SIGNED_VALUE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[0-9]+\.[0-9a-f]{64}/i;

let db: TestDatabase;
let pool: TenantPool;
const A = randomUUID();
const B = randomUUID();
const C = randomUUID();
const BODIES = { [A]: ['a1', 'a2'], [B]: ['b1', 'b2'], [C]: ['c1'] } as Record<string, string[]>;

/** A context value in the documented format, signed with `secret` (the real one unless told). */
function sign(tenant: string, expiresAt: number, secret: string): string {
  const payload = `${tenant}.${expiresAt}`;
  return `${payload}.${createHmac('sha256', Buffer.from(secret, 'utf8')).update(payload).digest('hex')}`;
}
const inFiveMinutes = () => Math.floor(Date.now() / 1000) + 300;

/** SQL-quotes a literal the way an injected payload would carry it. */
const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** Flattens a pg result (or an array of them, for multi-statement strings) into note bodies. */
function bodiesOf(result: unknown): string[] {
  const results = (Array.isArray(result) ? result : [result]) as { rows: Record<string, unknown>[] }[];
  return results.flatMap((r) => r.rows.map((row) => row.body)).filter((b): b is string => typeof b === 'string');
}

/** Runs `fn`; returns the bodies it read, or the SQLSTATE / Tenantry code it failed with. */
async function outcome(fn: () => Promise<unknown>): Promise<{ bodies: string[]; code?: string }> {
  try {
    return { bodies: bodiesOf(await fn()) };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== 'string') throw error;
    return { bodies: [], code };
  }
}

/** The statement ran as A and never saw another tenant: either A's rows only, or refused with TR001. */
function expectNoForeignRows(o: { bodies: string[]; code?: string }, own: string): void {
  for (const b of o.bodies) expect(BODIES[own], `read ${b}, not a row of the tenant in context`).toContain(b);
  if (o.code !== undefined) expect(o.code).toBe('TR001');
}

/** A plain pg.Client as the app role: no TenantPool, no prefix, like a psql session of an attacker. */
async function rawAppClient(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.appUrl });
  await client.connect();
  return client;
}

/**
 * A one-connection TenantPool straight to PostgreSQL, past pgbouncer: the planted-session tests
 * need the same server session for every step. Behind pgbouncer the attacks are no harder
 * (server sessions are shared by all clients), but which session a client gets is not the test's
 * to choose. Ended by the caller.
 */
function directSinglePool(): TenantPool {
  const url = new URL(db.appUrl);
  url.port = new URL(db.adminUrl).port;
  return new TenantPoolClass({ connectionString: url.toString(), contextSecret: db.contextSecret, max: 1 });
}

/** Runs `sql` on a TenantClient without its context prefix (pg.Client's own query): shows the session as it is. */
function bare(client: pg.PoolClient, sql: string): Promise<pg.QueryResult> {
  return (pg.Client.prototype.query as (this: unknown, q: string) => Promise<pg.QueryResult>).call(client, sql);
}

async function seed(target: TestDatabase): Promise<void> {
  await target.owner.query(`
    create table notes (tenant_id uuid not null, id uuid not null default gen_random_uuid(), body text not null, primary key (tenant_id, id));
    select tenantry.register_tenant_table('notes');
  `);
  for (const [tenant, bodies] of Object.entries(BODIES)) {
    for (const body of bodies) await target.owner.query(`insert into notes (tenant_id, body) values ($1, $2)`, [tenant, body]);
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  await seed(db);
  pool = db.appPool();
});
afterAll(() => db?.drop());

describe('signed mode: injected SQL cannot choose another tenant', () => {
  const payloads: [string, string][] = [
    ['set_config(…, true) before the read', `select set_config('tenantry.context', ${lit(B)}, true); select body from notes`],
    ['SET LOCAL before the read', `set local tenantry.context = ${lit(B)}; select body from notes`],
    ['SET SESSION before the read', `set session tenantry.context = ${lit(B)}; select body from notes`],
    ['set_config(…, false) before the read', `select set_config('tenantry.context', ${lit(B)}, false); select body from notes`],
    ['a DO block that leaks through an error message', `do $$ begin perform set_config('tenantry.context', ${lit(B)}, true); raise exception 'leak: %', (select string_agg(body, ',') from notes); end $$`],
    ['set_config inside the same statement', `select n.body from (select set_config('tenantry.context', ${lit(B)}, true) as s) s, notes n`],
    ['set_config in a CTE', `with s as materialized (select set_config('tenantry.context', ${lit(B)}, true)) select body from notes, s`],
    ['RESET before the read', `reset tenantry.context; select body from notes`],
  ];

  it.each(payloads)('%s: never gains B rows (TR001 or nothing foreign)', async (_name, sql) => {
    const o = await outcome(() => runAs(A, () => pool.query(sql)));
    expectNoForeignRows(o, A);
    expect(o.code, 'a forged bare uuid must be rejected by PostgreSQL, not silently read').not.toBe('P0001');
  });

  it('a set_config statement in an explicit transaction is overridden by the next statement’s context', async () => {
    const client = await pool.connect();
    try {
      await runAs(A, async () => {
        await client.query('begin');
        await client.query(`select set_config('tenantry.context', $1, true)`, [B]);
        const afterSetConfig = await client.query('select body from notes order by body');
        await client.query(`set local tenantry.context = ${lit(B)}`);
        const afterSetLocal = await client.query('select body from notes where body <> $1 order by body', ['']);
        await client.query('commit');
        expect(bodiesOf(afterSetConfig)).toEqual(BODIES[A]);
        expect(bodiesOf(afterSetLocal)).toEqual(BODIES[A]);
      });
    } finally {
      client.release();
    }
  });

  it('a session-level value planted by one borrower is not inherited by the next ones', async () => {
    const single = db.appPool({ max: 1 });
    // worst case: a value validly signed for B (as if it had leaked) planted at session level
    const planted = sign(B, inFiveMinutes(), db.contextSecret);
    await runAs(A, () => single.query(`select set_config('tenantry.context', $1, false)`, [planted]));
    const client = await single.connect();
    try {
      if (!behindPgbouncer) {
        // control: the plant really is on this session (behind pgbouncer the server session may differ)
        const raw = await bare(client, `select current_setting('tenantry.context', true) as v`);
        expect(raw.rows[0].v).toBe(planted);
      }
      // extended protocol first: a parameterless (simple) autocommit statement on PostgreSQL 18
      // leaves the session in a transaction (see the BUG test in concurrency.test.ts)
      const noneExtended = await runWithoutTenant(() => client.query('select body from notes where body <> $1', ['']));
      expect(noneExtended.rows).toEqual([]);
      const asC = await runAs(C, () => client.query('select body from notes where body <> $1 order by body', ['']));
      expect(bodiesOf(asC)).toEqual(BODIES[C]);
      const asA = await runAs(A, () => client.query('select body from notes where body <> $1 order by body', ['']));
      expect(bodiesOf(asA)).toEqual(BODIES[A]);
      const none = await runWithoutTenant(() => client.query('select body from notes'));
      expect(none.rows).toEqual([]);
    } finally {
      client.release();
    }
  });

  it('ALTER ROLE current_user SET tenantry.context is refused to the app role, or changes nothing', async () => {
    const attempt = await outcome(() => runAs(A, () => pool.query(`alter role current_user set tenantry.context = ${lit(B)}`)));
    if (attempt.code !== undefined) {
      expect(attempt.code).toBe('42501');
    } else {
      const fresh = db.appPool({ max: 2 });
      expect((await fresh.query('select body from notes')).rows).toEqual([]);
      expect(bodiesOf(await runAs(A, () => fresh.query('select body from notes order by body')))).toEqual(BODIES[A]);
      await db.admin.query(`alter role ${db.appRole} reset tenantry.context`);
    }
    const { rows } = await db.admin.query(
      `select count(*)::int as n from pg_db_role_setting s join pg_roles r on r.oid = s.setrole where r.rolname = $1 and array_to_string(s.setconfig, ',') like '%tenantry.context%'`,
      [db.appRole],
    );
    if (attempt.code !== undefined) expect(rows[0].n).toBe(0);
  });

  it('even a valid B value as the role default (planted by someone with more rights) is overridden on new connections', async () => {
    await db.admin.query(`alter role ${db.appRole} set tenantry.context = ${lit(sign(B, inFiveMinutes(), db.contextSecret))}`);
    try {
      if (!behindPgbouncer) {
        // control: a bare app connection now reads B's rows, so only the pool's override protects
        const raw = await rawAppClient();
        try {
          expect(bodiesOf(await raw.query('select body from notes order by body'))).toEqual(BODIES[B]);
        } finally {
          await raw.end();
        }
      }
      const fresh = db.appPool({ max: 2 });
      expect((await fresh.query('select body from notes')).rows).toEqual([]);
      expect((await fresh.query('select body from notes where body <> $1', [''])).rows).toEqual([]);
      expect(bodiesOf(await runAs(A, () => fresh.query('select body from notes order by body')))).toEqual(BODIES[A]);
      expect(bodiesOf(await runAs(C, () => fresh.query('select body from notes where body <> $1', [''])))).toEqual(BODIES[C]);
      await fresh.end();
    } finally {
      await db.admin.query(`alter role ${db.appRole} reset tenantry.context`);
    }
  });
});

describe('signed mode: replayed, tampered and expired values', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const forgeries: [string, () => string][] = [
    ['a bare uuid', () => B],
    ['a flipped signature digit', () => {
      const v = sign(B, inFiveMinutes(), db.contextSecret);
      return v.slice(0, -1) + (v.endsWith('0') ? '1' : '0');
    }],
    ['A’s signature on B’s uuid', () => B + sign(A, inFiveMinutes(), db.contextSecret).slice(36)],
    ['a later expiry under the old signature', () => {
      const v = sign(B, inFiveMinutes(), db.contextSecret);
      const [uuid, expiry, mac] = v.split('.') as [string, string, string];
      return `${uuid}.${Number(expiry) + 86_400}.${mac}`;
    }],
    ['an expired value (correctly signed)', () => sign(B, now() - 5, db.contextSecret)],
    ['a value signed with another secret', () => sign(B, inFiveMinutes(), randomBytes(32).toString('base64url'))],
    ['an upper-case copy of a valid value', () => sign(B, inFiveMinutes(), db.contextSecret).toUpperCase()],
    ['a valid value with a trailing newline', () => `${sign(B, inFiveMinutes(), db.contextSecret)}\n`],
    ['a valid value with a suffix', () => `${sign(B, inFiveMinutes(), db.contextSecret)}.00`],
    ['a valid value with a prefix', () => `x${sign(B, inFiveMinutes(), db.contextSecret)}`],
    ['an injection-shaped value', () => `${B}'); select 1; --`],
  ];

  it('control: a value correctly signed with the real secret does select B (the secret is the only barrier)', async () => {
    const raw = await rawAppClient();
    try {
      await raw.query('begin');
      await raw.query(`select set_config('tenantry.context', $1, true)`, [sign(B, inFiveMinutes(), db.contextSecret)]);
      expect(bodiesOf(await raw.query('select body from notes order by body'))).toEqual(BODIES[B]);
      await raw.query('rollback');
    } finally {
      await raw.end();
    }
  });

  it.each(forgeries)('%s is rejected with TR001 from a bare app connection', async (_name, forge) => {
    const raw = await rawAppClient();
    try {
      await raw.query('begin');
      await raw.query(`select set_config('tenantry.context', $1, true)`, [forge()]);
      const o = await outcome(() => raw.query('select body from notes'));
      expect(o).toEqual({ bodies: [], code: 'TR001' });
      await raw.query('rollback');
    } finally {
      await raw.end();
    }
  });

  it.each(forgeries)('%s is rejected with TR001 when injected under tenant A', async (_name, forge) => {
    const o = await outcome(() => runAs(A, () => pool.query(`select set_config('tenantry.context', ${lit(forge())}, true); select body from notes`)));
    expect(o).toEqual({ bodies: [], code: 'TR001' });
  });

  it('rotating the secret makes values signed with the old one fail at once', async () => {
    const rotated = await createTestDatabase();
    try {
      await seed(rotated);
      const oldValue = sign(B, inFiveMinutes(), rotated.contextSecret);
      const { setContextSecret } = await import('../../src/policy/installer.js');
      await setContextSecret(rotated.admin, randomBytes(32).toString('base64url'));
      const raw = new pg.Client({ connectionString: rotated.appUrl });
      await raw.connect();
      try {
        await raw.query('begin');
        await raw.query(`select set_config('tenantry.context', $1, true)`, [oldValue]);
        expect(await outcome(() => raw.query('select body from notes'))).toEqual({ bodies: [], code: 'TR001' });
        await raw.query('rollback');
      } finally {
        await raw.end();
      }
    } finally {
      await rotated.drop();
    }
  });
});

describe('signed mode: a spy session watching pg_stat_activity', () => {
  it('never sees a context value or a tenant id while many tenants run queries, and what it could replay fails', async () => {
    const tenants = Array.from({ length: 24 }, () => randomUUID());
    for (const t of tenants) await db.owner.query(`insert into notes (tenant_id, body) values ($1, 'spy-target')`, [t]);
    const workload = db.appPool({ max: 8 });
    const spy = await rawAppClient();
    const found = new Set<string>();
    let polls = 0;
    let workloadSightings = 0;
    let spying = true;
    const watch = (async () => {
      while (spying) {
        const { rows } = await spy.query(
          `select query from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and query is not null`,
        );
        polls++;
        for (const { query } of rows as { query: string }[]) {
          if (/from notes/.test(query)) workloadSightings++;
          const signed = SIGNED_VALUE.exec(query);
          if (signed) found.add(signed[0]);
          for (const t of [...tenants, A, B, C]) if (query.includes(t)) found.add(query);
        }
      }
    })();

    const work = tenants.map((tenant, i) =>
      runAs(tenant, async () => {
        for (let round = 0; round < 6; round++) {
          const simple = await workload.query(`select body, pg_sleep(0.002) from notes`);
          const extended = await workload.query(`select body, pg_sleep(0.002) from notes where body = $1`, ['spy-target']);
          expect(bodiesOf(simple)).toEqual(['spy-target']);
          expect(bodiesOf(extended)).toEqual(['spy-target']);
          const client = await workload.connect();
          try {
            await client.query('begin');
            await client.query(`select body, pg_sleep(0.002) from notes where body like $1`, ['spy%']);
            await client.query(`select count(*), pg_sleep(0.002) from notes`);
            await client.query(i % 2 ? 'commit' : 'rollback');
          } finally {
            client.release();
          }
        }
      }),
    );
    try {
      await Promise.all(work);
    } finally {
      spying = false;
      await watch;
      await spy.end();
    }
    // control: the spy really watched the workload, so finding nothing means something
    expect(polls).toBeGreaterThan(10);
    expect(workloadSightings).toBeGreaterThan(10);
    expect([...found]).toEqual([]);
    expect(SIGNED_VALUE.test(sign(B, inFiveMinutes(), db.contextSecret)), 'the spy’s pattern matches a real value').toBe(true);

    // anything found (nothing, above) and anything an attacker can make up must fail on replay
    const replays = [...found, B, sign(B, inFiveMinutes(), randomBytes(32).toString('hex'))];
    for (const value of replays) {
      const o = await outcome(() => runAs(A, () => pool.query(`select set_config('tenantry.context', ${lit(value)}, true); select body from notes`)));
      expect(o).toEqual({ bodies: [], code: 'TR001' });
    }
    await db.owner.query(`delete from notes where body = 'spy-target'`);
  });
});

describe('signed mode: session state planted on a pooled connection', () => {
  // BUG (core, src/policy/install-sql.ts): install grants TEMPORARY on the database to the app
  // role (and PUBLIC keeps it by default). Injected SQL under one tenant can then leave
  // session-lived objects on a pooled (or pgbouncer) server session: a temp table or temp view
  // named like a tenant table shadows it for every later statement on that session, and a
  // pg_temp function in a temp view copies whatever the next tenant reads. Signed context does
  // not help: the later tenant's own, valid context is what reads its rows. Fix idea: revoke
  // TEMPORARY from PUBLIC and the app role at install (and check it in doctor).
  it.fails('BUG: a temp table/view planted by tenant B does not capture tenant A’s writes or reads', async () => {
    const single = directSinglePool();
    try {
      const plant = await outcome(() =>
        runAs(B, () =>
          single.query(`
            create temp table notes (like public.notes including defaults);
            create temp table loot (tenant_id uuid, body text);
            create function pg_temp.steal(n public.notes) returns boolean language sql volatile
              as $f$ insert into pg_temp.loot values (n.tenant_id, n.body) returning true $f$`),
        ),
      );
      if (plant.code !== undefined) {
        expect(plant.code).toBe('42501'); // refused: nothing can be planted
        return;
      }
      // A writes on the same session: the insert lands in B's temp table
      await runAs(A, () => single.query(`insert into notes (tenant_id, body) values ($1, $2)`, [A, 'a-written-secret']));
      const capturedWrites = await runAs(B, () => single.query(`select body from pg_temp.notes where body <> $1`, ['']));
      // B swaps the table for a view that copies every row A reads
      await runAs(B, () => single.query(`drop table pg_temp.notes; create temp view notes as select * from public.notes n where pg_temp.steal(n)`));
      await runAs(A, () => single.query(`select body from notes where body <> $1`, ['']));
      const capturedReads = await runAs(B, () => single.query(`select body from pg_temp.loot where body <> $1`, ['']));
      expect([...bodiesOf(capturedWrites), ...bodiesOf(capturedReads)]).toEqual([]);
    } finally {
      await single.end();
    }
  });

  // BUG (core, src/data/tenant-client.ts #contextFor): in an aborted transaction ('E') every
  // statement is sent without the context prefix, not only ROLLBACK. A multi-statement string
  // `rollback; select …` then runs its SELECT after the rollback with the *session-level* value,
  // which SQL injected under tenant A can plant by copying A's own valid context to session
  // level. A statement issued under tenant B then reads A's rows. (The same holds in 'T' for a
  // mismatched tenant whose text merely starts with ROLLBACK.) Fix idea: send without prefix
  // only a lone ROLLBACK/ABORT/COMMIT/ROLLBACK TO SAVEPOINT; prefix or refuse anything else.
  it.fails('BUG: after an error, `rollback; select …` under B does not run with a session value planted under A', async () => {
    const single = directSinglePool();
    await runAs(A, () => single.query(`select set_config('tenantry.context', current_setting('tenantry.context'), $1)`, [false]));
    const client = await single.connect();
    let read: { bodies: string[]; code?: string };
    try {
      read = await runAs(B, async () => {
        await client.query('begin');
        await client.query('select 1/0').catch(() => undefined);
        return outcome(() => client.query(`rollback; select body from notes order by body`));
      });
    } finally {
      client.release(new Error('discard this session'));
      await single.end();
    }
    for (const body of read.bodies) expect(BODIES[B]).toContain(body);
  });
});

describe('unsigned mode (documented trade-off)', () => {
  let udb: TestDatabase;
  let upool: TenantPool;
  beforeAll(async () => {
    udb = await createTestDatabase({ contextMode: 'unsigned' });
    await seed(udb);
    upool = udb.appPool({ contextMode: 'unsigned' });
  });
  afterAll(() => udb?.drop());

  it('KNOWN WEAKNESS: injected set_config under A DOES choose tenant B (docs/security.md says so)', async () => {
    const multi = await runAs(A, () => upool.query(`select set_config('tenantry.context', ${lit(B)}, true); select body from notes order by body`));
    expect(bodiesOf(multi)).toEqual(BODIES[B]);
    const local = await runAs(A, () => upool.query(`set local tenantry.context = ${lit(B)}; select body from notes order by body`));
    expect(bodiesOf(local)).toEqual(BODIES[B]);
  });

  it('KNOWN WEAKNESS: a bare app connection can name any tenant', async () => {
    const raw = new pg.Client({ connectionString: udb.appUrl });
    await raw.connect();
    try {
      await raw.query('begin');
      await raw.query(`select set_config('tenantry.context', $1, true)`, [C]);
      expect(bodiesOf(await raw.query('select body from notes'))).toEqual(BODIES[C]);
      await raw.query('rollback');
    } finally {
      await raw.end();
    }
  });

  it('still: a planted session value does not reach the next borrower, and no tenant means no rows', async () => {
    const single = udb.appPool({ contextMode: 'unsigned', max: 1 });
    await runAs(A, () => single.query(`select set_config('tenantry.context', $1, false)`, [B]));
    expect((await single.query('select body from notes')).rows).toEqual([]);
    expect((await single.query('select body from notes where body <> $1', [''])).rows).toEqual([]);
    expect(bodiesOf(await runAs(C, () => single.query('select body from notes where body <> $1', [''])))).toEqual(BODIES[C]);
  });

  it('still: statements without injection see only their tenant', async () => {
    expect(bodiesOf(await runAs(A, () => upool.query('select body from notes order by body')))).toEqual(BODIES[A]);
    expect(bodiesOf(await runAs(B, () => upool.query('select body from notes where body <> $1 order by body', [''])))).toEqual(BODIES[B]);
    const forged = await outcome(() => runAs(A, () => upool.query(`insert into notes (tenant_id, body) values ($1, 'x')`, [B])));
    expect(forged.code).toBe('42501');
  });
});
