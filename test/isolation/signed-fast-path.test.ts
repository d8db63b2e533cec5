// Core 008 (issue 15): the signed check decides a passing value in one query (its fast path) and
// leaves every other value to core 007's steps. These tests hold the two against each other: core
// 007's functions, as that migration created them, are installed next to the new ones under
// another schema, and for every kind of value (Tenantry's signer, forged, tampered, expired,
// another key, the previous key of a rotation, malformed in many ways, signed with the secret but
// not in Tenantry's form) in every state a tenant can be in here (no row, local on its route,
// another epoch, frozen, moved, suspended, deleted, this database not serving the default route),
// both must give the same tenant or the same SQLSTATE. Then, from the other tenant's side: a
// refused value reads and changes nothing.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContextSigner } from '../../src/data/context-signer.js';
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
const A = randomUUID();
const B = randomUUID();
const OLD_SECRET = 'an-old-context-secret-of-enough-length-0123456789';

const sign = (payload: string, secret = db.contextSecret) => signWith(secret, payload);
const later = () => Math.floor(Date.now() / 1000) + 300;
const values = (t: string) => signedValues(t, db.contextSecret, B, OLD_SECRET);

async function resetState(): Promise<void> {
  await db.owner.query(`delete from tenantry.local_tenants where tenant_key = $1`, [A]);
  await db.owner.query(`delete from tenantry.inactive_tenants where tenant_key = $1`, [A]);
  await db.owner.query(`update tenantry.local_route set serves_default = true`);
}

beforeAll(async () => {
  db = await createTestDatabase();
  await prepareComparison(db, A, B, OLD_SECRET);
});
afterAll(() => db?.drop());

