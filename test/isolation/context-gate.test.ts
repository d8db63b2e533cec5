// Core 007 (issue 15): the signed check reads one private mirror of where tenants live and which
// are held (tenantry_private.context_gate) instead of tenantry.local_tenants and
// tenantry.inactive_tenants, and the key row carries tenantry.local_route's serves_default. These
// tests attack the new pieces from the app role's side (read or write the mirror, call its
// maintenance functions, hide a held tenant behind another spelling of its id) and check that the
// mirror follows every kind of write to the tables it mirrors, in the same transaction. Each
// refusal is checked from the other side too: the held or forged-for tenant's rows unread and
// unchanged (counted as the superuser).
import { createHmac, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
const A = randomUUID();
const B = randomUUID();

function sign(payload: string, secret: string): string {
  return `${payload}.${createHmac('sha256', Buffer.from(secret, 'utf8')).update(payload).digest('hex')}`;
}
const inFiveMinutes = () => Math.floor(Date.now() / 1000) + 300;

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

/** Runs `sql` as the app role (no TenantPool) with `value` set transaction-locally; the SQLSTATE or the rows. */
async function asApp(value: string, sql: string): Promise<{ code?: string; rows?: Array<Record<string, unknown>> }> {
  const client = new pg.Client({ connectionString: db.appUrl });
  await client.connect();
  try {
    await client.query('begin');
    await client.query(`select pg_catalog.set_config('tenantry.context', $1, true)`, [value]);
    try {
      const { rows } = await client.query(sql);
      await client.query('commit');
      return { rows };
    } catch (error) {
      await client.query('rollback');
      return { code: (error as { code?: string }).code };
    }
  } finally {
    await client.end();
  }
}

async function bodiesOf(tenant: string): Promise<string[]> {
  const { rows } = await db.admin.query(`select body from notes where tenant_id = $1 order by body`, [tenant]);
  return rows.map((r: { body: string }) => r.body);
}

/** The mirror as it should be: the full join of the two tables it mirrors. */
async function expectGateInStep(): Promise<void> {
  const { rows } = await db.admin.query(`
    select (select coalesce(array_agg(row(g.tenant_key, g.state, g.epoch, g.hold)::text order by g.tenant_key), '{}')
              from tenantry_private.context_gate g) as gate,
           (select coalesce(array_agg(row(coalesce(l.tenant_key, i.tenant_key), l.state, l.epoch, i.status)::text
                                      order by coalesce(l.tenant_key, i.tenant_key)), '{}')
              from tenantry.local_tenants l full join tenantry.inactive_tenants i on i.tenant_key = l.tenant_key) as expected,
           (select k.serves_default from tenantry_private.context_key k) as key_serves,
           (select r.serves_default from tenantry.local_route r) as route_serves`);
  expect(rows[0].gate).toEqual(rows[0].expected);
  expect(rows[0].key_serves).toBe(rows[0].route_serves);
}

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(`
    create table notes (tenant_id uuid not null, id uuid not null default gen_random_uuid(), body text not null, primary key (tenant_id, id));
    select tenantry.register_tenant_table('notes');`);
  await db.owner.query(`insert into notes (tenant_id, body) values ($1, 'a1'), ($2, 'b1')`, [A, B]);
});
afterAll(() => db?.drop());

describe('the app role cannot reach the mirror', () => {
  it('cannot read or write tenantry_private.context_gate or call its maintenance (42501), and nothing changed', async () => {
    await db.owner.query(`insert into tenantry.inactive_tenants (tenant_key, status) values ($1, 'suspended')`, [B]);
    try {
      const client = new pg.Client({ connectionString: db.appUrl });
      await client.connect();
      try {
        for (const sql of [
          `select * from tenantry_private.context_gate`,
          `delete from tenantry_private.context_gate`,
          `insert into tenantry_private.context_gate (tenant_key, state, epoch) values ('${A}', 'active', 0)`,
          `select tenantry.refresh_context_gate('${B}')`,
          `select tenantry.rebuild_context_gate()`,
          `update tenantry_private.context_key set serves_default = true`,
        ])
          expect(await codeOf(client.query(sql)), sql).toBe('42501');
      } finally {
        await client.end();
      }
      const { rows } = await db.admin.query(`select hold from tenantry_private.context_gate where tenant_key = $1`, [
        B,
      ]);
      expect(rows).toEqual([{ hold: 'suspended' }]);
      await expectGateInStep();
    } finally {
      await db.owner.query(`delete from tenantry.inactive_tenants where tenant_key = $1`, [B]);
    }
  });
});

