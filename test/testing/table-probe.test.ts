// The kit must fail when isolation fails: each table here is registered, then sabotaged the way
// real defects look (a permissive policy, RLS switched off, a WITH CHECK that lets everything
// in), and the attempts must report exactly the attacks that got through.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { TenantPool } from '../../src/index.js';
import { QueryGuard, TenantTableMap } from '../../src/guard/index.js';
import {
  createTenantFactory,
  prepareTableProbe,
  resolveTable,
  TABLE_ATTEMPTS,
  type Actor,
  type IsolationContext,
  type TableAttemptKind,
  type TableProbe,
  type TenantFactory,
  type TenantTableSpec,
} from '../../src/testing/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let pool: TenantPool;
let tenants: TenantFactory<undefined>;
let context: IsolationContext;

const notes = (table: string): TenantTableSpec => ({
  table,
  columns: (_, i) => ({ body: `secret ${i}` }),
  update: { column: 'body', value: 'changed' },
});

beforeAll(async () => {
  db = await createTestDatabase();
  const table = (name: string, id = 'id uuid not null default gen_random_uuid()') => `
    create table ${name} (tenant_id uuid not null, ${id}, body text not null, primary key (tenant_id, id));
    select tenantry.register_tenant_table('${name}');`;
  await db.owner.query(
    [
      table('notes'),
      table('open_notes'),
      table('norls_notes'),
      table('nocheck_notes'),
      table('serial_notes', 'id bigserial'),
      table('peek_notes', 'id bigserial'),
    ].join('\n'),
  );
  // another tenant column, a text key of two columns
  await db.owner.query(`
    create table ledger (org_id uuid not null, book text not null, code text not null, memo text not null, primary key (org_id, book, code));
    select tenantry.register_tenant_table('ledger', 'org_id');`);
  pool = db.appPool();
  tenants = createTenantFactory({ catalog: db.owner });
  const [a, b] = await tenants.pair();
  context = { pool, privileged: db.admin, tenantA: a, tenantB: b };
});
afterAll(async () => {
  await tenants?.cleanup();
  await db?.drop();
});

/** Sabotage after seeding (a broken policy would let the control pass for the wrong reason). */
async function attack(spec: TenantTableSpec, kind: TableAttemptKind, actor: Actor): Promise<string[]> {
  const probe = await prepareTableProbe(resolveTable(spec), context);
  try {
    return (await probe.run(kind, actor)).leaks;
  } finally {
    await probe.cleanup();
  }
}

describe('a correctly registered table', () => {
  let probe: TableProbe;
  beforeAll(async () => {
    probe = await prepareTableProbe(resolveTable(notes('notes')), context);
  });
  afterAll(() => probe?.cleanup());

  it('refuses every attempt, for tenant B and with no tenant', async () => {
    expect(TABLE_ATTEMPTS).toHaveLength(13);
    for (const attempt of TABLE_ATTEMPTS) {
      const result = await probe.run(attempt.kind, attempt.actor);
      expect(result.leaks, `${attempt.kind} as ${attempt.actor}`).toEqual([]);
      expect(result.tries).toBeGreaterThan(0);
    }
  });

  it('seeded rows in both tenants and leaves them as they were', async () => {
    expect(probe.keysA).toHaveLength(2);
    expect(probe.keysB).toHaveLength(1);
    const { rows } = await db.admin.query('select tenant_id, body from notes order by tenant_id = $1 desc, body', [
      context.tenantA.tenant.id,
    ]);
    expect(rows).toEqual([
      { tenant_id: context.tenantA.tenant.id, body: 'secret 0' },
      { tenant_id: context.tenantA.tenant.id, body: 'secret 1' },
      { tenant_id: context.tenantB.tenant.id, body: 'secret 2' },
    ]);
  });

  it('cleans up exactly what it seeded', async () => {
    const other = await prepareTableProbe(resolveTable(notes('notes')), context);
    expect((await db.admin.query('select count(*)::int as n from notes')).rows[0].n).toBe(6);
    await other.cleanup();
    expect((await db.admin.query('select count(*)::int as n from notes')).rows[0].n).toBe(3);
  });
});

