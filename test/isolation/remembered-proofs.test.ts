// Core 009 (issue 15): a value that passed the whole signed check is remembered (by its SHA-256)
// when the pool registers it, and later statements with it are answered by one lookup. These
// tests hold the remembered answer against core 007's functions for every kind of value, with
// the value registered in one tenant state and used in another (a hold, a move, a frozen
// tenant, the default route given up: each must forget the proof in its own transaction); show
// that the lookup is what answers; race registration against the changes that forget (READ
// COMMITTED and REPEATABLE READ); and look from the other tenant's side.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContextSigner, hmacPads } from '../../src/data/context-signer.js';
import { TenantPool } from '../../src/data/tenant-pool.js';
import { runAs } from '../../src/context/tenant-context.js';
import {
  CORE_007_ACCEPTED_WRONGLY,
  outcome,
  prepareComparison,
  signedValues,
  signWith,
  STATES,
} from '../support/signed-values.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let app: pg.Client;
const A = randomUUID();
const B = randomUUID();
const OLD_SECRET = 'an-old-context-secret-of-enough-length-0123456789';
const later = () => Math.floor(Date.now() / 1000) + 300;

/** A's rows gone and the default route served, touching only what differs: an UPDATE of local_route, even of no row, forgets every proof. */
async function resetState(): Promise<void> {
  await db.owner.query(`delete from tenantry.local_tenants where tenant_key = $1`, [A]);
  await db.owner.query(`delete from tenantry.inactive_tenants where tenant_key = $1`, [A]);
  const { rows } = await db.owner.query(`select serves_default from tenantry.local_route`);
  if (rows[0]?.serves_default === false) await db.owner.query(`update tenantry.local_route set serves_default = true`);
}
async function setState(statements: string[]): Promise<void> {
  await resetState();
  for (const s of statements) await db.owner.query(s.replaceAll('$A', A));
}
async function register(client: pg.Client, value: string | null): Promise<boolean | null> {
  const { rows } = await client.query(`select tenantry.register_context($1) as ok`, [value]);
  return rows[0].ok as boolean | null;
}
/** Proofs that can answer: of the key row's generation (others are left for tidying). */
async function proofs(): Promise<number> {
  const { rows } = await db.admin.query(
    `select count(*)::int as n from tenantry_private.context_proofs p
       join tenantry_private.context_key c on c.proof_generation = p.generation`,
  );
  return rows[0].n as number;
}

/** A transaction on `client` kept open as injected SQL can keep one: its own timeouts lifted. */
async function beginUnbounded(client: pg.Client): Promise<void> {
  await client.query('begin');
  await client.query(`set local lock_timeout = 0; set local statement_timeout = 0`);
}

/** `tenant` suspended by `holder` with its `lock_timeout` set to `timeout`: how long the hold took (ms). */
async function suspendWithin(holder: pg.Client, tenant: string, timeout: string): Promise<number> {
  await holder.query(`set lock_timeout = '${timeout}'`);
  const started = Date.now();
  await holder.query(`insert into tenantry.inactive_tenants (tenant_key, status) values ($1, 'suspended')`, [tenant]);
  return Date.now() - started;
}

/** `tenant`'s proofs that can answer (of the key row's generation). */
async function answering(tenant: string): Promise<number> {
  const { rows } = await db.admin.query(
    `select count(*)::int as n from tenantry_private.context_proofs p
       join tenantry_private.context_key c on c.proof_generation = p.generation
      where p.tenant_key = $1`,
    [tenant],
  );
  return rows[0].n as number;
}

/** `fn` with a second session (as `url`'s role); then its transaction and the app's rolled back, it closed, A's state reset. */
async function withSession(url: string, fn: (other: pg.Client) => Promise<void>): Promise<void> {
  const other = new pg.Client({ connectionString: url });
  await other.connect();
  try {
    await fn(other);
  } finally {
    await other.query('rollback').catch(() => undefined);
    await app.query('rollback').catch(() => undefined);
    await other.end();
    await resetState();
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  await prepareComparison(db, A, B, OLD_SECRET);
  app = new pg.Client({ connectionString: db.appUrl });
  await app.connect();
});
afterAll(async () => {
  await app?.end();
  await db?.drop();
});

