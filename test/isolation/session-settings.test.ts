// A setting tenant A's SQL leaves on its pooled session (a session-level SET, RESET, DISCARD,
// set_config(…, false), or SQL text run by query_to_xml) would change what tenant B's statements
// return when the pool lends B that session next: rounded floats (extra_float_digits), another
// schema first on the search path, a statement timeout. Such a session is quarantined: it serves
// no other tenant's statement and is closed at release. Each case is checked from B's side (its
// answers are those of a fresh session, its rows unchanged) and by the backend pid (a new session).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs, type TenantPool } from '../../src/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let pool: TenantPool;
const A = randomUUID();
const B = randomUUID();

/** What B's statements show of the session's settings. */
const PROBE = `select (0.1::float8 + 0.2::float8)::text as sum, current_setting('search_path') as path,
  current_setting('statement_timeout') as timeout, current_setting('DateStyle') as datestyle, count(*)::int as notes
  from notes`;

const pidOf = async (tenant: string) =>
  (await runAs(tenant, () => pool.query('select pg_backend_pid() as pid'))).rows[0].pid as number;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(`
    create table notes (tenant_id uuid not null, id serial, body text not null, primary key (tenant_id, id));
    select tenantry.register_tenant_table('notes');
    create schema other;
    grant usage on schema other to ${db.appRole};`);
  await db.owner.query(`insert into notes (tenant_id, body) values ($1, 'a1'), ($2, 'b1')`, [A, B]);
  pool = db.appPool({ max: 1 });
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe('a setting left on the session by one tenant never reaches the next', () => {
  it("B's answers are a fresh session's after each way A could leave one", async () => {
    const baseline = (await runAs(B, () => pool.query(PROBE))).rows[0];
    expect(baseline).toMatchObject({ sum: '0.30000000000000004', notes: 1 });
    const bRows = (await db.admin.query(`select id, body from notes where tenant_id = $1`, [B])).rows;
    const plants = [
      'set extra_float_digits = -15',
      'SET SESSION statement_timeout = 1',
      '/* a comment */ set search_path = other, public',
      `set datestyle to 'SQL, DMY'`,
      `select set_config('extra_float_digits', '-15', false)`,
      `select pg_catalog.set_config('search_path', 'other', false) as p`,
      `select set_config('statement_timeout', $1, false)`,
      `select set_config('extra_float_digits', '-15', 1 = 0)`,
      `select query_to_xml('set extra_float_digits = -15', true, true, '')`,
      `select query_to_xml(convert_from(decode('${Buffer.from('set search_path = other').toString('base64')}', 'base64'), 'UTF8'), true, true, '')`,
      'reset all',
      'discard all',
    ];
    for (const plant of plants) {
      const before = await pidOf(A);
      await runAs(A, () => pool.query(plant, plant.includes('$1') ? ['1'] : undefined)).catch(() => undefined);
      const after = (await runAs(B, () => pool.query(PROBE))).rows[0];
      expect(after, plant).toEqual(baseline);
      expect(await pidOf(A), plant).not.toBe(before);
    }
    expect((await db.admin.query(`select id, body from notes where tenant_id = $1`, [B])).rows).toEqual(bRows);
  });

  it('transaction-local settings and ordinary statements keep the session', async () => {
    const harmless = [
      'update notes set body = body where false',
      `select set_config('app.request', 'r1', true) as v`,
      `select pg_catalog.set_config('app.request', $1, true) as v`,
      `select 'set extra_float_digits = -15' as text`,
      'select count(*) from notes',
    ];
    for (const text of harmless) {
      const before = await pidOf(A);
      await runAs(A, () => pool.query(text, text.includes('$1') ? ['r2'] : undefined));
      expect(await pidOf(B), text).toBe(before);
    }
    // SET LOCAL in A's transaction: gone at its end, the session kept
    const client = await pool.connect();
    let pid: number;
    try {
      pid = (await runAs(A, () => client.query('select pg_backend_pid() as pid'))).rows[0].pid;
      await runAs(A, async () => {
        await client.query('begin');
        await client.query('set local extra_float_digits = -15');
        await client.query('set transaction read only');
        expect((await client.query(`select (0.1::float8 + 0.2::float8)::text as sum`)).rows[0].sum).toBe('0.3');
        await client.query('commit');
      });
    } finally {
      client.release();
    }
    expect(await pidOf(B)).toBe(pid);
    expect((await runAs(B, () => pool.query(PROBE))).rows[0].sum).toBe('0.30000000000000004');
  });

  it("on one checked-out client, after A's session-level SET, B's statements are refused and A's run", async () => {
    const client = await pool.connect();
    try {
      await runAs(A, () => client.query('set extra_float_digits = -15'));
      await expect(runAs(B, () => client.query('select body from notes'))).rejects.toMatchObject({
        code: 'UNSUPPORTED',
      });
      expect((await runAs(A, () => client.query('select body from notes'))).rows).toEqual([{ body: 'a1' }]);
    } finally {
      client.release();
    }
    expect((await runAs(B, () => pool.query(PROBE))).rows[0]).toMatchObject({
      sum: '0.30000000000000004',
      notes: 1,
    });
  });
});