describe('a table with another tenant column and a composite text key', () => {
  it("refuses every attempt; guesses are A's real keys (text has no neighbours)", async () => {
    const spec: TenantTableSpec = {
      table: 'public.ledger',
      tenantColumn: 'org_id',
      idColumns: ['book', 'code'],
      columns: (_, i) => ({ book: 'main', code: `entry-${i}`, memo: 'secret' }),
      update: { column: 'memo', value: 'changed' },
    };
    const probe = await prepareTableProbe(resolveTable(spec), context);
    try {
      expect(probe.keysA).toEqual([
        { book: 'main', code: 'entry-0' },
        { book: 'main', code: 'entry-1' },
      ]);
      for (const attempt of TABLE_ATTEMPTS)
        expect((await probe.run(attempt.kind, attempt.actor)).leaks, `${attempt.kind} as ${attempt.actor}`).toEqual([]);
      expect(await probe.run('guess', 'tenant-b')).toMatchObject({ tries: 2 * 3 });
      // and the same table with its policy opened is caught
      await db.owner.query('create policy open_door on ledger using (true) with check (true)');
      // B takes A's rows into B: from the outside, two rows are gone
      expect((await probe.run('update', 'tenant-b')).leaks).toContain(
        'rows of other tenants in public.ledger changed: 0 added, 2 removed, 0 modified',
      );
      // with no tenant, A's rows (seeded again) are changed in place
      expect((await probe.run('update', 'no-tenant')).leaks).toContain(
        'rows of other tenants in public.ledger changed: 0 added, 0 removed, 2 modified',
      );
    } finally {
      await db.owner.query('drop policy if exists open_door on ledger');
      await probe.cleanup();
    }
  });
});

describe('a permissive policy planted next to the isolation policy', () => {
  beforeAll(async () => {
    await db.owner.query('create policy open_door on open_notes using (true) with check (true)');
  });

  it.each(['read', 'list', 'insert', 'move', 'update', 'delete', 'guess'] as const)(
    'tenant B: %s is reported as a leak',
    async (kind) => {
      const leaks = await attack(notes('open_notes'), kind, 'tenant-b');
      expect(leaks.length).toBeGreaterThan(0);
    },
  );

  it('reports what got through in words, without data', async () => {
    const read = await attack(notes('open_notes'), 'read', 'tenant-b');
    expect(read).toContain('open_notes: select by id (row 1): reached 1 row(s) of another tenant');
    expect(read).toContain("open_notes: select by id and A's tenant id (row 2): reached 1 row(s) of another tenant");
    const del = await attack(notes('open_notes'), 'delete', 'tenant-b');
    expect(del).toContain('rows of other tenants in open_notes changed: 0 added, 2 removed, 0 modified');
    const insert = await attack(notes('open_notes'), 'insert', 'tenant-b');
    expect(insert).toEqual([
      expect.stringMatching(
        /insert a copy of A's row \(tenant A\): not refused by the row policy \(it failed later, with 23505\)/,
      ),
    ]);
    expect(JSON.stringify([read, del, insert])).not.toMatch(/secret|[0-9a-f]{8}-[0-9a-f]{4}-/);
  });

  it('with no tenant in context, reads and writes are reported too', async () => {
    for (const kind of ['read', 'list', 'update', 'delete'] as const) {
      expect(await attack(notes('open_notes'), kind, 'no-tenant'), kind).not.toEqual([]);
    }
  });
});

describe('row level security disabled by hand', () => {
  beforeAll(async () => {
    await db.admin.query('alter table norls_notes disable row level security');
  });

  it('makes every attempt of tenant B and of no tenant fail', async () => {
    for (const attempt of TABLE_ATTEMPTS) {
      expect(
        await attack(notes('norls_notes'), attempt.kind, attempt.actor),
        `${attempt.kind} as ${attempt.actor}`,
      ).not.toEqual([]);
    }
  });
});

describe('a policy whose WITH CHECK lets any row in', () => {
  beforeAll(async () => {
    await db.owner.query(`
      drop policy tenantry_isolation on nocheck_notes;
      create policy tenantry_isolation on nocheck_notes using (tenant_id = (select tenantry.current_tenant_id())) with check (true);`);
  });

  it('is caught by the insert attempts, and only by them', async () => {
    // a move is still refused: an UPDATE with a WHERE clause checks the new row against the
    // SELECT policies' USING too, so the kit reports only what really gets through
    const leaking = [];
    for (const attempt of TABLE_ATTEMPTS) {
      if ((await attack(notes('nocheck_notes'), attempt.kind, attempt.actor)).length > 0)
        leaking.push(`${attempt.actor} ${attempt.kind}`);
    }
    expect(leaking).toEqual(['tenant-b insert', 'no-tenant insert']);
  });
});