describe('a remembered proof answers as the whole check would', () => {
  it('registered in one state, used in another: the same tenant or the same SQLSTATE as core 007', async () => {
    const differences: string[] = [];
    let registered = 0;
    let passed = 0;
    try {
      for (const [registeredIn, setUp] of STATES) {
        for (const [usedIn, change] of STATES) {
          await setState(setUp);
          await db.admin.query(`delete from tenantry_private.context_proofs`);
          const vals = signedValues(A, db.contextSecret, B, OLD_SECRET);
          for (const [, value] of vals) if ((await register(app, value)) === true) registered++;
          if (usedIn !== registeredIn) await setState(change);
          for (const [kind, value] of vals) {
            for (const fn of ['current_tenant_id', 'home_tenant_id']) {
              const now = await outcome(app, value, `tenantry.${fn}()`);
              const before = CORE_007_ACCEPTED_WRONGLY.has(kind)
                ? 'error:TR001'
                : await outcome(app, value, `core007.${fn}()`);
              if (now !== before)
                differences.push(`${registeredIn} → ${usedIn} / ${kind} / ${fn}: ${now}, core 007 ${before}`);
              if (now === `id:${A}`) passed++;
            }
          }
        }
      }
    } finally {
      await resetState();
    }
    expect(differences).toEqual([]);
    // values were remembered (the signer's, where A was served) and passed
    expect(registered).toBeGreaterThan(20);
    expect(passed).toBeGreaterThan(50);
  });

  it('the lookup is what answers: with the key made wrong behind its back, a remembered value still passes, another does not', async () => {
    const signer = new ContextSigner(db.contextSecret);
    const value = signer.encode(A);
    const unregistered = new ContextSigner(db.contextSecret, { ttlSeconds: 600 }).encode(A);
    expect(await register(app, value)).toBe(true);
    const { rows } = await db.admin.query(`select ipad, opad from tenantry_private.context_key`);
    try {
      // the triggers off: the key changes without forgetting (no real path does this)
      await db.admin.query(`alter table tenantry_private.context_key disable trigger user`);
      await db.admin.query(`update tenantry_private.context_key set ipad = $1, opad = $1`, [Buffer.alloc(64, 7)]);
      expect(await outcome(app, value, 'tenantry.current_tenant_id()')).toBe(`id:${A}`);
      expect(await outcome(app, unregistered, 'tenantry.current_tenant_id()')).toBe('error:TR001');
    } finally {
      await db.admin.query(`update tenantry_private.context_key set ipad = $1, opad = $2`, [
        rows[0].ipad,
        rows[0].opad,
      ]);
      await db.admin.query(`alter table tenantry_private.context_key enable trigger user`);
    }
  });

  it('only a value that passes is remembered; anything else is refused without a row', async () => {
    await db.admin.query(`delete from tenantry_private.context_proofs`);
    const exp = later();
    for (const value of [
      null,
      '',
      `${A}.${exp}.${'0'.repeat(64)}`,
      signWith('a-different-secret-of-enough-length-00000000000', `${A}.${exp}`),
      signWith(OLD_SECRET, `${A}.${exp}`),
      signWith(db.contextSecret, `${A}.${exp - 3600}`),
      signWith(db.contextSecret, `${A.toUpperCase()}.${exp}`),
      signWith(db.contextSecret, `${A}.${exp}.3`),
      'x'.repeat(200),
    ])
      expect(await register(app, value), String(value)).toBe(false);
    expect(await proofs()).toBe(0);
  });

  it('a rotation of the key forgets every proof; a value of the old key passes only by the whole check, during the overlap', async () => {
    const value = new ContextSigner(db.contextSecret).encode(A);
    expect(await register(app, value)).toBe(true);
    expect(await proofs()).toBeGreaterThan(0);
    const { rows } = await db.admin.query(`select * from tenantry_private.context_key`);
    const fresh = hmacPads('a-rotated-context-secret-of-enough-length-000000');
    try {
      await db.admin.query(
        `update tenantry_private.context_key set previous_ipad = ipad, previous_opad = opad, previous_until = now() + interval '1 hour', ipad = $1, opad = $2`,
        [fresh.ipad, fresh.opad],
      );
      expect(await proofs()).toBe(0);
      expect(await outcome(app, value, 'tenantry.current_tenant_id()')).toBe(`id:${A}`);
      // not the current key: not remembered
      expect(await register(app, value)).toBe(false);
      await db.admin.query(`update tenantry_private.context_key set previous_until = now() - interval '1 second'`);
      expect(await outcome(app, value, 'tenantry.current_tenant_id()')).toBe('error:TR001');
    } finally {
      const k = rows[0];
      await db.admin.query(
        `update tenantry_private.context_key set ipad = $1, opad = $2, previous_ipad = $3, previous_opad = $4, previous_until = $5`,
        [k.ipad, k.opad, k.previous_ipad, k.previous_opad, k.previous_until],
      );
    }
  });

  it('a batch: each value tested on its own; a tenant being changed is skipped without waiting; more than 1,000 values: none', async () => {
    await resetState();
    await db.admin.query(`delete from tenantry_private.context_proofs`);
    const signer = new ContextSigner(db.contextSecret, { ttlSeconds: 760 });
    const others = Array.from({ length: 5 }, () => randomUUID());
    const good = others.map((t) => signer.encode(t));
    const bad = [`${A}.${later()}.${'0'.repeat(64)}`, 'x', '', signWith(db.contextSecret, `${A}.${'9'.repeat(25)}`)];
    await withSession(db.ownerUrl, async (holder) => {
      // tenant A's refresh in progress (uncommitted): A's value is skipped, the others are not held up
      await holder.query('begin');
      await holder.query(`insert into tenantry.inactive_tenants (tenant_key, status) values ($1, 'suspended')`, [A]);
      const started = Date.now();
      const { rows } = await app.query(`select tenantry.register_contexts($1::text[]) as n`, [
        [...good, ...bad, signer.encode(A)],
      ]);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(rows[0].n).toBe(good.length);
      await holder.query('rollback');
      expect(await proofs()).toBe(good.length);
      const many = await app.query(`select tenantry.register_contexts($1::text[]) as n`, [
        Array.from({ length: 1001 }, () => signer.encode(A)),
      ]);
      expect(many.rows[0].n).toBe(0);
    });
  });

  it('unsigned mode: registrations are not used (null), and nothing is remembered', async () => {
    const { rows } = await db.admin.query(`select value from tenantry.meta where key = 'context_mode'`);
    try {
      await db.admin.query(`update tenantry.meta set value = 'unsigned' where key = 'context_mode'`);
      expect(await register(app, new ContextSigner(db.contextSecret).encode(A))).toBe(null);
    } finally {
      await db.admin.query(`update tenantry.meta set value = $1 where key = 'context_mode'`, [rows[0].value]);
    }
  });

  it('not at READ COMMITTED, or read only: not now (false)', async () => {
    const value = new ContextSigner(db.contextSecret, { ttlSeconds: 900 }).encode(A);
    for (const begin of [
      'begin isolation level repeatable read',
      'begin isolation level serializable',
      'begin read only',
    ]) {
      await app.query(begin);
      try {
        expect(await register(app, value), begin).toBe(false);
        // the batch form says why: -1, not in this transaction (the pool tells its logger, once)
        const { rows } = await app.query('select tenantry.register_contexts($1::text[]) as n', [[value]]);
        expect(rows[0].n, begin).toBe(-1);
      } finally {
        await app.query('rollback');
      }
    }
  });
});

