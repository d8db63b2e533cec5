// Verification per key range (TenantMover verify: 'ranges'): the cut points split a tenant's rows
// into ranges that cover every row exactly once, in the table's own key order (a text key with
// its collation, a composite key), and a key is mapped to the range that holds it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { moveTables } from '../../src/tiers/move/move-tables.js';
import { RowCopier } from '../../src/tiers/move/row-copier.js';
import { TenantMover } from '../../src/tiers/move/tenant-mover.js';
import { Placements } from '../../src/tiers/placements.js';
import { createTenantSchema } from '../../src/tiers/provision.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let copier: RowCopier;
let otherCopier: RowCopier;
const T = '00000000-0000-4000-8000-000000000001';
const O = '00000000-0000-4000-8000-000000000002';

/** The test table, its text key under this collation. */
const itemsDdl = (collation: string) => `
  create table items (
    tenant_id uuid not null default tenantry.current_tenant_id(),
    code text collate "${collation}" not null,
    n int not null,
    body text,
    primary key (tenant_id, code, n));
  select tenantry.register_tenant_table('items');`;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(itemsDdl('C'));
  for (const [id, slug] of [
    [T, 'ranges-t'],
    [O, 'ranges-o'],
  ])
    await db.owner.query(`insert into tenantry.tenants (id, slug, name) values ($1, $2, $2)`, [id, slug]);
  // 103 rows: codes in C order differ from a natural-language order ('B' < 'a'), 3 n per code
  await db.owner.query(
    `insert into items (tenant_id, code, n, body)
     select $1, c, n, md5(c || n) from unnest(array['a','B','b','Z','_', 'é', 'aa', 'A'] || array(select 'k' || g from generate_series(1, 26) g)) c, generate_series(1, 3) n`,
    [T],
  );
  await db.owner.query(`delete from items where tenant_id = $1 and code = 'k26' and n = 3`, [T]); // 101 rows
  await db.owner.query(
    `insert into items (tenant_id, code, n, body) select $1, 'x' || g, 1, 'other' from generate_series(1, 40) g`,
    [O],
  );
  const [table] = await moveTables(db.owner, ['public'], db.owner, ['public']);
  copier = new RowCopier(table!, T);
  otherCopier = new RowCopier(table!, O);
});

afterAll(async () => {
  await placements?.end();
  await db?.drop();
});

let placements: Placements | undefined;

async function keysInOrder(): Promise<string[]> {
  const { rows } = await db.owner.query<{ k: string }>(
    `select jsonb_build_object('tenant_id', tenant_id, 'code', code, 'n', n)::text as k from items where tenant_id = $1 order by code, n`,
    [T],
  );
  return rows.map((r) => r.k);
}