describe('what a leaking move reports', () => {
  it('names the statement and counts the rows it changed', async () => {
    const leaks = await attack(notes('norls_notes'), 'move', 'tenant-b');
    expect(leaks).toEqual([
      "norls_notes: update B's own row's tenant column to A: succeeded (1 row(s)) instead of being refused with 42501",
      'rows of other tenants in norls_notes changed: 1 added, 0 removed, 0 modified',
    ]);
  });
});

describe('guessable ids', () => {
  it('a serial table: neighbours of the seeded ids are tried and refused', async () => {
    const probe = await prepareTableProbe(resolveTable(notes('serial_notes')), context);
    try {
      expect(probe.keysA.map((k) => k.id)).toEqual(['1', '2']);
      const b = await probe.run('guess', 'tenant-b');
      // A's two ids and the neighbours 0 and 4 (3 is B's own row: B may reach it), read, update and delete each
      expect(b).toMatchObject({ leaks: [], tries: 4 * 3 });
      expect(await probe.run('guess', 'no-tenant')).toMatchObject({ leaks: [], tries: 3 * 3 + 2 * 3 });
    } finally {
      await probe.cleanup();
    }
  });

  it('reports a row of A that only a guessed id reaches (a policy that shows it to everyone)', async () => {
    const probe = await prepareTableProbe(resolveTable(notes('peek_notes')), context);
    try {
      // the next id after B's seeded row (3) belongs to A and is not one of the seeded rows
      await db.admin.query(`insert into peek_notes (tenant_id, body) values ($1, 'hidden')`, [
        context.tenantA.tenant.id,
      ]);
      await db.owner.query(`create policy peek on peek_notes for select using (body = 'hidden')`);
      expect((await probe.run('read', 'tenant-b')).leaks).toEqual([]);
      const guess = await probe.run('guess', 'tenant-b');
      expect(guess.leaks).toEqual(['peek_notes: select by id [guessed id]: reached 1 row(s) of another tenant']);
    } finally {
      await probe.cleanup();
    }
  });
});

describe('a suite that could pass for the wrong reason refuses to run', () => {
  it('a privileged connection that does not see through RLS', async () => {
    await expect(
      prepareTableProbe(resolveTable(notes('notes')), { ...context, privileged: pool }),
    ).rejects.toMatchObject({
      code: 'CONFIGURATION_ERROR',
      message: expect.stringContaining('not visible to the privileged connection'),
    });
  });

  it('a pool that never applies the tenant (control)', async () => {
    const raw = new pg.Pool({ connectionString: db.appUrl, max: 1 });
    try {
      const spec: TenantTableSpec = {
        table: 'notes',
        seed: async ({ party, privileged, index }) =>
          (
            await privileged.query('insert into notes (tenant_id, body) values ($1, $2) returning id', [
              party.tenant.id,
              `raw ${index}`,
            ])
          ).rows[0],
        update: { column: 'body', value: 'x' },
      };
      await expect(prepareTableProbe(resolveTable(spec), { ...context, pool: raw })).rejects.toMatchObject({
        code: 'CONFIGURATION_ERROR',
        message: expect.stringContaining('control failed'),
      });
    } finally {
      await raw.end();
    }
  });

  it('a pool whose query guard (enforce) refuses the statements before PostgreSQL sees them', async () => {
    await QueryGuard.ready();
    const guarded = db.appPool({
      guard: new QueryGuard({ mode: 'enforce', tables: TenantTableMap.from(['public.notes']) }),
    });
    await expect(prepareTableProbe(resolveTable(notes('notes')), { ...context, pool: guarded })).rejects.toMatchObject({
      code: 'CONFIGURATION_ERROR',
      message: expect.stringContaining('the pool has a query guard in enforce mode'),
    });
  });

  it('an update value the column refuses is a failure, not a pass', async () => {
    const leaks = await attack(
      { ...notes('notes'), update: { column: 'id', value: 'not a uuid' } },
      'update',
      'tenant-b',
    );
    expect(leaks.length).toBeGreaterThan(0);
    expect(leaks[0]).toMatch(
      /update by id \(row 1\): failed with 22P02 instead of being refused, so it proves nothing/,
    );
  });

  it('a spec without a way to seed, or with an unsafe identifier, is refused when declared', () => {
    expect(() => resolveTable({ table: 'notes', update: { column: 'body', value: 'x' } })).toThrow(
      /exactly one of columns or seed/,
    );
    expect(() => resolveTable({ ...notes('notes'), table: 'notes; drop table notes' })).toThrow(/Invalid table name/);
    expect(() => resolveTable({ ...notes('notes'), idColumns: ['tenant_id'] })).toThrow(
      /must not include the tenant column/,
    );
  });
});