describe('registration against the changes that forget', () => {
  it('a hold that commits while a registration is open waits for it (100 ms at most), then forgets its proof (READ COMMITTED)', async () => {
    await resetState();
    const value = new ContextSigner(db.contextSecret, { ttlSeconds: 700 }).encode(A);
    await withSession(db.ownerUrl, async (holder) => {
      await app.query('begin');
      expect(await register(app, value)).toBe(true);
      // the hold waits on the tenant's lock the open registration holds (or, past 100 ms on a
      // loaded machine, ends every proof's generation: the same outcome for A)
      await holder.query(`set lock_timeout = '10s'`);
      const hold = holder.query(`insert into tenantry.inactive_tenants (tenant_key, status) values ($1, 'suspended')`, [
        A,
      ]);
      await new Promise((r) => setTimeout(r, 20));
      await app.query('commit');
      await hold;
      expect(await outcome(app, value, 'tenantry.current_tenant_id()')).toBe('error:TR005');
      expect(await answering(A)).toBe(0);
    });
  });

  it('a registration left open (injected SQL, a value of its own tenant) does not hold up the hold: every proof gets a new generation, the open one never answers', async () => {
    await resetState();
    const C = randomUUID();
    const value = new ContextSigner(db.contextSecret, { ttlSeconds: 702 }).encode(A);
    const other = new ContextSigner(db.contextSecret, { ttlSeconds: 702 }).encode(C);
    expect(await register(app, other)).toBe(true);
    expect(await answering(C)).toBe(1);
    await withSession(db.ownerUrl, async (holder) => {
      await beginUnbounded(app);
      expect(await register(app, value)).toBe(true);
      expect(await suspendWithin(holder, A, '5s')).toBeLessThan(4000);
      // the holder's own lock_timeout is as it was
      expect((await holder.query(`show lock_timeout`)).rows[0].lock_timeout).toBe('5s');
      expect(await outcome(holder, value, 'tenantry.current_tenant_id()')).toBe('error:TR005');
      await app.query('commit');
      expect(await outcome(app, value, 'tenantry.current_tenant_id()')).toBe('error:TR005');
      expect(await answering(A)).toBe(0);
      // the others' proofs, too, are of the old generation: checked in full until registered again
      expect(await answering(C)).toBe(0);
      expect(await outcome(app, other, 'tenantry.current_tenant_id()')).toBe(`id:${C}`);
    });
  });

  it('a registration while a hold is uncommitted is not made (the lock is taken without waiting)', async () => {
    await resetState();
    const value = new ContextSigner(db.contextSecret, { ttlSeconds: 710 }).encode(A);
    await withSession(db.ownerUrl, async (holder) => {
      await holder.query('begin');
      await holder.query(`insert into tenantry.inactive_tenants (tenant_key, status) values ($1, 'suspended')`, [A]);
      const started = Date.now();
      expect(await register(app, value)).toBe(false);
      expect(Date.now() - started).toBeLessThan(2000);
      await holder.query('commit');
      expect(await register(app, value)).toBe(false);
      expect(await outcome(app, value, 'tenantry.current_tenant_id()')).toBe('error:TR005');
    });
  });

  it('a hold made in a REPEATABLE READ transaction that began before a registration fails with 40001, not with the proof kept', async () => {
    await resetState();
    const value = new ContextSigner(db.contextSecret, { ttlSeconds: 720 }).encode(A);
    await withSession(db.ownerUrl, async (holder) => {
      await holder.query('begin isolation level repeatable read');
      await holder.query('select 1 from tenantry.inactive_tenants limit 1'); // the snapshot, before the registration
      expect(await register(app, value)).toBe(true);
      await expect(
        holder.query(`insert into tenantry.inactive_tenants (tenant_key, status) values ($1, 'suspended')`, [A]),
      ).rejects.toMatchObject({ code: '40001' });
      await holder.query('rollback');
      // retried, it forgets the proof
      await holder.query(`insert into tenantry.inactive_tenants (tenant_key, status) values ($1, 'suspended')`, [A]);
      expect(await outcome(app, value, 'tenantry.current_tenant_id()')).toBe('error:TR005');
    });
  });

  it('a key change in a REPEATABLE READ transaction that began before a registration still forgets it', async () => {
    await resetState();
    const value = new ContextSigner(db.contextSecret, { ttlSeconds: 730 }).encode(A);
    await withSession(db.adminUrl, async (changer) => {
      await changer.query('begin isolation level repeatable read');
      await changer.query('select 1 from tenantry_private.context_key');
      expect(await register(app, value)).toBe(true);
      await changer.query(`update tenantry_private.context_key set previous_until = previous_until`);
      await changer.query('commit');
      expect(await proofs()).toBe(0);
    });
  });

  it('a registration left open (injected SQL) holds up no key change, no rebuild and no other tenant’s hold, at any isolation level', async () => {
    await resetState();
    const C = randomUUID();
    const value = new ContextSigner(db.contextSecret, { ttlSeconds: 735 }).encode(A);
    const forgedForC = `${C}.${later()}.${'f'.repeat(64)}`;
    await withSession(db.adminUrl, async (admin) => {
      await app.query('begin');
      expect(await register(app, value)).toBe(true);
      // a forged value takes no tenant's lock
      expect((await app.query(`select tenantry.register_contexts($1::text[]) as n`, [[forgedForC]])).rows[0].n).toBe(0);
      // and a read of A's rows keeps its locks on the proofs while the changes run
      await app.query(`select set_config('tenantry.context', $1, true)`, [value]);
      await app.query('select body from notes');
      await admin.query(`set lock_timeout = '3s'`);
      for (const level of ['read committed', 'repeatable read', 'serializable']) {
        await admin.query(`begin isolation level ${level}`);
        await admin.query(`update tenantry_private.context_key set previous_until = previous_until`);
        await admin.query(`update tenantry.local_route set serves_default = true`);
        await admin.query(`insert into tenantry.inactive_tenants (tenant_key, status) values ($1, 'suspended')`, [C]);
        await admin.query(`delete from tenantry.inactive_tenants where tenant_key = $1`, [C]);
        await admin.query('commit');
      }
      await app.query('commit');
      // the key row changed after A's registration: its proof no longer answers
      expect(await proofs()).toBe(0);
    });
  });

  it('a key change left open: a registration of a value remembered before skips it without waiting', async () => {
    await resetState();
    const value = new ContextSigner(db.contextSecret, { ttlSeconds: 737 }).encode(A);
    const fresh = new ContextSigner(db.contextSecret, { ttlSeconds: 738 }).encode(A);
    expect(await register(app, value)).toBe(true);
    await withSession(db.adminUrl, async (changer) => {
      // the key row written, not committed: its trigger is tidying every proof away (row locks)
      await changer.query('begin');
      await changer.query(`update tenantry_private.context_key set previous_until = previous_until`);
      await app.query(`set lock_timeout = '3s'`);
      try {
        const started = Date.now();
        // remembered under the current generation: counted, not proven again (its row, the
        // changer's, is not touched, so not waited for); a value never registered goes in
        expect(
          (await app.query(`select tenantry.register_contexts($1::text[]) as n`, [[value, fresh]])).rows[0].n,
        ).toBe(2);
        expect(Date.now() - started).toBeLessThan(2000);
      } finally {
        await app.query(`reset lock_timeout`);
      }
      await changer.query('rollback');
      // the change rolled back: both remembered, both answer
      expect(await outcome(app, value, 'tenantry.current_tenant_id()')).toBe(`id:${A}`);
      expect(await outcome(app, fresh, 'tenantry.current_tenant_id()')).toBe(`id:${A}`);
      expect(await proofs()).toBe(2);
    });
  });

  it('odd arrays and strings (an attacker round): an answer every time, nothing remembered but the real value', async () => {
    const value = new ContextSigner(db.contextSecret, { ttlSeconds: 747 }).encode(A);
    const expiry = Math.floor(Date.now() / 1000) + 300;
    const call = async (sql: string, param?: unknown): Promise<unknown> =>
      (await app.query(`select tenantry.register_contexts(${sql}) as n`, param === undefined ? [] : [param])).rows[0].n;
    const cases: [string, () => Promise<unknown>, unknown][] = [
      ['null array', () => call('$1::text[]', null), 0],
      ['empty', () => call('$1::text[]', []), 0],
      ['null elements', () => call('$1::text[]', Array(1000).fill(null)), 0],
      [
        '1,000 junk values',
        () =>
          call(
            '$1::text[]',
            Array.from({ length: 1000 }, (_, i) => `x${i}`),
          ),
        0,
      ],
      [
        '1,001 values',
        () =>
          call(
            '$1::text[]',
            Array.from({ length: 1001 }, () => value),
          ),
        0,
      ],
      ['a 2-D array', () => call(`array[['a','b'],['c','d']]`), 0],
      ['a lower bound of -5', () => call(`'[-5:-4]={a,b}'::text[]`), 0],
      ['a 10 MB string', () => call('$1::text[]', ['a'.repeat(10_000_000)]), 0],
      ['trailing newline and space', () => call('$1::text[]', [`${value}\n`, `${value} `]), 0],
      ['many dots, signed', () => call('$1::text[]', [signWith(db.contextSecret, `${A}.${expiry}.1.2.3`)]), 0],
      ['other digits, signed', () => call('$1::text[]', [signWith(db.contextSecret, `${A}.١٢٣٤٥٦٧٨٩٠`)]), 0],
      ['the value twice', () => call('$1::text[]', [value, value]), 1],
      ['the value again, in another collation', () => call(`array[$1::text collate "C"]`, value), 1],
    ];
    const outcomes: Record<string, unknown> = {};
    for (const [name, run, expected] of cases) {
      outcomes[name] = await run().catch((e: { code?: string }) => `error ${e.code}`);
      expect(outcomes[name], name).toBe(expected);
    }
    const { rows } = await db.admin.query(
      `select count(*)::int as n from tenantry_private.context_proofs where value_sha256 = sha256(convert_to($1, 'UTF8'))`,
      [value],
    );
    expect(rows[0].n).toBe(1);
  }, 60_000);

  it('a value given many times in one batch is tested and written once', async () => {
    const value = new ContextSigner(db.contextSecret, { ttlSeconds: 745 }).encode(A);
    const { rows } = await app.query(`select tenantry.register_contexts(array_fill($1::text, array[1000])) as n`, [
      value,
    ]);
    expect(rows[0].n).toBe(1);
  });

  it('a move (route epoch, frozen) and the default route given up forget the proofs', async () => {
    const value = new ContextSigner(db.contextSecret, { ttlSeconds: 740 }).encode(A, 3);
    const plain = new ContextSigner(db.contextSecret, { ttlSeconds: 740 }).encode(A);
    try {
      await setState([`insert into tenantry.local_tenants (tenant_key, state, epoch) values ('$A', 'active', 3)`]);
      expect(await register(app, value)).toBe(true);
      await db.owner.query(`update tenantry.local_tenants set state = 'frozen' where tenant_key = $1`, [A]);
      expect(await outcome(app, value, 'tenantry.current_tenant_id()')).toBe('error:TR004');
      // every route at once (TRUNCATE rebuilds the gate): a value of route 3 no longer passes
      await setState([`insert into tenantry.local_tenants (tenant_key, state, epoch) values ('$A', 'active', 3)`]);
      expect(await register(app, value)).toBe(true);
      await db.owner.query(`truncate tenantry.local_tenants`);
      expect(await proofs()).toBe(0);
      expect(await outcome(app, value, 'tenantry.current_tenant_id()')).toBe('error:TR003');
      await resetState();
      expect(await register(app, plain)).toBe(true);
      await db.owner.query(`update tenantry.local_route set serves_default = false`);
      expect(await outcome(app, plain, 'tenantry.current_tenant_id()')).toBe('error:TR003');
    } finally {
      await resetState();
    }
  });
});