describe('core 008 gives what core 007 gave, for every value in every state', () => {
  it('the same tenant or the same SQLSTATE (current_tenant_id and home_tenant_id)', async () => {
    const client = new pg.Client({ connectionString: db.appUrl });
    await client.connect();
    const differences: string[] = [];
    let passed = 0;
    try {
      for (const [state, statements] of STATES) {
        await resetState();
        for (const s of statements) await db.owner.query(s.replaceAll('$A', A));
        for (const [kind, value] of values(A)) {
          for (const fn of ['current_tenant_id', 'home_tenant_id']) {
            const now = await outcome(client, value, `tenantry.${fn}()`);
            const before = CORE_007_ACCEPTED_WRONGLY.has(kind)
              ? 'error:TR001'
              : await outcome(client, value, `core007.${fn}()`);
            if (now !== before) differences.push(`${state} / ${kind} / ${fn}: core 008 ${now}, core 007 ${before}`);
            if (now === `id:${A}`) passed++;
          }
        }
      }
    } finally {
      await client.end();
      await resetState();
    }
    expect(differences).toEqual([]);
    // the comparison saw values that pass, not only refusals
    expect(passed).toBeGreaterThan(10);
  });

  it('the previous key passes only while the overlap lasts, in both', async () => {
    const client = new pg.Client({ connectionString: db.appUrl });
    await client.connect();
    const value = sign(`${A}.${later()}`, OLD_SECRET);
    try {
      expect(await outcome(client, value, 'tenantry.current_tenant_id()')).toBe(`id:${A}`);
      await db.admin.query(`update tenantry_private.context_key set previous_until = now() - interval '1 second'`);
      expect(await outcome(client, value, 'tenantry.current_tenant_id()')).toBe('error:TR001');
      expect(await outcome(client, value, 'core007.current_tenant_id()')).toBe('error:TR001');
    } finally {
      await db.admin.query(`update tenantry_private.context_key set previous_until = now() + interval '1 hour'`);
      await client.end();
    }
  });

  it("no key installed: TR002 from the fast path's fallback, as before", async () => {
    const client = new pg.Client({ connectionString: db.appUrl });
    await client.connect();
    const value = new ContextSigner(db.contextSecret).encode(A);
    const { rows } = await db.admin.query(`select * from tenantry_private.context_key`);
    try {
      await db.admin.query(`alter table tenantry_private.context_key disable trigger user`);
      await db.admin.query(`delete from tenantry_private.context_key`);
      expect(await outcome(client, value, 'tenantry.current_tenant_id()')).toBe('error:TR002');
      expect(await outcome(client, value, 'core007.current_tenant_id()')).toBe('error:TR002');
    } finally {
      const k = rows[0];
      await db.admin.query(
        `insert into tenantry_private.context_key (id, ipad, opad, created_at, previous_ipad, previous_opad, previous_until, serves_default)
         values ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [k.id, k.ipad, k.opad, k.created_at, k.previous_ipad, k.previous_opad, k.previous_until, k.serves_default],
      );
      await db.admin.query(`alter table tenantry_private.context_key enable trigger user`);
      await client.end();
    }
  });
});

describe('the checks read the gate whatever the owner role may bypass', () => {
  it('an owner role without BYPASSRLS still sees holds and routes (fail closed, not open)', async () => {
    const client = new pg.Client({ connectionString: db.appUrl });
    await client.connect();
    const value = new ContextSigner(db.contextSecret).encode(A);
    const moved = new ContextSigner(db.contextSecret).encode(A, 3);
    const withoutBypass = async (check: () => Promise<void>) => {
      await db.admin.query(`alter role ${db.ownerRole} nobypassrls`);
      try {
        await check();
      } finally {
        await db.admin.query(`alter role ${db.ownerRole} bypassrls`);
      }
    };
    try {
      await db.owner.query(`insert into tenantry.inactive_tenants (tenant_key, status) values ($1, 'suspended')`, [A]);
      await withoutBypass(async () => {
        expect(await outcome(client, value, 'tenantry.current_tenant_id()')).toBe('error:TR005');
        expect(await outcome(client, value, 'tenantry.home_tenant_id()')).toBe(`id:${A}`);
      });
      await resetState();
      await db.owner.query(`insert into tenantry.local_tenants (tenant_key, state, epoch) values ($1, 'moved', 3)`, [
        A,
      ]);
      await withoutBypass(async () => {
        expect(await outcome(client, moved, 'tenantry.current_tenant_id()')).toBe('error:TR003');
        expect(await outcome(client, value, 'tenantry.current_tenant_id()')).toBe('error:TR003');
      });
    } finally {
      await resetState();
      await client.end();
    }
  });
});

describe("from the other tenant's side", () => {
  it("B's rows stay unread and unchanged under every value for B that core 008 refuses", async () => {
    const before = await db.admin.query(`select id, body from notes where tenant_id = $1 order by id`, [B]);
    const client = new pg.Client({ connectionString: db.appUrl });
    await client.connect();
    await db.owner.query(`insert into tenantry.inactive_tenants (tenant_key, status) values ($1, 'suspended')`, [B]);
    let refused = 0;
    try {
      for (const [kind, value] of values(B)) {
        // what passes for B is B's own (the signer's values while B is not held): none here, B is suspended
        await client.query('begin');
        try {
          if (value !== null) await client.query(`select pg_catalog.set_config('tenantry.context', $1, true)`, [value]);
          const read = await client.query(`select body from notes`);
          const write = await client.query(`update notes set body = 'changed' where true`);
          expect({ kind, read: read.rows, write: write.rowCount }).toEqual({ kind, read: [], write: 0 });
          await client.query('commit');
        } catch (error) {
          await client.query('rollback');
          expect((error as { code?: string }).code, kind).toMatch(/^(TR001|TR005|22P02|22003)$/);
          refused++;
        }
      }
    } finally {
      await db.owner.query(`delete from tenantry.inactive_tenants where tenant_key = $1`, [B]);
      await client.end();
    }
    expect(refused).toBeGreaterThan(25);
    const after = await db.admin.query(`select id, body from notes where tenant_id = $1 order by id`, [B]);
    expect(after.rows).toEqual(before.rows);
    expect(after.rows).toEqual([{ id: expect.any(Number), body: 'b1' }]);
  });
});

describe('ContextSigner', () => {
  it('signs only a canonical (lower-case) tenant id: the check looks holds and routes up by its text', () => {
    const signer = new ContextSigner('a-context-secret-of-enough-length-0123456789');
    const id = randomUUID();
    expect(signer.encode(id)).toMatch(new RegExp(`^${id}\\.\\d+\\.[0-9a-f]{64}$`));
    expect(signer.encode(id, 7)).toMatch(new RegExp(`^${id}\\.\\d+\\.7\\.[0-9a-f]{64}$`));
    for (const bad of [id.toUpperCase(), `{${id}}`, id.replaceAll('-', ''), `${id}.5`, ` ${id}`, 'tenant-a', ''])
      expect(() => signer.encode(bad), bad).toThrow(expect.objectContaining({ code: 'INVALID_TENANT_ID' }));
  });
});

describe('ContextSigner cache', () => {
  it('a value cached for one tenant and route is never handed out for a text that collides with its key', () => {
    const signer = new ContextSigner('a-context-secret-of-enough-length-0123456789');
    const id = randomUUID();
    signer.encode(id, 3);
    signer.encode(id, 0, '77');
    for (const bad of [`${id}.3`, `${id}/77`])
      expect(() => signer.encode(bad), bad).toThrow(expect.objectContaining({ code: 'INVALID_TENANT_ID' }));
  });
});