describe('key ranges of one tenant', () => {
  it('cuts every size-th key in the key order of the table (C collation, composite key); the other tenant adds none', async () => {
    const keys = await keysInOrder();
    expect(keys.length).toBe(102 - 1);
    const cuts = await copier.rangeCuts(db.owner, 10);
    expect(cuts.map((c) => JSON.parse(c))).toEqual(keys.filter((_, i) => (i + 1) % 10 === 0).map((k) => JSON.parse(k)));
    expect(cuts.length).toBe(10);
    expect(await otherCopier.rangeCuts(db.owner, 100)).toEqual([]);
  });

  it('the ranges cover each row once: counts add up to the whole, hash sums add up to the whole checksum', async () => {
    const cuts = await copier.rangeCuts(db.owner, 7);
    const whole = await copier.checksum(db.owner, 'source');
    const all = Array.from({ length: cuts.length + 1 }, (_, i) => i);
    const { sums, textHash } = await copier.checksumRanges(db.owner, 'source', cuts, all);
    expect(textHash).toBe(false);
    // a cut opens its range: the first holds the keys before the first cut (one fewer)
    expect(sums.map((p) => p.rows)).toEqual(
      all.map((index) => (index === 0 ? 6 : index < cuts.length ? 7 : 101 - 7 * cuts.length + 1)),
    );
    expect(sums.reduce((n, p) => n + p.rows, 0)).toBe(whole.rows);
    expect(sums.reduce((h, p) => h + BigInt(p.hash), 0n).toString()).toBe(whole.hash);
    // asked in another order, or some of them: the same sums, in the order asked
    const some = await copier.checksumRanges(db.owner, 'source', cuts, [3, 0, cuts.length]);
    expect(some.sums).toEqual([sums[3], sums[0], sums[cuts.length]]);
    // the row-text hash partitions the same way
    const wholeText = await copier.checksum(db.owner, 'source', true);
    const texts = await copier.checksumRanges(db.owner, 'source', cuts, all, true);
    expect(texts.textHash).toBe(true);
    expect(texts.sums.reduce((h, p) => h + BigInt(p.hash), 0n).toString()).toBe(wholeText.hash);
  });

  it("leaves out the keys of a move's pending changes, read in the same snapshot (source), or given (target)", async () => {
    const cuts = await copier.rangeCuts(db.owner, 10);
    const all = Array.from({ length: cuts.length + 1 }, (_, i) => i);
    const keys = await keysInOrder();
    const moveId = '00000000-0000-4000-8000-0000000000aa';
    const plain = await copier.checksumRanges(db.owner, 'source', cuts, all);
    // two changes of one key and one of another, in ranges 2 and 7
    await db.owner.query(
      `insert into tenantry_private.move_changes (move_id, relid, pk, op) select $1, 'public.items'::regclass, k::jsonb, 'U' from unnest($2::text[]) k`,
      [moveId, [keys[25]!, keys[25]!, keys[75]!]],
    );
    try {
      const source = await copier.checksumRanges(db.owner, 'source', cuts, all, false, {
        pendingOf: {
          moveId,
          relid: (await db.owner.query<{ oid: number }>(`select 'public.items'::regclass::oid::int as oid`)).rows[0]!
            .oid,
        },
      });
      expect((JSON.parse(source.pending!) as unknown[]).length).toBe(2);
      const changed = all.filter(
        (i) => source.sums[i]!.hash !== plain.sums[i]!.hash || source.sums[i]!.rows !== plain.sums[i]!.rows,
      );
      expect(changed).toEqual([2, 7]);
      expect(source.sums[2]!.rows).toBe(plain.sums[2]!.rows - 1);
      // the same keys given: the same sums (the target's side of the check)
      const given = await copier.checksumRanges(db.owner, 'source', cuts, all, false, { keys: source.pending! });
      expect(given.sums).toEqual(source.sums);
      // another move's changes are not this one's
      const other = await copier.checksumRanges(db.owner, 'source', cuts, all, false, {
        pendingOf: { moveId: '00000000-0000-4000-8000-0000000000bb', relid: 1 },
      });
      expect(other.sums.map((x) => x.rows)).toEqual(plain.sums.map((x) => x.rows));
      expect(other.pending).toBe('[]');
    } finally {
      await db.owner.query('delete from tenantry_private.move_changes where move_id = $1', [moveId]);
    }
  });

  it('maps each key to the range holding it: a cut opens its range, keys past the last cut are in the last range', async () => {
    const keys = await keysInOrder();
    const cuts = await copier.rangeCuts(db.owner, 10);
    for (const [i, k] of keys.entries()) {
      const expected = Math.floor((i + 1) / 10); // the 10th key is the first cut: it opens range 1
      expect(await copier.rangesOf(db.owner, cuts, `[${k}]`)).toEqual([expected]);
    }
    // a key that does not exist (deleted, or not yet inserted) still has a range
    const after = JSON.stringify({ tenant_id: T, code: 'é', n: 99 }); // 'é' sorts after 'z' in C
    const before = JSON.stringify({ tenant_id: T, code: '', n: 0 });
    expect(await copier.rangesOf(db.owner, cuts, `[${after}]`)).toEqual([cuts.length]);
    expect(await copier.rangesOf(db.owner, cuts, `[${before}]`)).toEqual([0]);
    // many at once: one range per key, in the keys' order
    expect(await copier.rangesOf(db.owner, cuts, `[${[after, ...keys, before].join(',')}]`)).toEqual([
      cuts.length,
      ...keys.map((_, i) => Math.floor((i + 1) / 10)),
      0,
    ]);
    // no cuts at all: one range, everything in it
    expect(await copier.rangesOf(db.owner, [], `[${after},${before}]`)).toEqual([0, 0]);
  });

  it('the greatest key above a cut, or none', async () => {
    const keys = await keysInOrder();
    expect(JSON.parse((await copier.lastKeyAfter(db.owner, null))!)).toEqual(JSON.parse(keys.at(-1)!));
    expect(JSON.parse((await copier.lastKeyAfter(db.owner, keys[40]!))!)).toEqual(JSON.parse(keys.at(-1)!));
    expect(await copier.lastKeyAfter(db.owner, keys.at(-1)!)).toBeNull();
    expect(await otherCopier.lastKeyAfter(db.owner, JSON.stringify({ tenant_id: O, code: 'x9', n: 2 }))).toBeNull();
  });

  it('a changed row changes only its range’s checksum', async () => {
    const cuts = await copier.rangeCuts(db.owner, 10);
    const sums = async () =>
      (
        await copier.checksumRanges(
          db.owner,
          'source',
          cuts,
          Array.from({ length: cuts.length + 1 }, (_, i) => i),
        )
      ).sums;
    const before = await sums();
    const keys = await keysInOrder();
    const victim = JSON.parse(keys[55]!) as { code: string; n: number };
    await db.owner.query(`update items set body = 'changed' where tenant_id = $1 and code = $2 and n = $3`, [
      T,
      victim.code,
      victim.n,
    ]);
    const after = await sums();
    const changed = after.map((s, i) => (s.hash === before[i]!.hash ? -1 : i)).filter((i) => i >= 0);
    expect(changed).toEqual([5]);
  });
});