describe("from the other tenant's side", () => {
  it("B's rows stay unread and unchanged under A's remembered value, a forged one and B's suspended one", async () => {
    await resetState();
    const before = await db.admin.query(`select id, body from notes where tenant_id = $1 order by id`, [B]);
    const a = new ContextSigner(db.contextSecret, { ttlSeconds: 750 }).encode(A);
    const b = new ContextSigner(db.contextSecret, { ttlSeconds: 750 }).encode(B);
    expect(await register(app, a)).toBe(true);
    expect(await register(app, b)).toBe(true);
    await db.owner.query(`insert into tenantry.inactive_tenants (tenant_key, status) values ($1, 'suspended')`, [B]);
    try {
      // A's remembered value: A's rows only
      await app.query('begin');
      await app.query(`select set_config('tenantry.context', $1, true)`, [a]);
      expect((await app.query(`select body from notes`)).rows).toEqual([{ body: 'a1' }]);
      expect((await app.query(`update notes set body = 'changed' where tenant_id = $1`, [B])).rowCount).toBe(0);
      await app.query('commit');
      // B's value was remembered before B's hold: forgotten with it
      for (const value of [b, b.replace(B, A), `${b.slice(0, -64)}${'f'.repeat(64)}`]) {
        await app.query('begin');
        await app.query(`select set_config('tenantry.context', $1, true)`, [value]);
        await expect(app.query(`select body from notes`)).rejects.toMatchObject({
          code: expect.stringMatching(/^TR00[15]$/),
        });
        await app.query('rollback');
      }
      // the proofs are not the app role's to read or write
      await expect(app.query(`select * from tenantry_private.context_proofs`)).rejects.toMatchObject({ code: '42501' });
      await expect(
        app.query(`insert into tenantry_private.context_proofs values (sha256('x'), $1, $1::uuid, 9999999999)`, [B]),
      ).rejects.toMatchObject({ code: '42501' });
    } finally {
      await app.query('rollback').catch(() => undefined);
      await db.owner.query(`delete from tenantry.inactive_tenants where tenant_key = $1`, [B]);
    }
    const after = await db.admin.query(`select id, body from notes where tenant_id = $1 order by id`, [B]);
    expect(after.rows).toEqual(before.rows);
  });

  it("A's session cannot hold up B's hold: not with the advisory lock functions, not with A's own registration, not with a forged value of B's", async () => {
    await resetState();
    const a = new ContextSigner(db.contextSecret, { ttlSeconds: 755 }).encode(A);
    const b = new ContextSigner(db.contextSecret, { ttlSeconds: 755 }).encode(B);
    expect(await register(app, b)).toBe(true);
    const before = await db.admin.query(`select id, body from notes where tenant_id = $1 order by id`, [B]);
    await withSession(db.ownerUrl, async (holder) => {
      // A's transaction (injected SQL): every lock it can name for B, kept open
      await beginUnbounded(app);
      await app.query(`select pg_advisory_xact_lock(hashtext('tenantry.context_gate'), hashtext($1))`, [B]);
      expect(await register(app, a)).toBe(true);
      const forged = `${B}.${later()}.${'e'.repeat(64)}`;
      expect((await app.query(`select tenantry.register_contexts($1::text[]) as n`, [[forged]])).rows[0].n).toBe(0);
      // the lock the refresh takes is not the app role's to take
      await expect(
        app.query(`select 1 from tenantry_private.context_proof_marks where tenant_key = $1 for update`, [B]),
      ).rejects.toMatchObject({ code: '42501' });
      await app.query('rollback');
      await app.query('begin');
      await app.query(`select pg_advisory_xact_lock(hashtext('tenantry.context_gate'), hashtext($1))`, [B]);
      expect(await register(app, a)).toBe(true);
      // B's hold, meanwhile: it does not wait for A's transaction, and forgets B's proof
      await suspendWithin(holder, B, '2s');
      try {
        const { rows } = await db.admin.query(
          `select count(*)::int as n from tenantry_private.context_proofs where tenant_key = $1`,
          [B],
        );
        expect(rows[0].n).toBe(0);
        await app.query('commit');
        expect(await outcome(app, b, 'tenantry.current_tenant_id()')).toBe('error:TR005');
      } finally {
        await holder.query(`delete from tenantry.inactive_tenants where tenant_key = $1`, [B]);
      }
    });
    const after = await db.admin.query(`select id, body from notes where tenant_id = $1 order by id`, [B]);
    expect(after.rows).toEqual(before.rows);
  });
});

