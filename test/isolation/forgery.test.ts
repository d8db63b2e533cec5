// Forging the tenant context: SQL injected into a tenant's statements tries to choose another
// tenant (set_config, SET, DO blocks, multi-statement strings, session-level values, role
// defaults), a spy session looks for context values in pg_stat_activity, and tampered values are
// replayed. Signed mode must refuse all of it; unsigned mode's known weakness is pinned down by a test.
//
// A multi-statement string cannot share the prefix's transaction, so outside a transaction the
// client refuses it under a tenant (UNSUPPORTED, nothing sent). Each injection is therefore tried
// three ways: as one string outside a transaction (refused before it is sent), as one string
// inside a transaction begun under A (it reaches PostgreSQL and runs in A's transaction), and as
// single statements (DO blocks, set_config in the reading statement, set_config on its own).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { runAs, runWithoutTenant } from '../../src/context/tenant-context.js';
import { TenantPool as TenantPoolClass, type TenantPool } from '../../src/data/tenant-pool.js';
import { hasMultipleStatements } from '../../src/data/statement-text.js';
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

/**
 * The client's transaction status (I, T or E) once the server has answered the last statement.
 * pg settles a failed statement's promise on the ErrorResponse, before its ReadyForQuery:
 * wait for that ReadyForQuery. A statement refused by the client sends nothing and waits for nothing.
 */
async function statusOf(client: pg.PoolClient): Promise<string> {
  const c = client as unknown as { readyForQuery: boolean; connection: NodeJS.EventEmitter; transactionStatus: string };
  if (!c.readyForQuery) await new Promise((resolve) => c.connection.once('readyForQuery', resolve));
  return c.transactionStatus;
}

/**
 * What the server last recorded of one backend (pg_stat_activity: state change time and query
 * text). It changes whenever that session runs anything, so an unchanged value shows that a
 * refused statement never reached the server. Direct connections only (the pid is the backend's).
 */
async function lastActivity(client: pg.PoolClient): Promise<string> {
  const pid = (client as unknown as { processID: number }).processID;
  const { rows } = await db.admin.query(
    `select state_change::text || ' | ' || coalesce(query, '') as seen from pg_stat_activity where pid = $1`,
    [pid],
  );
  expect(rows, `backend ${pid} is visible to the superuser`).toHaveLength(1);
  return rows[0].seen;
}

/** A DO block that sets the context to `value` and then leaks what it can read through an error. */
const doBlockLeak = (value: string) =>
  `do $$ begin perform set_config('tenantry.context', ${lit(value)}, true); raise exception 'leak: %', (select string_agg(body, ',' order by body) from notes); end $$`;

async function seed(target: TestDatabase): Promise<void> {
  await target.owner.query(`
    create table notes (tenant_id uuid not null, id uuid not null default gen_random_uuid(), body text not null, primary key (tenant_id, id));
    select tenantry.register_tenant_table('notes');
  `);
  for (const [tenant, bodies] of Object.entries(BODIES)) {
    for (const body of bodies)
      await target.owner.query(`insert into notes (tenant_id, body) values ($1, $2)`, [tenant, body]);
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  await seed(db);
  pool = db.appPool();
});
afterAll(() => db?.drop());