describe('a move verified by key ranges to a target that orders keys otherwise', () => {
  it('a text key under another collation at the target: ranges differ, the whole table matches, the move switches', async () => {
    const U = '00000000-0000-4000-8000-000000000003';
    await db.owner.query(`insert into tenantry.tenants (id, slug, name) values ($1, 'ranges-u', 'ranges-u')`, [U]);
    // 'Z0' sorts before the m-codes in "C" and after them in ICU: the first and last ranges differ
    await db.owner.query(
      `insert into items (tenant_id, code, n, body) select $1, c, 1, 'u-' || c from unnest(array(select 'm' || lpad(g::text, 3, '0') from generate_series(0, 199) g) || array['Z0', 'a0']) c`,
      [U],
    );
    await createTenantSchema(db.owner, 't_icu', itemsDdl('und-x-icu'));
    const order = async (schema: string) =>
      (
        await db.owner.query<{ code: string }>(
          `select code from ${schema}.items where tenant_id = $1 order by code, n`,
          [U],
        )
      ).rows.map((r) => r.code);
    placements = new Placements({ catalog: db.owner, owners: { home: db.ownerUrl } });
    const mover = new TenantMover({ placements, catalog: db.owner, verify: 'ranges', verifyRangeRows: 10 });
    const move = await mover.move(U, { tier: 'schema', cluster: 'home', schema: 't_icu' });
    expect(move.step).toBe('done');
    const there = await order('t_icu');
    const here = await order('public');
    // the same rows, in another order: the premise of the test
    expect(there).not.toEqual(here);
    expect([...there].sort()).toEqual([...here].sort());
    expect(there.length).toBe(202);
    // the ranges of the source's cuts do differ at the target: only the whole-table check let it pass
    const [table] = await moveTables(db.owner, ['public'], db.owner, ['t_icu']);
    const copier = new RowCopier(table!, U);
    const cuts = await copier.rangeCuts(db.owner, 10);
    const all = Array.from({ length: cuts.length + 1 }, (_, i) => i);
    const [source, target] = [
      await copier.checksumRanges(db.owner, 'source', cuts, all),
      await copier.checksumRanges(db.owner, 'target', cuts, all),
    ];
    const differing = all.filter((i) => source.sums[i]!.hash !== target.sums[i]!.hash);
    expect(differing.length).toBeGreaterThan(0);
    expect(differing.length * 2).toBeLessThanOrEqual(all.length); // the per-range path, not the whole-table shortcut
    await mover.cleanup(move.id, { force: true });
  });
});

