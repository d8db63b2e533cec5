import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { AuditLog } from '../../src/identity/audit-log.js';
import { TenantCatalog } from '../../src/index.js';
import { install } from '../../src/policy/installer.js';
import { createTestDatabase } from '../support/test-database.js';
import { createIdentityFixture, type IdentityFixture } from './support/identity-fixture.js';

// Audit entry ids are per-tenant numbers (src/identity/migrations/002_audit_ids.sql): a tenant sees
// nothing of other tenants' volume in them.

let f: IdentityFixture;
beforeAll(async () => {
  f = await createIdentityFixture();
});
afterAll(async () => {
  await f?.close();
});

describe('audit entry ids', () => {
  it("numbers each tenant's entries on their own: ids show nothing of another tenant's volume", async () => {
    const log = new AuditLog(f.pool);
    const write = (tenantId: string, action: string) =>
      runAs(tenantId, () => log.record({ actorKind: 'user', actorId: f.users.sam, action }));
    const acmeIds: string[] = [];
    acmeIds.push(await write(f.acme.id, 'volume.probe'));
    // globex is busy in between: 40 entries, some of them concurrently, one rolled back
    await Promise.all(Array.from({ length: 40 }, () => write(f.globex.id, 'volume.noise')));
    await runAs(f.globex.id, async () => {
      const client = await f.pool.connect();
      try {
        await client.query('begin');
        await client.query(`select tenantry.record_audit('user', null, 'volume.rolled-back', null, '{}')`);
        await client.query('rollback');
      } finally {
        client.release();
      }
    });
    await write(f.globex.id, 'volume.noise'); // takes the rolled-back entry's number
    acmeIds.push(await write(f.acme.id, 'volume.probe'));
    acmeIds.push(await write(f.acme.id, 'volume.probe'));
    // consecutive: globex's 41 entries left no trace in acme's numbers
    const numbers = acmeIds.map(Number);
    expect(numbers).toEqual([numbers[0]!, numbers[0]! + 1, numbers[0]! + 2]);
    const listed = await runAs(f.acme.id, () => log.list({ limit: 3 }));
    expect(listed.map((e) => e.id)).toEqual([...acmeIds].reverse());

    // globex's own numbers: 1..n with no gap, the rolled-back entry's number given to the next
    const globex = await runAs(f.globex.id, () => log.list({ limit: 500 }));
    const own = globex.map((e) => Number(e.id)).sort((x, y) => x - y);
    expect(own).toEqual(Array.from({ length: own.length }, (_, i) => i + 1));
    expect(globex.map((e) => e.action)).not.toContain('volume.rolled-back');

    // the global key is out of the app role's reach, even for its own rows
    await expect(runAs(f.acme.id, () => f.pool.query('select id from tenantry.audit_log'))).rejects.toMatchObject({
      code: '42501',
    });
    await expect(runAs(f.acme.id, () => f.pool.query('select * from tenantry.audit_log'))).rejects.toMatchObject({
      code: '42501',
    });
    // and a number given by a writer is not kept (the owner writes, the trigger numbers)
    const { rows } = await f.db.owner.query<{ seq: string }>(
      `insert into tenantry.audit_log (tenant_id, actor_kind, action, seq) values ($1, 'system', 'volume.forged', 999999) returning seq::text`,
      [f.acme.id],
    );
    expect(Number(rows[0]!.seq)).toBe(numbers[2]! + 1);
  });

  it('an install over a log written before the numbering numbers it per tenant, in id order, and goes on from there', async () => {
    const db = await createTestDatabase();
    try {
      // the log as an older install left it: no seq, no counters, no numbering trigger
      await db.admin.query(`
        drop trigger audit_log_number on tenantry.audit_log;
        alter table tenantry.audit_log drop column seq;
        drop table tenantry_private.audit_counters;
        delete from tenantry.library_migrations where feature = 'identity' and version = 2;`);
      const catalog = new TenantCatalog(db.owner);
      const [one, two] = [
        await catalog.create({ slug: 'one', name: 'One' }),
        await catalog.create({ slug: 'two', name: 'Two' }),
      ];
      for (const tenant of [one, two, one, one, two, one])
        await db.admin.query(
          `insert into tenantry.audit_log (tenant_id, actor_kind, action) values ($1, 'system', 'old')`,
          [tenant.id],
        );
      await install(db.adminUrl, { appRole: db.appRole, ownerRole: db.ownerRole });
      await install(db.adminUrl, { appRole: db.appRole, ownerRole: db.ownerRole }); // and again: nothing changes
      const { rows } = await db.admin.query<{ tenant_id: string; seq: string }>(
        'select tenant_id, seq::text from tenantry.audit_log order by id',
      );
      expect(rows.map((r) => [r.tenant_id === one.id ? 'one' : 'two', Number(r.seq)])).toEqual([
        ['one', 1],
        ['two', 1],
        ['one', 2],
        ['one', 3],
        ['two', 2],
        ['one', 4],
      ]);
      const pool = db.appPool();
      try {
        const next = await runAs(one.id, () => new AuditLog(pool).record({ actorKind: 'user', action: 'new' }));
        expect(next).toBe('5');
      } finally {
        await pool.end();
      }
    } finally {
      await db.drop();
    }
  });

  it('refuses a before cursor PostgreSQL could not hold, with INVALID_ARGUMENT (never a database error)', async () => {
    const log = new AuditLog(f.pool);
    for (const before of ['9223372036854775808', '9999999999999999999', '0', '-1', '1.5', '', 'abc']) {
      await expect(runAs(f.acme.id, () => log.list({ before }))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    expect(await runAs(f.acme.id, () => log.list({ before: '9223372036854775807', limit: 1 }))).toHaveLength(1);
  });
});