describe('signed mode: injected SQL cannot choose another tenant', () => {
  // [name, payload, is it several statements]
  const payloads: [string, string, boolean][] = [
    [
      'set_config(…, true) before the read',
      `select set_config('tenantry.context', ${lit(B)}, true); select body from notes`,
      true,
    ],
    ['SET LOCAL before the read', `set local tenantry.context = ${lit(B)}; select body from notes`, true],
    ['SET SESSION before the read', `set session tenantry.context = ${lit(B)}; select body from notes`, true],
    [
      'set_config(…, false) before the read',
      `select set_config('tenantry.context', ${lit(B)}, false); select body from notes`,
      true,
    ],
    ['a DO block that leaks through an error message', doBlockLeak(B), false],
    [
      'a DO block that sets SET LOCAL through EXECUTE',
      `do $$ begin execute format('set local tenantry.context = %L', ${lit(B)}); raise exception 'leak: %', (select string_agg(body, ',') from notes); end $$`,
      false,
    ],
    [
      'set_config inside the same statement',
      `select n.body from (select set_config('tenantry.context', ${lit(B)}, true) as s) s, notes n`,
      false,
    ],
    [
      'set_config in a CTE',
      `with s as materialized (select set_config('tenantry.context', ${lit(B)}, true)) select body from notes, s`,
      false,
    ],
    ['RESET before the read', `reset tenantry.context; select body from notes`, true],
  ];

  it.each(payloads)(
    '%s, sent as one string under A outside a transaction: refused before it is sent, or never gains B rows',
    async (_name, sql, multi) => {
      expect(hasMultipleStatements(sql), 'the payload is (or is not) several statements').toBe(multi);
      const o = await outcome(() => runAs(A, () => pool.query(sql)));
      if (multi) {
        expect(o).toEqual({ bodies: [], code: 'UNSUPPORTED' });
      } else {
        expectNoForeignRows(o, A);
        expect(o.code, 'a forged bare uuid must be rejected by PostgreSQL, not silently read').not.toBe('P0001');
      }
    },
  );

  it('a refused multi-statement string never reaches the server (and the check would see it if it did)', async () => {
    const single = directSinglePool();
    const client = await single.connect();
    try {
      await runAs(A, () => client.query('select 1 where $1', [true]));
      const multiPayloads = payloads.filter(([, , multi]) => multi);
      expect(multiPayloads.length).toBeGreaterThan(3);
      for (const [name, sql] of multiPayloads) {
        const before = await lastActivity(client);
        expect(await outcome(() => runAs(A, () => client.query(sql))), name).toEqual({
          bodies: [],
          code: 'UNSUPPORTED',
        });
        expect(await lastActivity(client), `${name}: nothing was sent`).toBe(before);
      }
      // no session-level value was planted (the SET SESSION / set_config(…, false) payloads did not run)
      expect((await bare(client, `select coalesce(current_setting('tenantry.context', true), '') as v`)).rows).toEqual([
        { v: '' },
      ]);
      // control: a statement that is sent does change what the server recorded
      const before = await lastActivity(client);
      await runAs(A, () => client.query('select body from notes'));
      expect(await lastActivity(client)).not.toBe(before);
    } finally {
      client.release();
      await single.end();
    }
  });

  it('a payload injected into a statement with parameters goes out with the extended protocol, where PostgreSQL refuses a second statement (42601)', async () => {
    const text = `select body from notes where body <> $1; select set_config('tenantry.context', ${lit(B)}, false); select body from notes`;
    expect(hasMultipleStatements(text)).toBe(true);
    expect(await outcome(() => runAs(A, () => pool.query(text, [''])))).toEqual({ bodies: [], code: '42601' });
    const client = await pool.connect();
    try {
      await runAs(A, async () => {
        await client.query('begin');
        expect(await outcome(() => client.query(text, ['']))).toEqual({ bodies: [], code: '42601' });
        await client.query('rollback');
        expect(bodiesOf(await client.query('select body from notes order by body'))).toEqual(BODIES[A]);
      });
    } finally {
      client.release();
    }
  });

  it.each(payloads)(
    '%s, sent as one string inside a transaction begun under A: reaches PostgreSQL, never gains B rows',
    async (_name, sql) => {
      const client = await pool.connect();
      try {
        await runAs(A, async () => {
          await client.query('begin');
          const o = await outcome(() => client.query(sql));
          expectNoForeignRows(o, A);
          expect(o.code, 'a forged bare uuid must be rejected by PostgreSQL, not silently read').not.toBe('P0001');
          await client.query('rollback');
          expect(await statusOf(client)).toBe('I');
          // nothing the payload did outlives A's transaction
          expect(bodiesOf(await client.query('select body from notes order by body'))).toEqual(BODIES[A]);
        });
        // no rows without a tenant
        const after = await outcome(() => runWithoutTenant(() => client.query('select body from notes')));
        // (a DO block or a multi-statement text quarantined the session: refused outright then)
        expect(after.bodies).toEqual([]);
        expect([undefined, 'UNSUPPORTED']).toContain(after.code);
      } finally {
        client.release();
      }
    },
  );

  it('set_config, SET LOCAL, SET SESSION, RESET or a DO block as their own statements in A’s transaction are overridden by the next statement’s context', async () => {
    const client = await pool.connect();
    try {
      await runAs(A, async () => {
        await client.query('begin');
        const plants: [string, unknown[]?][] = [
          [`select set_config('tenantry.context', $1, true)`, [B]],
          [`select set_config('tenantry.context', $1, false)`, [B]],
          [`select set_config('tenantry.context', ${lit(B)}, true)`],
          [`set local tenantry.context = ${lit(B)}`],
          [`set session tenantry.context = ${lit(B)}`],
          ['reset tenantry.context'],
          [`do $$ begin perform set_config('tenantry.context', ${lit(B)}, true); end $$`],
        ];
        for (const [plant, values] of plants) {
          await client.query(plant, values); // setting a value is not checked; reading with it is
          expect(bodiesOf(await client.query('select body from notes order by body')), plant).toEqual(BODIES[A]);
          expect(
            bodiesOf(await client.query('select body from notes where body <> $1 order by body', [''])),
            plant,
          ).toEqual(BODIES[A]);
        }
        await client.query('rollback');
      });
    } finally {
      client.release();
    }
  });

  it('a session-level value planted by one borrower is not inherited by the next ones', async () => {
    const single = db.appPool({ max: 1 });
    // worst case: a value validly signed for B (as if it had leaked) planted at session level
    const planted = sign(B, inFiveMinutes(), db.contextSecret);
    // through the pool, the plant quarantines its session (test/isolation/session-settings.test.ts):
    // planted here where the pool does not look (as a function of the app's could), the session kept
    await runAs(A, () => single.query(`select set_config('tenantry.context', $1, false)`, [planted]));
    expect(await runAs(A, () => single.query(`select current_setting('tenantry.context', true) as v`))).toMatchObject({
      rows: [{ v: expect.not.stringContaining(B) }],
    });
    const client = await single.connect();
    await bare(client, `select set_config('tenantry.context', ${lit(planted)}, false)`);
    try {
      if (!behindPgbouncer) {
        // control: the plant really is on this session (behind pgbouncer the server session may differ)
        const raw = await bare(client, `select current_setting('tenantry.context', true) as v`);
        expect(raw.rows[0].v).toBe(planted);
      }
      // parameterless statements carry the prefix too (they go out with the extended protocol)
      const none = await runWithoutTenant(() => client.query('select body from notes'));
      expect(none.rows).toEqual([]);
      expect(await statusOf(client)).toBe('I');
      const noneExtended = await runWithoutTenant(() => client.query('select body from notes where body <> $1', ['']));
      expect(noneExtended.rows).toEqual([]);
      const asC = await runAs(C, () => client.query('select body from notes where body <> $1 order by body', ['']));
      expect(bodiesOf(asC)).toEqual(BODIES[C]);
      const asA = await runAs(A, () => client.query('select body from notes order by body'));
      expect(bodiesOf(asA)).toEqual(BODIES[A]);
      // a transaction under C, with a multi-statement string in it, still sees only C
      const inTx = await runAs(C, async () => {
        await client.query('begin');
        const r = await client.query('select 1 as one; select body from notes order by body');
        await client.query('commit');
        return r;
      });
      expect(bodiesOf(inTx)).toEqual(BODIES[C]);
    } finally {
      client.release(new Error('discard the planted session'));
      await single.end();
    }
  });

  it('ALTER ROLE current_user SET tenantry.context is refused to the app role, or changes nothing', async () => {
    const attempt = await outcome(() =>
      runAs(A, () => pool.query(`alter role current_user set tenantry.context = ${lit(B)}`)),
    );
    if (attempt.code !== undefined) {
      // the pool refuses ALTER ROLE before sending it; PostgreSQL 15+ refuses this one too (42501)
      expect(attempt.code).toBe('UNSUPPORTED');
      const raw = new pg.Client({ connectionString: db.appUrl });
      await raw.connect();
      const direct = await outcome(() => raw.query(`alter role current_user set tenantry.context = ${lit(B)}`)).finally(
        () => raw.end(),
      );
      expect(['42501', undefined]).toContain(direct.code);
      if (direct.code === undefined) await db.admin.query(`alter role ${db.appRole} reset tenantry.context`);
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
    await db.admin.query(
      `alter role ${db.appRole} set tenantry.context = ${lit(sign(B, inFiveMinutes(), db.contextSecret))}`,
    );
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
      expect(bodiesOf(await runAs(C, () => fresh.query('select body from notes where body <> $1', [''])))).toEqual(
        BODIES[C],
      );
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
    [
      'a flipped signature digit',
      () => {
        const v = sign(B, inFiveMinutes(), db.contextSecret);
        return v.slice(0, -1) + (v.endsWith('0') ? '1' : '0');
      },
    ],
    ['A’s signature on B’s uuid', () => B + sign(A, inFiveMinutes(), db.contextSecret).slice(36)],
    [
      'a later expiry under the old signature',
      () => {
        const v = sign(B, inFiveMinutes(), db.contextSecret);
        const [uuid, expiry, mac] = v.split('.') as [string, string, string];
        return `${uuid}.${Number(expiry) + 86_400}.${mac}`;
      },
    ],
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

  it.each(forgeries)(
    '%s is rejected with TR001 when injected under tenant A (DO block; one string in A’s transaction)',
    async (_name, forge) => {
      const value = forge();
      // a single statement that sets the value and reads with it
      expect(await outcome(() => runAs(A, () => pool.query(doBlockLeak(value))))).toEqual({
        bodies: [],
        code: 'TR001',
      });
      // set_config and the read in one string, inside a transaction begun under A (sent without a prefix)
      const client = await pool.connect();
      try {
        await runAs(A, async () => {
          await client.query('begin');
          const o = await outcome(() =>
            client.query(`select set_config('tenantry.context', ${lit(value)}, true); select body from notes`),
          );
          expect(o).toEqual({ bodies: [], code: 'TR001' });
          expect(await statusOf(client)).toBe('E');
          await client.query('rollback');
          // set_config on its own, then a separate read: the read's prefix sets A again
          await client.query('begin');
          await client.query(`select set_config('tenantry.context', $1, true)`, [value]);
          expect(bodiesOf(await client.query('select body from notes order by body'))).toEqual(BODIES[A]);
          await client.query('commit');
        });
      } finally {
        client.release();
      }
      // the same string outside a transaction never leaves the client
      const refused = await outcome(() =>
        runAs(A, () =>
          pool.query(`select set_config('tenantry.context', ${lit(value)}, true); select body from notes`),
        ),
      );
      expect(refused).toEqual({ bodies: [], code: 'UNSUPPORTED' });
    },
  );

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
    // backends of earlier tests (kept by their pools: an ordinary SQL error no longer closes a
    // connection) show their last statement, which an earlier test may have written with a tenant
    // id in its text on purpose: the spy watches this workload's backends only
    const { rows: earlier } = await spy.query<{ pid: number }>(
      'select pid from pg_stat_activity where datname = current_database()',
    );
    const before = new Set(earlier.map((r) => r.pid));
    const found = new Set<string>();
    let polls = 0;
    let workloadSightings = 0;
    let spying = true;
    const watch = (async () => {
      while (spying) {
        const { rows } = await spy.query(
          `select pid, query from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and query is not null`,
        );
        polls++;
        for (const { pid, query } of rows as { pid: number; query: string }[]) {
          if (before.has(pid)) continue;
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
          // parameterless (sent with the extended protocol behind the prefix) and parameterised
          const parameterless = await workload.query(`select body, pg_sleep(0.002) from notes`);
          const parameterised = await workload.query(`select body, pg_sleep(0.002) from notes where body = $1`, [
            'spy-target',
          ]);
          expect(bodiesOf(parameterless)).toEqual(['spy-target']);
          expect(bodiesOf(parameterised)).toEqual(['spy-target']);
          const client = await workload.connect();
          try {
            await client.query('begin');
            await client.query(`select body, pg_sleep(0.002) from notes where body like $1`, ['spy%']);
            await client.query(`select count(*), pg_sleep(0.002) from notes`);
            // a multi-statement string: a simple Query, sent without a prefix inside the transaction
            const multi = await client.query(
              `select body, pg_sleep(0.002) from notes where body like 'spy%'; select count(*) from notes`,
            );
            expect(bodiesOf(multi)).toEqual(['spy-target']);
            await client.query(i % 2 ? 'commit' : 'rollback');
          } finally {
            client.release();
          }
          // no tenant: a multi-statement string inside a transaction begun with no tenant sees no rows
          // (outside a transaction it would run with whatever the session holds: see the BUG tests below)
          const none = await runWithoutTenant(async () => {
            const c = await workload.connect();
            try {
              await c.query('begin');
              const r = await c.query(`select body, pg_sleep(0.002) from notes; select 1 as one`);
              await c.query('commit');
              return r;
            } finally {
              c.release();
            }
          });
          expect(bodiesOf(none)).toEqual([]);
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
    expect(
      SIGNED_VALUE.test(sign(B, inFiveMinutes(), db.contextSecret)),
      'the spy’s pattern matches a real value',
    ).toBe(true);

    // anything found (nothing, above) and anything an attacker can make up must fail on replay:
    // in a DO block, and as one string inside a transaction begun under A
    const replays = [...found, B, sign(B, inFiveMinutes(), randomBytes(32).toString('hex'))];
    for (const value of replays) {
      expect(await outcome(() => runAs(A, () => pool.query(doBlockLeak(value))))).toEqual({
        bodies: [],
        code: 'TR001',
      });
      const client = await pool.connect();
      try {
        const o = await runAs(A, async () => {
          await client.query('begin');
          const read = await outcome(() =>
            client.query(`select set_config('tenantry.context', ${lit(value)}, true); select body from notes`),
          );
          await client.query('rollback');
          return read;
        });
        expect(o).toEqual({ bodies: [], code: 'TR001' });
      } finally {
        client.release();
      }
    }
    await db.owner.query(`delete from notes where body = 'spy-target'`);
  });
});

describe('signed mode: session state planted on a pooled connection', () => {
  // Temporary objects come first on the search path: a temp table or view named like a tenant
  // table, planted by injected SQL under one tenant on a pooled (or pgbouncer) session, would
  // capture the next borrower's writes and reads, with that borrower's own valid context. Install
  // revokes TEMPORARY on the database from PUBLIC and the app role (doctor: APP_CAN_CREATE_TEMP).
  const PLANTS = [
    `create temp table notes (like public.notes including defaults)`,
    `create temp table loot (tenant_id uuid, body text)`,
    `create temp view notes as select * from public.notes`,
    `create function pg_temp.steal(n public.notes) returns boolean language sql volatile as $f$ select true $f$`,
    `select * into temp table notes from public.notes`,
    `create temp sequence notes_seq`,
    `do $$ begin execute 'create temp table notes (like public.notes including defaults)'; end $$`,
  ];
  /** The plants after which the session still serves other tenants (a DO block quarantines it: tenant-client.ts). */
  const SESSION_PLANTS = PLANTS.filter((p) => !p.startsWith('do '));

  /** Temporary relations and functions that exist in any session of this database. */
  async function temporaryObjects(): Promise<number> {
    const { rows } = await db.admin.query(`
      select (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname like 'pg\_temp\_%')
           + (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname like 'pg\_temp\_%') as n`);
    return Number(rows[0].n);
  }

  it('the app role cannot plant a temp table, view or pg_temp function (42501), so nothing captures A’s writes or reads', async () => {
    const has = await db.admin.query(`select has_database_privilege($1, current_database(), 'TEMPORARY') as temp`, [
      db.appRole,
    ]);
    expect(has.rows).toEqual([{ temp: false }]);
    const single = directSinglePool();
    // one held session for every step (pool.query would discard the session after each refusal)
    const client = await single.connect();
    try {
      // each plant as a single statement under B: it reaches PostgreSQL, which refuses it
      for (const plant of SESSION_PLANTS) {
        expect(await outcome(() => runAs(B, () => client.query(plant))), plant).toEqual({ bodies: [], code: '42501' });
      }
      // the DO block too, on a session of its own: PostgreSQL refuses what it executes, and the
      // session is quarantined (a DO could have replaced a named statement): it serves A no more
      const doPlant = PLANTS.find((p) => p.startsWith('do '))!;
      const quarantined = await pool.connect();
      try {
        expect(await outcome(() => runAs(B, () => quarantined.query(doPlant)))).toEqual({ bodies: [], code: '42501' });
        expect(
          await outcome(() =>
            runAs(A, () => quarantined.query(`insert into notes (tenant_id, body) values ($1, $2)`, [A, 'x'])),
          ),
        ).toEqual({ bodies: [], code: 'UNSUPPORTED' });
      } finally {
        quarantined.release();
      }
      // as one string outside a transaction, it never leaves the client
      expect(await outcome(() => runAs(B, () => client.query(SESSION_PLANTS.join(';\n'))))).toEqual({
        bodies: [],
        code: 'UNSUPPORTED',
      });
      // all of them as one string inside B's transaction (sent without a prefix): refused too, on
      // a session of its own (a multi-statement text quarantines its session, like the DO block)
      const own = await pool.connect();
      try {
        const inTx = await runAs(B, async () => {
          await own.query('begin');
          const o = await outcome(() => own.query(SESSION_PLANTS.join(';\n')));
          await own.query('rollback');
          return o;
        });
        expect(inTx).toEqual({ bodies: [], code: '42501' });
      } finally {
        own.release();
      }
      expect(await temporaryObjects()).toBe(0);

      // A then writes and reads on that same session: the real table gets the row, nothing else
      await runAs(A, () =>
        client.query(`insert into notes (tenant_id, body) values ($1, $2)`, [A, 'a-written-secret']),
      );
      expect(
        bodiesOf(await runAs(A, () => client.query(`select body from notes where body = $1`, ['a-written-secret']))),
      ).toEqual(['a-written-secret']);
      expect((await db.admin.query(`select tenant_id from public.notes where body = 'a-written-secret'`)).rows).toEqual(
        [{ tenant_id: A }],
      );
      expect(
        await outcome(() => runAs(B, () => client.query(`select body from pg_temp.notes where body <> $1`, ['']))),
      ).toEqual({ bodies: [], code: '42P01' });
      expect(
        await outcome(() => runAs(B, () => client.query(`select body from pg_temp.loot where body <> $1`, ['']))),
      ).toEqual({ bodies: [], code: '42P01' });
      expect(await temporaryObjects()).toBe(0);
    } finally {
      client.release();
      await single.end();
      await db.owner.query(`delete from notes where body = 'a-written-secret'`);
    }
  });

  it('control: with TEMPORARY granted back, the same plant does capture A’s write and read (what the revoke prevents)', async () => {
    await db.admin.query(`grant temporary on database ${db.name} to ${db.appRole}`);
    const single = directSinglePool();
    try {
      await runAs(B, () => single.query(`create temp table notes (like public.notes including defaults)`));
      await runAs(A, () => single.query(`insert into notes (tenant_id, body) values ($1, $2)`, [A, 'a-captured']));
      const captured = await runAs(B, () => single.query(`select body from pg_temp.notes where body <> $1`, ['']));
      expect(captured.rows).toEqual([{ body: 'a-captured' }]);
      // the result check (on by default) still refuses B a row carrying A's tenant_id, even from a temp table
      await expect(
        runAs(B, () => single.query(`select tenant_id, body from pg_temp.notes where body <> $1`, [''])),
      ).rejects.toMatchObject({
        code: 'CROSS_TENANT_ROW',
      });
      expect(
        (await db.admin.query(`select count(*)::int as n from public.notes where body = 'a-captured'`)).rows,
      ).toEqual([{ n: 0 }]);
    } finally {
      await single.end();
      await db.admin.query(`revoke temporary on database ${db.name} from ${db.appRole}`);
    }
    expect(
      (await db.admin.query(`select has_database_privilege($1, current_database(), 'TEMPORARY') as temp`, [db.appRole]))
        .rows,
    ).toEqual([{ temp: false }]);
  });

  /**
   * Plants A's own valid context at session level on a one-connection pool (SQL injected under A
   * can copy it: `set_config('tenantry.context', current_setting('tenantry.context'), false)`),
   * checks it is there, and hands the checked-out client of that session to `fn`.
   */
  async function withPlantedSession<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const single = directSinglePool();
    const client = await single.connect();
    // straight to the session (through the pool the plant would quarantine it: session-settings.test.ts),
    // as a function of the app's that sets the setting at session level could
    await bare(
      client,
      `select set_config('tenantry.context', ${lit(sign(A, inFiveMinutes(), db.contextSecret))}, false)`,
    );
    try {
      const planted = (await bare(client, `select current_setting('tenantry.context', true) as v`)).rows[0].v as string;
      expect(planted, 'control: A’s valid value is on the session').toMatch(SIGNED_VALUE);
      expect(planted.startsWith(A)).toBe(true);
      return await fn(client);
    } finally {
      client.release(new Error('discard the planted session'));
      await single.end();
    }
  }

  it('after an error, `rollback; select …` under B is refused (UNSUPPORTED): it cannot run with a session value planted under A', async () => {
    await withPlantedSession((client) =>
      runAs(B, async () => {
        await client.query('begin');
        expect((await outcome(() => client.query('select 1/0'))).code).toBe('22012');
        expect(await statusOf(client)).toBe('E');
        for (const text of [
          'rollback; select body from notes order by body',
          'abort; select body from notes',
          'commit; select body from notes',
          'rollback; begin; select body from notes; commit',
        ]) {
          expect(await outcome(() => client.query(text)), text).toEqual({ bodies: [], code: 'UNSUPPORTED' });
          expect(await statusOf(client), `${text}: nothing was sent`).toBe('E');
        }
        // a single statement is prefixed and fails as PostgreSQL makes it fail in an aborted transaction
        expect(await outcome(() => client.query('select body from notes'))).toEqual({ bodies: [], code: '25P02' });
        // a lone ROLLBACK runs (it needs no tenant), and the next statements see only B
        await client.query('rollback');
        expect(await statusOf(client)).toBe('I');
        expect(bodiesOf(await client.query('select body from notes order by body'))).toEqual(BODIES[B]);
        expect(bodiesOf(await client.query('select body from notes where body <> $1 order by body', ['']))).toEqual(
          BODIES[B],
        );
      }),
    );
  });

  // Was a bypass: in an open transaction, multi-statement text is sent without a prefix (the
  // transaction carries the context), but `commit; select …` ran its SELECT after the COMMIT
  // with the *session-level* value, which injected SQL under another tenant can plant. Now text
  // that begins or ends a transaction is refused inside one (UNSUPPORTED).
  it('in B’s open transaction, `commit; select …` is refused and never runs with a session value planted under A', async () => {
    const reads = await withPlantedSession((client) =>
      runAs(B, async () => {
        const seen: string[] = [];
        for (const text of [
          'commit; select body from notes order by body',
          'rollback; select body from notes',
          'commit and chain; select body from notes',
        ]) {
          await client.query('begin');
          const o = await outcome(() => client.query(text));
          expect(o.code).toBe('UNSUPPORTED');
          seen.push(...o.bodies);
          if ((await statusOf(client)) !== 'I') await client.query('rollback');
        }
        return seen;
      }),
    );
    for (const body of reads) expect(BODIES[B], `read ${body} in B's request`).toContain(body);
  });

  // Was a bypass: with no tenant, multi-statement text outside a transaction went unprefixed and
  // ran with a valid value that SQL injected under another tenant planted at session level
  // (behind pgbouncer the plant outlives the client that made it). Now such text is refused
  // outside a transaction whatever the tenant.
  it('with no tenant, a multi-statement string is refused and never runs with a session value planted under A', async () => {
    let landed: unknown[] = [];
    let seen: Record<'read' | 'inTx' | 'write', { bodies: string[]; code?: string }>;
    try {
      seen = await withPlantedSession((client) =>
        runWithoutTenant(async () => ({
          read: await outcome(() => client.query('select 1 as one; select body from notes order by body')),
          inTx: await outcome(() => client.query('begin; select body from notes; commit')),
          write: await outcome(() =>
            client.query(
              `insert into notes (tenant_id, body) select tenantry.current_tenant_id(), 'orphan-landed'; select 1 as one`,
            ),
          ),
        })),
      );
    } finally {
      landed = (await db.admin.query(`delete from notes where body = 'orphan-landed' returning tenant_id`)).rows;
    }
    // fixed either way: run with no tenant (no rows, insert refused) or refused before it is sent
    for (const o of [seen.read, seen.inTx]) {
      expect(o.bodies, 'rows read with no tenant').toEqual([]);
      expect(o.code).toBe('UNSUPPORTED');
    }
    expect(seen.write.code, 'an insert with no tenant is refused').toBe('UNSUPPORTED');
    expect(landed, 'nothing was stored for any tenant').toEqual([]);
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

  it('KNOWN WEAKNESS: within one statement, injected set_config under A DOES choose tenant B (docs/security.md says so)', async () => {
    // set_config in the reading statement itself (a sub-select, a CTE)
    const sameStatement = await runAs(A, () =>
      upool.query(
        `select n.body from (select set_config('tenantry.context', ${lit(B)}, true) as s) s, notes n order by n.body`,
      ),
    );
    expect(bodiesOf(sameStatement)).toEqual(BODIES[B]);
    const cte = await runAs(A, () =>
      upool.query(
        `with s as materialized (select set_config('tenantry.context', ${lit(B)}, true)) select body from notes, s order by body`,
      ),
    );
    expect(bodiesOf(cte)).toEqual(BODIES[B]);
    // a DO block: it reads B's rows (leaked through an error message) ...
    const leak = await runAs(A, () => upool.query(doBlockLeak(B))).catch(
      (e: unknown) => e as { code?: string; message?: string },
    );
    expect(leak).toMatchObject({ code: 'P0001', message: `leak: ${BODIES[B]!.join(',')}` });
    // ... and changes them
    try {
      await runAs(A, () =>
        upool.query(
          `do $$ begin perform set_config('tenantry.context', ${lit(B)}, true); update notes set body = body || '!'; end $$`,
        ),
      );
      const stored = await udb.admin.query(`select body from notes where tenant_id = $1 order by body`, [B]);
      expect(stored.rows.map((r) => r.body)).toEqual(BODIES[B]!.map((b) => `${b}!`));
    } finally {
      await udb.admin.query(`update notes set body = rtrim(body, '!') where tenant_id = $1`, [B]);
    }
  });

  it('KNOWN WEAKNESS: a multi-statement string in a transaction begun under A DOES choose tenant B', async () => {
    const client = await upool.connect();
    try {
      await runAs(A, async () => {
        await client.query('begin');
        const viaSetConfig = await client.query(
          `select set_config('tenantry.context', ${lit(B)}, true); select body from notes order by body`,
        );
        expect(bodiesOf(viaSetConfig)).toEqual(BODIES[B]);
        const viaSetLocal = await client.query(
          `set local tenantry.context = ${lit(B)}; select body from notes order by body`,
        );
        expect(bodiesOf(viaSetLocal)).toEqual(BODIES[B]);
        await client.query('rollback');
      });
    } finally {
      client.release();
    }
  });

  it('narrower than it was: set_config as its own statement is undone by the next statement, and a multi-statement string outside a transaction is refused', async () => {
    const client = await upool.connect();
    try {
      await runAs(A, async () => {
        await client.query('begin');
        await client.query(`select set_config('tenantry.context', $1, true)`, [B]);
        expect(bodiesOf(await client.query('select body from notes order by body'))).toEqual(BODIES[A]);
        await client.query(`set local tenantry.context = ${lit(B)}`);
        expect(bodiesOf(await client.query('select body from notes where body <> $1 order by body', ['']))).toEqual(
          BODIES[A],
        );
        await client.query('rollback');
      });
    } finally {
      client.release();
    }
    const refused = await outcome(() =>
      runAs(A, () => upool.query(`set local tenantry.context = ${lit(B)}; select body from notes`)),
    );
    expect(refused).toEqual({ bodies: [], code: 'UNSUPPORTED' });
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
    expect(bodiesOf(await runAs(C, () => single.query('select body from notes where body <> $1', [''])))).toEqual(
      BODIES[C],
    );
  });

  it('still: statements without injection see only their tenant', async () => {
    expect(bodiesOf(await runAs(A, () => upool.query('select body from notes order by body')))).toEqual(BODIES[A]);
    expect(
      bodiesOf(await runAs(B, () => upool.query('select body from notes where body <> $1 order by body', ['']))),
    ).toEqual(BODIES[B]);
    const forged = await outcome(() =>
      runAs(A, () => upool.query(`insert into notes (tenant_id, body) values ($1, 'x')`, [B])),
    );
    expect(forged.code).toBe('42501');
  });
});
