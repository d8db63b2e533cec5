// tenantry.home_tenant_id(): the tenant in context, proven like current_tenant_id() but without
// the route check, for tables that never move (pinned tables, Tenantry's identity tables). It
// must refuse everything current_tenant_id() refuses except a route: forged, expired, malformed.
import { createHmac } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContextSigner } from '../../src/data/context-signer.js';
import { runAs } from '../../src/context/tenant-context.js';
import { CONTEXT_SETTING } from '../../src/policy/install-sql.js';
import { Placements } from '../../src/tiers/placements.js';
import { createTenantDatabase } from '../../src/tiers/provision.js';
import { codeOf } from '../support/refusal-code.js';
import { ROLE_PASSWORD, createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { dropDatabase } from '../support/drop-database.js';

const DDL = `
  create table memberships (tenant_id uuid not null default tenantry.current_tenant_id(), user_name text not null, primary key (tenant_id, user_name));
  select tenantry.register_tenant_table('memberships');
  select tenantry.pin_tenant_table('memberships');
  create table notes (tenant_id uuid not null default tenantry.current_tenant_id(), id int not null, body text, primary key (tenant_id, id));
  select tenantry.register_tenant_table('notes');`;

async function tenant(db: TestDatabase, slug: string): Promise<string> {
  return (
    await db.owner.query<{ id: string }>(`insert into tenantry.tenants (slug, name) values ($1, $1) returning id`, [
      slug,
    ])
  ).rows[0]!.id;
}

describe('signed mode', () => {
  let db: TestDatabase;
  let app: pg.Client;
  let signer: ContextSigner;
  let a: string;
  let b: string;
  const database = () => `${db.name}_away`;

  beforeAll(async () => {
    db = await createTestDatabase();
    await db.owner.query(DDL);
    signer = new ContextSigner(db.contextSecret);
    a = await tenant(db, 'home-a');
    b = await tenant(db, 'home-b');
    await db.admin.query(`insert into memberships values ($1, 'ann'), ($2, 'bob')`, [a, b]);
    await db.admin.query(`insert into notes values ($1, 1, 'a at home'), ($2, 1, 'b at home')`, [a, b]);
    // A is placed in a database of its own: the home database now refuses A's route-checked statements
    await createTenantDatabase({
      adminUrl: db.adminUrl,
      ownerUrl: db.ownerUrl,
      database: database(),
      ddl: DDL.split('select tenantry.pin_tenant_table')[0]!,
      appRole: db.appRole,
      ownerRole: db.ownerRole,
      appPassword: ROLE_PASSWORD,
      ownerPassword: ROLE_PASSWORD,
      contextSecret: db.contextSecret,
    });
    const placements = new Placements({ catalog: db.owner, owners: { home: db.ownerUrl } });
    await placements.assign(a, { tier: 'database', cluster: 'home', database: database() });
    await placements.end();
    app = new pg.Client({ connectionString: db.appUrl });
    await app.connect();
  });

  afterAll(async () => {
    await app?.end();
    await dropDatabase(db?.admin, database()).catch(() => undefined);
    await db?.drop();
  });

  const as = async (context: string, sql: string) => {
    await app.query('begin');
    try {
      await app.query('select set_config($1, $2, true)', [CONTEXT_SETTING, context]);
      return (await app.query(sql)).rows;
    } finally {
      await app.query('rollback');
    }
  };

  it('returns the proven tenant where current_tenant_id() refuses its route: the pinned table answers, the moving one refuses', async () => {
    const context = signer.encode(a);
    expect(await as(context, 'select tenantry.home_tenant_id()::text as t')).toEqual([{ t: a }]);
    expect(await codeOf(as(context, 'select tenantry.current_tenant_id()'))).toBe('TR003');
    expect(await as(context, 'select user_name from memberships')).toEqual([{ user_name: 'ann' }]);
    expect(await codeOf(as(context, 'select body from notes'))).toBe('TR003');
    // B lives at home: both functions agree
    expect(await as(signer.encode(b), 'select user_name from memberships')).toEqual([{ user_name: 'bob' }]);
    expect(await as(signer.encode(b), 'select body from notes')).toEqual([{ body: 'b at home' }]);
  });

  it('refuses a forged, a tampered, an expired and a malformed context (TR001), like current_tenant_id()', async () => {
    const good = signer.encode(a);
    const forged = new ContextSigner('another-secret-another-secret-another').encode(a);
    const tampered = `${b}${good.slice(36)}`;
    // expired: a correctly signed value whose expiry is in the past
    const payload = `${a}.${Math.floor(Date.now() / 1000) - 120}`;
    const expired = `${payload}.${createHmac('sha256', db.contextSecret).update(payload).digest('hex')}`;
    for (const context of [forged, tampered, expired, a, `${a}.1.2`, 'x'.repeat(120)]) {
      expect(await codeOf(as(context, 'select tenantry.home_tenant_id()')), context.slice(0, 60)).toBe('TR001');
      expect(await codeOf(as(context, 'select user_name from memberships')), context.slice(0, 60)).toBe('TR001');
    }
    // the expired one is refused for its expiry (its signature is right)
    await expect(as(expired, 'select tenantry.home_tenant_id()')).rejects.toThrow(/expired/);
    expect(await as('', 'select tenantry.home_tenant_id() as t')).toEqual([{ t: null }]);
    expect(await as('', 'select user_name from memberships')).toEqual([]);
  });

  it('another tenant reaches none of the pinned rows of the tenant placed elsewhere', async () => {
    expect(await as(signer.encode(b), `select user_name from memberships where tenant_id = '${a}'`)).toEqual([]);
    await app.query('begin');
    try {
      await app.query('select set_config($1, $2, true)', [CONTEXT_SETTING, signer.encode(b)]);
      expect(
        await codeOf(app.query(`insert into memberships (tenant_id, user_name) values ('${a}', 'intruder')`)),
      ).toBe('42501');
    } finally {
      await app.query('rollback');
    }
    expect((await db.admin.query('select user_name from memberships where tenant_id = $1', [a])).rows).toEqual([
      { user_name: 'ann' },
    ]);
  });

  it('a TenantPool reads the pinned table at home for the placed tenant', async () => {
    const pool = db.appPool();
    const rows = await runAs(a, () =>
      pool.query('select user_name from memberships where tenant_id = (select tenantry.home_tenant_id())'),
    );
    expect(rows.rows).toEqual([{ user_name: 'ann' }]);
  });
});

describe('unsigned mode', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ contextMode: 'unsigned' });
    await db.owner.query(DDL);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('is the tenant of the context, route epoch or not; empty without one', async () => {
    const a = await tenant(db, 'unsigned-a');
    const c = new pg.Client({ connectionString: db.appUrl });
    await c.connect();
    try {
      for (const context of [a, `${a}.7`]) {
        await c.query('begin');
        await c.query('select set_config($1, $2, true)', [CONTEXT_SETTING, context]);
        expect((await c.query('select tenantry.home_tenant_id()::text as t')).rows).toEqual([{ t: a }]);
        await c.query('rollback');
      }
      expect((await c.query('select tenantry.home_tenant_id() as t')).rows).toEqual([{ t: null }]);
    } finally {
      await c.end();
    }
  });
});
