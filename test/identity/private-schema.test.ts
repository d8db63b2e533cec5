import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { OneTimeCodes } from '../../src/identity/one-time-codes.js';
import { runDoctor } from '../../src/policy/doctor.js';
import { createIdentityFixture, type IdentityFixture } from './support/identity-fixture.js';

let f: IdentityFixture;
beforeAll(async () => {
  f = await createIdentityFixture();
});
afterAll(async () => {
  await f?.close();
});

const PRIVATE_TABLES = ['sessions', 'one_time_codes', 'api_keys', 'domains', 'staff', 'staff_grants', 'context_key'];

describe('secrets live in tenantry_private, out of the app role’s reach', () => {
  it('the app role can neither select, insert, update nor delete them, with or without a tenant', async () => {
    for (const table of PRIVATE_TABLES) {
      for (const sql of [
        `select * from tenantry_private.${table}`,
        `delete from tenantry_private.${table}`,
        `update tenantry_private.${table} set created_at = now()`,
      ]) {
        await expect(f.pool.query(sql), `${sql} without tenant`).rejects.toMatchObject({ code: '42501' });
        await expect(
          runAs(f.acme.id, () => f.pool.query(sql)),
          `${sql} as acme`,
        ).rejects.toMatchObject({ code: '42501' });
      }
    }
    await expect(
      f.pool.query(
        `insert into tenantry_private.sessions (user_id, tenant_id, kind, expires_at) values (gen_random_uuid(), $1, 'user', now() + interval '1 day')`,
        [f.acme.id],
      ),
    ).rejects.toMatchObject({ code: '42501' });
  });

  it('the owner-only functions are not callable by the app role (minting sessions, the support gate)', async () => {
    await expect(
      f.pool.query(`select * from tenantry.start_session(gen_random_uuid(), $1, 'user', 3600)`, [f.acme.id]),
    ).rejects.toMatchObject({ code: '42501' });
    await expect(f.pool.query(`select tenantry.support_read_allowed()`)).rejects.toMatchObject({ code: '42501' });
  });

  it('functions that act for a tenant refuse to run without one', async () => {
    for (const sql of [
      'select * from tenantry.list_api_keys()',
      'select * from tenantry.list_domains()',
      "select * from tenantry.list_codes('invite')",
      'select tenantry.end_member_sessions(gen_random_uuid())',
    ]) {
      await expect(f.pool.query(sql), sql).rejects.toMatchObject({ code: '42501' });
    }
  });

  it('doctor is clean, and flags a grant that opens a private table to the app', async () => {
    expect((await runDoctor(f.db.adminUrl)).findings).toEqual([]);
    await f.db.admin.query(`grant select on tenantry_private.api_keys to ${f.db.appRole}`);
    try {
      const report = await runDoctor(f.db.adminUrl);
      expect(report.findings.map((x) => [x.code, x.object])).toContainEqual([
        'PRIVATE_OBJECT_REACHABLE',
        'tenantry_private.api_keys',
      ]);
    } finally {
      await f.db.admin.query(`revoke select on tenantry_private.api_keys from ${f.db.appRole}`);
    }
  });
});

describe('one-time codes', () => {
  const codes = () => new OneTimeCodes(f.pool);

  it('are spent once: a replay, another purpose or a guess gets nothing', async () => {
    const { code, expiresAt } = await runAs(f.acme.id, () =>
      codes().issue({
        purpose: 'invite',
        payload: { email: 'new@acme.test', role: 'member' },
        createdBy: f.users.alice,
      }),
    );
    expect(code).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(expiresAt.getTime()).toBeGreaterThan(Date.now());
    expect(await codes().consume({ purpose: 'reset', code })).toBeUndefined();
    // consumed from another tenant's context: the code still names acme, never the caller's tenant
    const spent = await runAs(f.globex.id, () => codes().consume({ purpose: 'invite', code, consumer: f.users.sam }));
    expect(spent).toEqual({
      tenantId: f.acme.id,
      payload: { email: 'new@acme.test', role: 'member' },
      createdBy: f.users.alice,
    });
    expect(await codes().consume({ purpose: 'invite', code })).toBeUndefined();
    expect(
      await codes().consume({ purpose: 'invite', code: code.slice(0, -1) + (code.endsWith('A') ? 'B' : 'A') }),
    ).toBeUndefined();
    for (const junk of ['', 'x', "' or true --", 'a'.repeat(1000)])
      expect(await codes().consume({ purpose: 'invite', code: junk })).toBeUndefined();
  });

  it('replayed concurrently, succeed exactly once', async () => {
    const { code } = await runAs(f.acme.id, () => codes().issue({ purpose: 'invite' }));
    const results = await Promise.all(Array.from({ length: 8 }, () => codes().consume({ purpose: 'invite', code })));
    expect(results.filter((r) => r !== undefined)).toHaveLength(1);
  });

  it('expire, and die with a suspended tenant', async () => {
    const { code } = await runAs(f.acme.id, () => codes().issue({ purpose: 'invite', ttlSeconds: 60 }));
    await f.db.admin.query(
      `update tenantry_private.one_time_codes set expires_at = now() - interval '1 second' where consumed_at is null and purpose = 'invite' and expires_at < now() + interval '2 minutes'`,
    );
    expect(await codes().consume({ purpose: 'invite', code })).toBeUndefined();

    const paused = await f.catalog.create({ slug: 'paused-codes', name: 'Paused' });
    const { code: pausedCode } = await runAs(paused.id, () => codes().issue({ purpose: 'invite' }));
    await f.catalog.suspend(paused.id);
    expect(await codes().consume({ purpose: 'invite', code: pausedCode })).toBeUndefined();
  });

  it('are stored only as a hash, listed only to their tenant, and never issued without a tenant', async () => {
    const { code } = await runAs(f.globex.id, () =>
      codes().issue({ purpose: 'invite', payload: { email: 'x@globex.test' } }),
    );
    const { rows } = await f.db.admin.query(
      `select string_agg(to_jsonb(c)::text, ',') as dump from tenantry_private.one_time_codes c`,
    );
    expect(rows[0].dump).not.toContain(code);
    expect((await runAs(f.acme.id, () => codes().list('invite'))).map((c) => c.payload)).not.toContainEqual({
      email: 'x@globex.test',
    });
    expect((await runAs(f.globex.id, () => codes().list('invite'))).map((c) => c.payload)).toContainEqual({
      email: 'x@globex.test',
    });
    await expect(codes().issue({ purpose: 'invite' })).rejects.toMatchObject({ code: '42501' });
    await expect(runAs(f.acme.id, () => codes().issue({ purpose: 'Not A Purpose' }))).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});