describe('the freeze of a move verified by key ranges', () => {
  it("compares the keys changed at or after their range's check: a change applied with the same stamp as that check, written wrongly at the target, is caught", async () => {
    const V = '00000000-0000-4000-8000-000000000004';
    await db.owner.query(`insert into tenantry.tenants (id, slug, name) values ($1, 'ranges-v', 'ranges-v')`, [V]);
    await db.owner.query(
      `insert into items (tenant_id, code, n, body) select $1, 'v' || lpad(g::text, 3, '0'), 1, 'v' from generate_series(1, 300) g`,
      [V],
    );
    await createTenantSchema(
      db.owner,
      't_v',
      `${itemsDdl('C')}
      create function spoil() returns trigger language plpgsql as $f$ begin new.body := 'spoiled'; return new; end $f$;
      create trigger spoil before update on items for each row when (new.code = 'v150') execute function spoil();`,
    );
    placements ??= new Placements({ catalog: db.owner, owners: { home: db.ownerUrl } });
    let moveId = '';
    // one table, no writes: a single check of every range (stamp 1); the final delta's change is
    // stamped 1 as well, so only a comparison of stamps "at or after" sees it
    const mover = new TenantMover({
      placements,
      catalog: db.owner,
      verify: 'ranges',
      verifyRangeRows: 10,
      onStep: async (step) => {
        if (step === 'freezing')
          await db.admin.query(
            `insert into tenantry_private.move_changes (move_id, relid, pk, op) values ($1, 'public.items'::regclass, jsonb_build_object('tenant_id', $2::uuid, 'code', 'v150', 'n', 1), 'U')`,
            [moveId, V],
          );
      },
    });
    moveId = (await mover.start(V, { tier: 'schema', cluster: 'home', schema: 't_v' })).id;
    const failure = await mover.run(moveId).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failure).toMatchObject({
      code: 'MOVE_VERIFICATION_FAILED',
      details: { table: 'items', source: { keys: 1, rows: 1 }, target: { keys: 1, rows: 1 } },
    });
    expect((await placements.get(V)).tier).toBe('shared');
    expect((await mover.rollback(moveId)).step).toBe('rolled_back');
  });
});

describe('a source installed before the TRUNCATE guard', () => {
  it('refuses to start capturing, telling to re-install, and can be rolled back', async () => {
    const W = '00000000-0000-4000-8000-000000000005';
    await db.owner.query(`insert into tenantry.tenants (id, slug, name) values ($1, 'ranges-w', 'ranges-w')`, [W]);
    await db.owner.query(`insert into items (tenant_id, code, n, body) values ($1, 'w', 1, 'w')`, [W]);
    await createTenantSchema(db.owner, 't_w', itemsDdl('C'));
    placements ??= new Placements({ catalog: db.owner, owners: { home: db.ownerUrl } });
    const mover = new TenantMover({ placements, catalog: db.owner });
    await db.admin.query(
      'alter function tenantry_private.refuse_move_truncate() rename to refuse_move_truncate_hidden',
    );
    try {
      const started = await mover.start(W, { tier: 'schema', cluster: 'home', schema: 't_w' });
      await expect(mover.run(started.id)).rejects.toMatchObject({
        code: 'MOVE_CAPTURE_UNSUPPORTED',
        message: expect.stringMatching(/tenantry install/),
      });
      expect((await mover.rollback(started.id)).step).toBe('rolled_back');
      expect((await placements.get(W)).tier).toBe('shared');
    } finally {
      await db.admin.query(
        'alter function tenantry_private.refuse_move_truncate_hidden() rename to refuse_move_truncate',
      );
    }
  });
});