describe('registrations held open by another tenant', () => {
  it("B's old value (expired, leaked) takes no lock: A's transaction holding it up holds up nothing, and writes no row", async () => {
    await resetState();
    const D = randomUUID();
    const expired = (tenant: string) =>
      signWith(db.contextSecret, `${tenant}.${Math.floor(Date.now() / 1000) - 100_000}`);
    await withSession(db.ownerUrl, async (holder) => {
      await beginUnbounded(app);
      expect(
        (await app.query(`select tenantry.register_contexts($1::text[]) as n`, [[expired(B), expired(D)]])).rows[0].n,
      ).toBe(0);
      expect(await suspendWithin(holder, B, '2s')).toBeLessThan(1000);
      await holder.query(`delete from tenantry.inactive_tenants where tenant_key = $1`, [B]);
      await app.query('commit');
    });
    const { rows } = await db.admin.query(
      `select count(*)::int as n from tenantry_private.context_proof_marks where tenant_key = $1`,
      [D],
    );
    expect(rows[0].n).toBe(0);
  });

  it("B's valid value (leaked) registered in A's open transaction: B's hold goes through, and B's value is refused from its commit on", async () => {
    await resetState();
    const b = new ContextSigner(db.contextSecret, { ttlSeconds: 765 }).encode(B);
    const before = await db.admin.query(`select id, body from notes where tenant_id = $1 order by id`, [B]);
    await withSession(db.ownerUrl, async (holder) => {
      await beginUnbounded(app);
      expect(await register(app, b)).toBe(true);
      const took = await suspendWithin(holder, B, '5s');
      try {
        expect(took).toBeLessThan(4000);
        // A's open transaction: its registration of B is of the old generation
        await app.query(`select set_config('tenantry.context', $1, true)`, [b]);
        await app.query('commit');
        expect(await outcome(app, b, 'tenantry.current_tenant_id()')).toBe('error:TR005');
        expect(await answering(B)).toBe(0);
      } finally {
        await holder.query(`delete from tenantry.inactive_tenants where tenant_key = $1`, [B]);
      }
    });
    const after = await db.admin.query(`select id, body from notes where tenant_id = $1 order by id`, [B]);
    expect(after.rows).toEqual(before.rows);
  });

  it("a first registration of its own tenant left open (F) stalls no other registration, and no other tenant's hold", async () => {
    await resetState();
    const F = randomUUID();
    const C = randomUUID();
    const signer = new ContextSigner(db.contextSecret, { ttlSeconds: 770 });
    const pool = new pg.Client({ connectionString: db.appUrl });
    await pool.connect();
    try {
      await withSession(db.ownerUrl, async (holder) => {
        await beginUnbounded(app);
        expect(await register(app, signer.encode(F))).toBe(true);
        // the pool's batch: B (a row already), C (none yet) and F (its first row uncommitted)
        const started = Date.now();
        const n = (
          await pool.query(`select tenantry.register_contexts($1::text[]) as n`, [
            [signer.encode(B), signer.encode(C), signer.encode(F)],
          ])
        ).rows[0].n as number;
        expect(Date.now() - started).toBeLessThan(2000);
        expect(n).toBeGreaterThanOrEqual(1); // B at least (C's first row waits for a batch without F)
        expect(await answering(B)).toBe(1);
        expect((await pool.query(`show lock_timeout`)).rows[0].lock_timeout).not.toBe('10ms');
        // C's hold, meanwhile
        expect(await suspendWithin(holder, C, '3s')).toBeLessThan(2000);
        await holder.query(`delete from tenantry.inactive_tenants where tenant_key = $1`, [C]);
        await app.query('rollback');
        // F's row gone with its transaction: C's first registration is made now
        expect(await register(pool, signer.encode(C))).toBe(true);
      });
    } finally {
      await pool.end();
    }
  });
});