describe('the mirror follows the tables it mirrors, in the same transaction', () => {
  it('inserts, updates, deletes, a changed key and TRUNCATE of local_tenants and inactive_tenants; local_route’s flag', async () => {
    const C = randomUUID();
    const steps = [
      `insert into tenantry.local_tenants (tenant_key, state, epoch) values ('${A}', 'active', 3)`,
      `insert into tenantry.inactive_tenants (tenant_key, status) values ('${A}', 'suspended')`,
      `insert into tenantry.inactive_tenants (tenant_key, status) values ('${C}', 'deleted')`,
      `update tenantry.local_tenants set state = 'frozen' where tenant_key = '${A}'`,
      `update tenantry.inactive_tenants set status = 'deleted' where tenant_key = '${A}'`,
      `update tenantry.local_tenants set tenant_key = '${C}' where tenant_key = '${A}'`,
      `delete from tenantry.inactive_tenants where tenant_key = '${A}'`,
      `truncate tenantry.local_tenants`,
      `update tenantry.local_route set serves_default = false`,
      `truncate tenantry.inactive_tenants`,
      `update tenantry.local_route set serves_default = true`,
    ];
    for (const sql of steps) {
      await db.owner.query(sql);
      await expectGateInStep();
    }
    // inside one transaction: a statement after the write already sees the mirror in step
    const client = await db.owner.connect();
    try {
      await client.query('begin');
      await client.query(`insert into tenantry.inactive_tenants (tenant_key, status) values ($1, 'suspended')`, [B]);
      const { rows } = await client.query(
        `select count(*)::int as n from tenantry_private.context_gate where tenant_key = $1`,
        [B],
      );
      expect(rows[0].n).toBe(1);
      await client.query('rollback');
    } finally {
      client.release();
    }
    await expectGateInStep();
  });

  it('a hold and a route of one tenant written at once by two transactions: the second waits, and the mirror has both', async () => {
    const X = randomUUID();
    const one = await db.owner.connect();
    const two = await db.owner.connect();
    try {
      await one.query('begin');
      await one.query(`insert into tenantry.inactive_tenants (tenant_key, status) values ($1, 'suspended')`, [X]);
      await two.query('begin');
      const second = two.query(
        `insert into tenantry.local_tenants (tenant_key, state, epoch) values ($1, 'active', 2)`,
        [X],
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      await one.query('commit');
      await second;
      await two.query('commit');
      const { rows } = await db.admin.query(
        `select state, epoch::int, hold from tenantry_private.context_gate where tenant_key = $1`,
        [X],
      );
      expect(rows).toEqual([{ state: 'active', epoch: 2, hold: 'suspended' }]);
      await expectGateInStep();
    } finally {
      await one.query('rollback').catch(() => undefined);
      await two.query('rollback').catch(() => undefined);
      one.release();
      two.release();
      await db.owner.query(`delete from tenantry.inactive_tenants where tenant_key = $1`, [X]);
      await db.owner.query(`delete from tenantry.local_tenants where tenant_key = $1`, [X]);
    }
    await expectGateInStep();
  });

  it('a key written after the route flag changed takes the flag (install with a secret later, setContextSecret)', async () => {
    const { rows: key } = await db.admin.query(`select ipad, opad from tenantry_private.context_key`);
    await db.owner.query(`update tenantry.local_route set serves_default = false`);
    try {
      await db.admin.query(`delete from tenantry_private.context_key`);
      await db.admin.query(`insert into tenantry_private.context_key (id, ipad, opad) values (true, $1, $2)`, [
        key[0].ipad,
        key[0].opad,
      ]);
      await expectGateInStep();
      // this database no longer serves the default route: A's valid default-route value is refused
      const r = await asApp(sign(`${A}.${inFiveMinutes()}`, db.contextSecret), 'select body from notes');
      expect(r.code).toBe('TR003');
    } finally {
      await db.owner.query(`update tenantry.local_route set serves_default = true`);
    }
    await expectGateInStep();
    expect((await asApp(sign(`${A}.${inFiveMinutes()}`, db.contextSecret), 'select body from notes')).rows).toEqual([
      { body: 'a1' },
    ]);
  });
});

describe('refusals through the mirror, checked from the other side', () => {
  it('suspended (TR005) and deleted (TR006): B’s valid value reads and writes nothing; active again, it reads its own', async () => {
    const value = sign(`${B}.${inFiveMinutes()}`, db.contextSecret);
    for (const [status, code] of [
      ['suspended', 'TR005'],
      ['deleted', 'TR006'],
    ] as const) {
      await db.owner.query(
        `insert into tenantry.inactive_tenants (tenant_key, status) values ($1, $2)
         on conflict (tenant_key) do update set status = excluded.status`,
        [B, status],
      );
      expect((await asApp(value, 'select body from notes')).code).toBe(code);
      expect((await asApp(value, `update notes set body = 'changed'`)).code).toBe(code);
      expect((await asApp(value, `insert into notes (tenant_id, body) values ('${B}', 'new')`)).code).toBe(code);
      expect(await bodiesOf(B)).toEqual(['b1']);
      // the bystander is served
      expect((await asApp(sign(`${A}.${inFiveMinutes()}`, db.contextSecret), 'select body from notes')).rows).toEqual([
        { body: 'a1' },
      ]);
    }
    await db.owner.query(`delete from tenantry.inactive_tenants where tenant_key = $1`, [B]);
    expect((await asApp(value, 'select body from notes')).rows).toEqual([{ body: 'b1' }]);
  });

  it('a held tenant’s id spelled in capitals (signed by a careless app) is malformed (TR001), not served past the hold', async () => {
    await db.owner.query(`insert into tenantry.inactive_tenants (tenant_key, status) values ($1, 'suspended')`, [B]);
    try {
      // the whole id, and only its first hex letter (a random id's first 8 characters may all be digits)
      for (const spelled of [B.toUpperCase(), B.replace(/[a-f]/, (c) => c.toUpperCase())]) {
        const value = sign(`${spelled}.${inFiveMinutes()}`, db.contextSecret);
        expect((await asApp(value, 'select body from notes')).code, spelled).toBe('TR001');
        expect((await asApp(value, `update notes set body = 'changed'`)).code, spelled).toBe('TR001');
        expect((await asApp(value, 'select tenantry.home_tenant_id()')).code, spelled).toBe('TR001');
      }
      expect(await bodiesOf(B)).toEqual(['b1']);
    } finally {
      await db.owner.query(`delete from tenantry.inactive_tenants where tenant_key = $1`, [B]);
    }
  });

  it('a forged value for a held tenant is refused as forged (TR001) before the hold is told (no TR005), nothing read', async () => {
    await db.owner.query(`insert into tenantry.inactive_tenants (tenant_key, status) values ($1, 'suspended')`, [B]);
    try {
      for (const value of [
        `${B}.${inFiveMinutes()}.${'0'.repeat(64)}`,
        sign(`${B}.${inFiveMinutes()}`, 'not-the-secret-not-the-secret-not-the-secret'),
      ]) {
        expect((await asApp(value, 'select body from notes')).code).toBe('TR001');
        expect((await asApp(value, 'select tenantry.home_tenant_id()')).code).toBe('TR001');
      }
      expect(await bodiesOf(B)).toEqual(['b1']);
    } finally {
      await db.owner.query(`delete from tenantry.inactive_tenants where tenant_key = $1`, [B]);
    }
  });

  it('route through the mirror: a stale epoch TR003, frozen TR004, the current epoch served; a replayed older route refused', async () => {
    await db.owner.query(`insert into tenantry.local_tenants (tenant_key, state, epoch) values ($1, 'active', 5)`, [B]);
    try {
      const current = sign(`${B}.${inFiveMinutes()}.5`, db.contextSecret);
      const stale = sign(`${B}.${inFiveMinutes()}.4`, db.contextSecret);
      const defaultRoute = sign(`${B}.${inFiveMinutes()}`, db.contextSecret);
      expect((await asApp(current, 'select body from notes')).rows).toEqual([{ body: 'b1' }]);
      expect((await asApp(stale, 'select body from notes')).code).toBe('TR003');
      expect((await asApp(defaultRoute, `update notes set body = 'changed'`)).code).toBe('TR003');
      await db.owner.query(`update tenantry.local_tenants set state = 'frozen' where tenant_key = $1`, [B]);
      expect((await asApp(current, `update notes set body = 'changed'`)).code).toBe('TR004');
      await db.owner.query(`update tenantry.local_tenants set state = 'moved' where tenant_key = $1`, [B]);
      expect((await asApp(current, 'select body from notes')).code).toBe('TR003');
      // a pinned table's check (home_tenant_id) takes no route: still B
      expect((await asApp(current, 'select tenantry.home_tenant_id()::text as id')).rows).toEqual([{ id: B }]);
      expect(await bodiesOf(B)).toEqual(['b1']);
    } finally {
      await db.owner.query(`delete from tenantry.local_tenants where tenant_key = $1`, [B]);
    }
  });

  it('the previous key verifies only while its overlap lasts (checked on a mismatch only)', async () => {
    const { rotateContextSecret } = await import('../../src/policy/rotation.js');
    const old = db.contextSecret;
    const next = `rotated-${randomUUID()}-secret`;
    await rotateContextSecret(db.admin, next, { overlapSeconds: 60 });
    try {
      const byOld = sign(`${A}.${inFiveMinutes()}`, old);
      const byNew = sign(`${A}.${inFiveMinutes()}`, next);
      expect((await asApp(byOld, 'select body from notes')).rows).toEqual([{ body: 'a1' }]);
      expect((await asApp(byNew, 'select body from notes')).rows).toEqual([{ body: 'a1' }]);
      await db.admin.query(`update tenantry_private.context_key set previous_until = now() - interval '1 second'`);
      expect((await asApp(byOld, 'select body from notes')).code).toBe('TR001');
      expect((await asApp(byOld, `update notes set body = 'changed'`)).code).toBe('TR001');
      expect((await asApp(byNew, 'select body from notes')).rows).toEqual([{ body: 'a1' }]);
      expect(await bodiesOf(A)).toEqual(['a1']);
    } finally {
      const { setContextSecret } = await import('../../src/policy/installer.js');
      await setContextSecret(db.admin, old);
    }
  });
});
