import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { install } from '../../src/policy/installer.js';
import { grantsStepSql, resolveInstallOptions, rolesStepSql } from '../../src/policy/install-sql.js';
import { rotateContextSecret } from '../../src/policy/rotation.js';
import { ALL_MIGRATIONS, appliedLabels } from '../support/install-probes.js';
import { createTestDatabase, ROLE_PASSWORD, type TestDatabase } from '../support/test-database.js';

// A mixed-version deploy: an older Tenantry's install run over a database a newer one installed
// must never put back older function bodies (the context functions without core 002's
// previous-key check would end a rotation's overlap at once). The install of before the versioned
// schema fails as a whole on core 004's constraint; a versioned but older install refuses itself.

let db: TestDatabase;
let tenant = '';

/** Every tenantry function's definition, and what the app role and the key table hold: what a downgrade would change. */
async function snapshot() {
  const functions = await db.admin.query<{ def: string }>(
    `select pg_get_functiondef(p.oid) as def from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname in ('tenantry', 'tenantry_private') order by p.oid`,
  );
  const key = await db.admin.query(
    'select ipad, opad, previous_ipad, previous_until from tenantry_private.context_key',
  );
  const role = await db.admin.query('select rolpassword from pg_authid where rolname = $1', [db.appRole]);
  const meta = await db.admin.query('select key, value from tenantry.meta order by key');
  return { functions: functions.rows.map((r) => r.def), key: key.rows, role: role.rows, meta: meta.rows };
}

const currentTenantDef = async () =>
  (
    await db.admin.query<{ def: string }>(
      `select pg_get_functiondef('tenantry.current_tenant_id()'::regprocedure) as def`,
    )
  ).rows[0]!.def;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(`create table notes (id int generated always as identity primary key,
    tenant_id uuid not null default tenantry.current_tenant_id(), body text not null)`);
  await db.owner.query(`select tenantry.register_tenant_table('notes')`);
  const { rows } = await db.owner.query<{ id: string }>(
    `insert into tenantry.tenants (slug, name) values ('older-a', 'A') returning id`,
  );
  tenant = rows[0]!.id;
  await db.owner.query(`insert into notes (tenant_id, body) values ($1, 'a1')`, [tenant]);
});
afterAll(() => db?.drop());

describe('an older install over a newer database', () => {
  it("the install of before the versioned schema fails as a whole: the previous-key check and the rotation's overlap stay", async () => {
    // mid-rotation: instances signing with the old secret rely on the previous-key check
    const oldSecret = db.contextSecret;
    const newSecret = randomBytes(24).toString('base64url');
    await rotateContextSecret(db.admin, newSecret, { overlapSeconds: 600 });
    expect(await currentTenantDef()).toContain('previous_until');
    const before = await snapshot();

    const fixture = await readFile(new URL('../fixtures/main-install-signed.sql', import.meta.url), 'utf8');
    const support = `${db.name}_support`;
    const sql = fixture.replace(/fixture_(app|owner|support)/g, (_, r: string) =>
      r === 'app' ? db.appRole : r === 'owner' ? db.ownerRole : support,
    );
    await expect(db.admin.query(sql)).rejects.toThrow(/schema_newer_than_this_tenantry_install/);

    expect(await snapshot()).toEqual(before);
    expect(await appliedLabels(db)).toEqual(ALL_MIGRATIONS);
    expect((await db.admin.query('select 1 from pg_roles where rolname = $1', [support])).rowCount).toBe(0);
    // values signed with the old secret still verify during the overlap, and the new ones too
    const oldPool = db.appPool({ contextSecret: oldSecret, max: 1 });
    const newPool = db.appPool({ contextSecret: newSecret, max: 1 });
    for (const p of [oldPool, newPool])
      expect((await runAs(tenant, () => p.query('select body from notes'))).rows).toEqual([{ body: 'a1' }]);
    db.contextSecret = newSecret;
  });

  it('a versioned install that does not know a recorded migration refuses before changing anything', async () => {
    await db.admin.query(
      `insert into tenantry.library_migrations (feature, version, name, checksum) values ('core', 999, 'from_a_newer_version', repeat('0', 64))`,
    );
    try {
      const before = await snapshot();
      const attempt = install(db.adminUrl, {
        appRole: db.appRole,
        ownerRole: db.ownerRole,
        appPassword: 'a-new-password-nobody-asked-for',
        contextSecret: db.contextSecret,
      });
      await expect(attempt).rejects.toMatchObject({
        code: 'SCHEMA_NEWER_THAN_LIBRARY',
        details: { unknown: ['core/999'] },
      });
      expect(await snapshot()).toEqual(before);

      // the steps refuse by themselves too, after the install lock (a newer install that commits
      // between the check and the step): TRI01, rolled back
      const o = resolveInstallOptions({ appRole: db.appRole, ownerRole: db.ownerRole, appPassword: ROLE_PASSWORD });
      for (const step of [rolesStepSql(o), grantsStepSql(o)]) {
        const client = await db.admin.connect();
        try {
          await client.query('begin');
          await expect(client.query(step)).rejects.toMatchObject({ code: 'TRI01' });
        } finally {
          await client.query('rollback');
          client.release();
        }
      }
      expect(await snapshot()).toEqual(before);
    } finally {
      await db.admin.query(`delete from tenantry.library_migrations where feature = 'core' and version = 999`);
    }
    // with the versions matching again, install runs (and changes nothing a running app uses)
    const report = await install(db.adminUrl, {
      appRole: db.appRole,
      ownerRole: db.ownerRole,
      contextSecret: db.contextSecret,
    });
    expect(report.applied).toEqual([]);
  });
});