describe('a value another instance registered', () => {
  /** A new tenant (served by the default route) whose signing window has 30 s or more left, so two pools sign the same value. */
  function tenantMidWindow(): string {
    for (;;) {
      const id = randomUUID();
      const now = Math.floor(Date.now() / 1000);
      if ((now - (Number.parseInt(id.slice(0, 8), 16) % 60)) % 60 < 30) return id;
    }
  }
  /** The tenant's marks row's writes and its proof rows' xmin: what a registration writes. */
  async function written(tenant: string): Promise<string> {
    const { rows } = await db.admin.query(
      `select (select writes from tenantry_private.context_proof_marks where tenant_key = $1) as writes,
              (select string_agg(xmin::text || '/' || generation::text, ',' order by xmin::text) from tenantry_private.context_proofs where tenant_key = $1) as proofs`,
      [tenant],
    );
    return JSON.stringify(rows[0]);
  }

  it('is counted without the check, the locks or a write, even while its tenant’s lock is held; a retired or deleted proof is not', async () => {
    await resetState();
    const value = new ContextSigner(db.contextSecret, { ttlSeconds: 300 }).encode(A);
    expect(await register(app, value)).toBe(true);
    const before = await written(A);
    await withSession(db.adminUrl, async (holder) => {
      // A's lock (its marks row) held by another transaction: a registration that needed it would skip A (false)
      await holder.query('begin');
      await holder.query(`select 1 from tenantry_private.context_proof_marks where tenant_key = $1 for update`, [A]);
      await app.query(`set lock_timeout = '3s'`);
      try {
        const started = Date.now();
        expect(await register(app, value)).toBe(true);
        expect(Date.now() - started).toBeLessThan(2000);
      } finally {
        await app.query(`reset lock_timeout`);
      }
      expect(await written(A)).toBe(before);
    });
    // a new generation (a rebuild): the old proof no longer answers, so it is proven again
    await db.owner.query(`select tenantry.rebuild_context_gate()`);
    expect(await answering(A)).toBe(0);
    expect(await register(app, value)).toBe(true);
    expect(await answering(A)).toBe(1);
    expect(await written(A)).not.toBe(before);
    // a hold deletes it; registering again runs the whole check, which refuses it: nothing written
    await setState([`insert into tenantry.inactive_tenants (tenant_key, status) values ('$A', 'suspended')`]);
    const held = await written(A);
    expect(await register(app, value)).toBe(false);
    expect(await written(A)).toBe(held);
    expect(await answering(A)).toBe(0);
    expect(await outcome(app, value, 'tenantry.current_tenant_id()')).toBe('error:TR005');
    await resetState();
  });

  it('two pools with the same secret send one value for a tenant, proven once and answered for both', async () => {
    const tenant = tenantMidWindow();
    const pools = [0, 1].map(
      () => new TenantPool({ connectionString: db.appUrl, contextSecret: db.contextSecret, max: 2 }),
    );
    try {
      for (const pool of pools) {
        // the second pool signs in a later second than the first (an instance started later)
        const second = Math.floor(Date.now() / 1000);
        while (Math.floor(Date.now() / 1000) === second) await new Promise((r) => setTimeout(r, 20));
        for (let i = 0; i < 3; i++) await runAs(tenant, () => pool.query('select body from notes'));
        const deadline = Date.now() + 5000;
        while ((await answering(tenant)) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 300));
      const { rows } = await db.admin.query(
        `select count(*)::int as n from tenantry_private.context_proofs where tenant_key = $1`,
        [tenant],
      );
      expect(rows[0].n).toBe(1);
      // and another tenant's rows stay out of its reach through either pool
      for (const pool of pools)
        expect((await runAs(tenant, () => pool.query('select body from notes'))).rows).toEqual([]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });
});

describe('TenantPool registers the values it sends', () => {
  it("a tenant's value used 3 times within a minute is remembered, in the background; one used less, or rememberProofs: false, is not", async () => {
    await resetState();
    await db.admin.query(`delete from tenantry_private.context_proofs`);
    const off = new TenantPool({
      connectionString: db.appUrl,
      contextSecret: db.contextSecret,
      rememberProofs: false,
      max: 2,
    });
    try {
      for (let i = 0; i < 20; i++) await runAs(A, () => off.query('select body from notes'));
      await new Promise((r) => setTimeout(r, 200));
      expect(await proofs()).toBe(0);
    } finally {
      await off.end();
    }
    const pool = new TenantPool({ connectionString: db.appUrl, contextSecret: db.contextSecret, max: 2 });
    try {
      // B: 2 uses, not registered; A: 3
      for (let i = 0; i < 2; i++) await runAs(B, () => pool.query('select body from notes'));
      for (let i = 0; i < 3; i++)
        expect((await runAs(A, () => pool.query('select body from notes'))).rows).toEqual([{ body: 'a1' }]);
      const deadline = Date.now() + 5000;
      while ((await proofs()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await proofs()).toBe(1);
      expect((await runAs(A, () => pool.query('select body from notes'))).rows).toEqual([{ body: 'a1' }]);
      expect((await runAs(B, () => pool.query('select body from notes'))).rows).toEqual([{ body: 'b1' }]);
    } finally {
      await pool.end();
    }
  });
});

describe('a pool whose sessions cannot register', () => {
  it('sessions defaulting to REPEATABLE READ: nothing remembered, the logger told once, every statement still answered as its tenant', async () => {
    await db.admin.query(`delete from tenantry_private.context_proofs`);
    const warnings: string[] = [];
    const logger = { info: () => undefined, warn: (_: unknown, message: string) => void warnings.push(message) };
    const pool = new TenantPool({
      // straight to the server: a startup option does not pass through pgbouncer
      connectionString: db.directAppUrl ?? db.appUrl,
      contextSecret: db.contextSecret,
      options: '-c default_transaction_isolation=repeatable\\ read',
      logger,
      max: 2,
    });
    try {
      for (let i = 0; i < 6; i++) {
        expect((await runAs(A, () => pool.query('select body from notes'))).rows).toEqual([{ body: 'a1' }]);
        expect((await runAs(B, () => pool.query('select body from notes'))).rows).toEqual([{ body: 'b1' }]);
      }
      const deadline = Date.now() + 5000;
      while (!warnings.some((w) => w.includes('would not register')) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      expect(warnings.filter((w) => w.includes('would not register'))).toHaveLength(1);
      expect(warnings[0]).toMatch(/READ COMMITTED and a writable primary/);
      expect(await proofs()).toBe(0);
    } finally {
      await pool.end();
    }
  });
});

describe('plans made on a small table', () => {
  // A session plans the lookup once and keeps the plan until the table is analysed again: planned
  // while the proofs table was small, it was a sequential scan that hashed the setting for every
  // row, and stayed one while registrations filled the table (13.7 ms a call at 10,000 proofs).
  it('the lookup stays on the primary key as the table grows', async () => {
    await resetState();
    await db.admin.query(`delete from tenantry_private.context_proofs`);
    const signer = new ContextSigner(db.contextSecret);
    const values = (n: number) => Array.from({ length: n }, () => signer.encode(randomUUID()));
    const registrar = new pg.Client({ connectionString: db.appUrl });
    const session = new pg.Client({ connectionString: db.appUrl });
    await registrar.connect();
    await session.connect();
    try {
      const mine = signer.encode(A);
      await registrar.query(`select tenantry.register_contexts($1::text[])`, [[mine, ...values(59)]]);
      await db.admin.query(`analyze tenantry_private.context_proofs`);
      // both sessions plan now, on 60 analysed rows
      expect(await outcome(session, mine, 'tenantry.current_tenant_id()')).toBe(`id:${A}`);
      expect(await outcome(session, mine, 'tenantry.home_tenant_id()')).toBe(`id:${A}`);
      await registrar.query(`select tenantry.register_contexts($1::text[])`, [values(64)]);
      for (let i = 0; i < 2_000; i += 500)
        await registrar.query(`select tenantry.register_contexts($1::text[])`, [values(500)]);
      // every lookup probes the primary key (a plan that scanned the table would not): counted by
      // the server (each session's counts flushed first)
      const keyProbes = async () => {
        for (const c of [registrar, session]) await c.query('select pg_stat_force_next_flush()');
        await Promise.all([registrar.query('select 1'), session.query('select 1')]);
        const { rows } = await db.admin.query(
          `select idx_scan::int as n from pg_stat_user_indexes where indexrelid = 'tenantry_private.context_proofs_pkey'::regclass`,
        );
        return rows[0].n as number;
      };
      const before = await keyProbes();
      for (let i = 0; i < 20; i++) {
        expect(await outcome(session, mine, 'tenantry.current_tenant_id()')).toBe(`id:${A}`);
        expect(await outcome(session, mine, 'tenantry.home_tenant_id()')).toBe(`id:${A}`);
        expect(await outcome(session, values(1)[0]!, 'tenantry.current_tenant_id()')).toMatch(/^id:/);
      }
      expect((await keyProbes()) - before).toBeGreaterThanOrEqual(60);
      // and the registration's own plans (made on the small table too) still remember
      expect(
        (await registrar.query(`select tenantry.register_contexts($1::text[]) as n`, [values(64)])).rows[0].n,
      ).toBe(64);
    } finally {
      await registrar.end();
      await session.end();
    }
  });
});

describe('the server ending a registration', () => {
  // A checked-out client has no listener of the pool's: an 'error' it emitted between the end of
  // the registration's query and the release (pg_terminate_backend, a restart, a failover) was
  // an unhandled 'error' event, and ended the process (found by a try-out: ≈ 1 in 40
  // terminations). The pool goes on serving and registering.
  it('backends terminated around their registrations: nothing unhandled, the pool still serves', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    const pool = new TenantPool({ connectionString: db.appUrl, contextSecret: db.contextSecret, max: 3 });
    pool.on('error', () => undefined);
    const stopAt = Date.now() + 2_500;
    let terminated = 0;
    try {
      const worker = async () => {
        while (Date.now() < stopAt) {
          const tenant = randomUUID();
          for (let i = 0; i < 3; i++)
            await runAs(tenant, () => pool.query('select body from notes')).catch(() => undefined);
        }
      };
      const terminator = async () => {
        while (Date.now() < stopAt) {
          const { rows } = await db.admin.query(
            `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
              where datname = current_database() and usename = $1 and query like 'select tenantry.register_contexts%'`,
            [db.appRole],
          );
          terminated += rows[0].n as number;
          await new Promise((r) => setTimeout(r, 10 + Math.random() * 30));
        }
      };
      await Promise.all([worker(), worker(), worker(), worker(), terminator()]);
      await new Promise((r) => setTimeout(r, 300));
      expect(terminated).toBeGreaterThan(0);
      expect(uncaught).toEqual([]);
      expect((await runAs(A, () => pool.query('select body from notes'))).rows).toEqual([{ body: 'a1' }]);
    } finally {
      process.off('uncaughtException', onUncaught);
      await pool.end();
    }
  });
});
