import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import {
  acceptDefinerFunction,
  formatDoctorReport,
  runDoctor,
  type DoctorReport,
  type FindingCode,
} from '../src/policy/doctor.js';
import type { TestDatabase } from './support/test-database.js';
import { applyFixes, createDoctorTestDatabase, findingOf } from './support/doctor-findings.js';
import { dropDatabase } from './support/drop-database.js';

/**
 * db.drop() ends its pools, then drops the database WITH (FORCE). pg-pool's end() resolves before
 * the sockets are closed, so the drop can still terminate (57P01) a backend under a closing client,
 * which the pool re-emits as an unhandled 'error'. Only that error is ignored here.
 */
async function drop(db: TestDatabase | undefined): Promise<void> {
  if (!db) return;
  for (const pool of [db.admin, db.owner]) {
    pool.on('error', (error: Error & { code?: string }) => {
      if (error.code !== '57P01') throw error;
    });
  }
  await db.drop();
}

/** The objects of every finding with `code`, sorted: asserts presence and absence at once. */
function objectsOf(report: DoctorReport, code: FindingCode): string[] {
  return report.findings
    .filter((f) => f.code === code)
    .map((f) => f.object)
    .sort();
}

describe('doctor on a clean install', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createDoctorTestDatabase();
    await db.owner.query(`
      create table accounts (tenant_id uuid not null, id uuid not null default gen_random_uuid(), email text not null,
                             primary key (tenant_id, id), unique (tenant_id, email));
      create table notes (tenant_id uuid not null, id bigint generated always as identity, account_id uuid not null, body text,
                          primary key (tenant_id, id), foreign key (tenant_id, account_id) references accounts (tenant_id, id) on delete cascade);
      create table plans (id text primary key, price int not null);
      create table internal_jobs (id int primary key);
      create index on notes (tenant_id, account_id);
      create view account_emails with (security_invoker = true) as select tenant_id, email from accounts;
      create function public.note_count() returns bigint language sql security definer set search_path = pg_catalog, pg_temp
        as 'select count(*) from public.notes';
      select tenantry.register_tenant_table('accounts');
      select tenantry.register_tenant_table('notes');
      select tenantry.register_global_table('plans');
      grant select on account_emails to ${db.appRole};
      grant execute on function public.note_count() to ${db.appRole};
      create schema extra;
      create table extra.items (tenant_id uuid not null, name text);
    `);
    // counts every tenant's notes on purpose: a reviewer accepted it (test/doctor-definer.test.ts)
    const owner = await db.owner.connect();
    try {
      await acceptDefinerFunction(owner, 'public.note_count()', 'a global statistic, no tenant data');
    } finally {
      owner.release();
    }
  });
  afterAll(() => drop(db));

  it('finds nothing, as a superuser and as the owner role', async () => {
    const asAdmin = await runDoctor(db.adminUrl);
    expect(asAdmin).toEqual({ ok: true, findings: [] });
    expect(await runDoctor(db.ownerUrl)).toEqual(asAdmin);
    expect(formatDoctorReport(asAdmin)).toBe('tenantry doctor: no problems found.');
  });

  it('audits the schemas it is given instead of tenantry.meta data_schemas', async () => {
    const report = await runDoctor(db.adminUrl, { schemas: ['public', 'extra'] });
    expect(objectsOf(report, 'TENANT_TABLE_UNREGISTERED')).toEqual(['extra.items']);
    expect(findingOf(report, 'TENANT_TABLE_UNREGISTERED', 'extra.items').fix).toBe(
      `SELECT tenantry.register_tenant_table('extra.items');`,
    );
    expect(report.ok).toBe(false);
  });

  it('flags an app role that is the owner role', async () => {
    const report = await runDoctor(db.adminUrl, { appRole: db.ownerRole });
    expect(findingOf(report, 'APP_ROLE_IS_OWNER', db.ownerRole).severity).toBe('error');
    expect(objectsOf(report, 'APP_ROLE_BYPASSRLS')).toEqual([db.ownerRole]);
    expect(objectsOf(report, 'APP_ROLE_OWNS_OBJECT')).toContain('public.notes');
    expect(report.ok).toBe(false);
  });

  it('flags an app role that does not exist', async () => {
    const report = await runDoctor(db.adminUrl, { appRole: `${db.name}_nobody` });
    expect(report.findings).toEqual([
      expect.objectContaining({ code: 'APP_ROLE_MISSING', severity: 'error', object: `${db.name}_nobody` }),
    ]);
    expect(report.ok).toBe(false);
  });
});

describe('doctor on a database without Tenantry', () => {
  const name = `tt_${randomBytes(5).toString('hex')}`;
  let url: string;
  beforeAll(async () => {
    const root = new pg.Client({ connectionString: inject('adminUrl') });
    await root.connect();
    await root.query(`create database ${name}`);
    await root.end();
    const u = new URL(inject('adminUrl'));
    u.pathname = `/${name}`;
    url = u.toString();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('create table things (tenant_id uuid not null, body text)');
    await c.end();
  });
  afterAll(async () => {
    const root = new pg.Client({ connectionString: inject('adminUrl') });
    await root.connect();
    await dropDatabase(root, name);
    await root.end();
  });

  it('reports that Tenantry is not installed, and still audits the tables', async () => {
    const report = await runDoctor(url);
    expect(findingOf(report, 'TENANTRY_NOT_INSTALLED', name).fix).toBe('tenantry install');
    expect(objectsOf(report, 'TENANT_TABLE_UNREGISTERED')).toEqual(['public.things']);
    expect(objectsOf(report, 'TENANT_TABLE_RLS_DISABLED')).toEqual(['public.things']);
    expect(report.ok).toBe(false);
  });
});

describe('doctor on the app role', () => {
  let db: TestDatabase;
  let extraRoles: string[];
  beforeAll(async () => {
    db = await createDoctorTestDatabase();
    const [ops, team, readers] = ['ops', 'team', 'readers'].map((r) => `${db.name}_${r}`) as [string, string, string];
    extraRoles = [ops, team, readers];
    await db.owner.query(
      `create table owned_by_app (id int); create function public.app_fn() returns int language sql as 'select 1';`,
    );
    await db.admin.query(`
      alter role ${db.appRole} superuser bypassrls createrole replication;
      create role ${ops} nologin bypassrls;
      grant ${ops} to ${db.appRole};
      create role ${team} nologin;
      grant ${db.ownerRole} to ${team};
      grant ${team} to ${db.appRole};
      create role ${readers} nologin;
      grant ${readers} to ${db.appRole};
      alter table owned_by_app owner to ${db.appRole};
      alter function public.app_fn() owner to ${db.appRole};
      alter database ${db.name} owner to ${db.appRole};
    `);
  });
  afterAll(async () => {
    await drop(db);
    const root = new pg.Client({ connectionString: inject('adminUrl') });
    await root.connect();
    for (const role of extraRoles ?? []) await root.query(`drop role if exists ${role}`);
    await root.end();
  });

  it('flags superuser, BYPASSRLS, CREATEROLE and REPLICATION', async () => {
    const report = await runDoctor(db.adminUrl);
    for (const code of [
      'APP_ROLE_SUPERUSER',
      'APP_ROLE_BYPASSRLS',
      'APP_ROLE_CREATEROLE',
      'APP_ROLE_REPLICATION',
    ] as const) {
      expect(objectsOf(report, code)).toEqual([db.appRole]);
    }
    expect(findingOf(report, 'APP_ROLE_BYPASSRLS', db.appRole).fix).toBe(`ALTER ROLE ${db.appRole} NOBYPASSRLS;`);
    expect(report.ok).toBe(false);
  });

  it('flags a table, a function and the database owned by the app role', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'APP_ROLE_OWNS_OBJECT')).toEqual(
      [db.name, 'public.app_fn()', 'public.owned_by_app'].sort(),
    );
    expect(findingOf(report, 'APP_ROLE_OWNS_OBJECT', 'public.owned_by_app').fix).toBe(
      `ALTER TABLE public.owned_by_app OWNER TO ${db.ownerRole};`,
    );
  });

  it('flags membership of a BYPASSRLS role and, through another role, of the owner role, but not of a harmless role', async () => {
    const [ops, team] = extraRoles as [string, string, string];
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'APP_ROLE_MEMBER_OF_PRIVILEGED_ROLE')).toEqual([ops, team].sort());
    const viaTeam = findingOf(report, 'APP_ROLE_MEMBER_OF_PRIVILEGED_ROLE', team);
    expect(viaTeam.message).toContain(db.ownerRole);
    expect(viaTeam.fix).toBe(`REVOKE ${team} FROM ${db.appRole};`);
  });

  it('clears every finding once the fixes are applied', async () => {
    const before = await runDoctor(db.adminUrl);
    const codes: FindingCode[] = [
      'APP_ROLE_SUPERUSER',
      'APP_ROLE_BYPASSRLS',
      'APP_ROLE_CREATEROLE',
      'APP_ROLE_REPLICATION',
      'APP_ROLE_MEMBER_OF_PRIVILEGED_ROLE',
      'APP_ROLE_OWNS_OBJECT',
    ];
    expect(await applyFixes(db, before, codes)).toBe(9);
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
  });
});

describe('doctor on tenant tables and privileges', () => {
  let db: TestDatabase;
  let helper: string;
  beforeAll(async () => {
    db = await createDoctorTestDatabase();
    helper = `${db.name}_helper`;
    const notes = (
      t: string,
    ) => `create table ${t} (tenant_id uuid not null, id uuid not null default gen_random_uuid(), body text, primary key (tenant_id, id));
      select tenantry.register_tenant_table('${t}');`;
    await db.owner.query(`
      ${notes('notes')} ${notes('open_notes')} ${notes('bare_notes')}
      create table slow_notes (tenant_id uuid not null, body text);
      select tenantry.register_tenant_table('slow_notes');
      create table loose_notes (tenant_id text, body text);
      create table renamed_notes (tenant_id uuid not null, body text);
      select tenantry.register_tenant_table('renamed_notes');
      alter table renamed_notes rename column tenant_id to org_id;
      create table custom_col (org uuid not null, id int, body text, primary key (org, id));
      select tenantry.register_tenant_table('custom_col', 'org');
    `);
    await db.admin.query(`
      alter table notes no force row level security;
      alter table open_notes disable row level security;
      drop policy tenantry_isolation on bare_notes;
      drop index slow_notes_tenant_id_idx;
      grant truncate, references, trigger on notes to ${db.appRole};
      grant references (body) on slow_notes to public;
      create role ${helper} nologin;
      grant truncate on open_notes to ${helper};
      grant ${helper} to ${db.appRole};
      grant usage on schema tenantry_private to ${db.appRole};
      grant select on tenantry_private.context_key to ${db.appRole};
      grant create on schema public to ${db.appRole};
      grant temporary on database ${db.name} to public;
    `);
  });
  afterAll(async () => {
    await drop(db);
    const root = new pg.Client({ connectionString: inject('adminUrl') });
    await root.connect();
    if (helper) await root.query(`drop role if exists ${helper}`);
    await root.end();
  });

  it('flags tenant tables without RLS, forced RLS, a policy or a tenant index', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'TENANT_TABLE_RLS_NOT_FORCED')).toEqual(['public.notes']);
    expect(findingOf(report, 'TENANT_TABLE_RLS_NOT_FORCED', 'public.notes').fix).toBe(
      'ALTER TABLE public.notes FORCE ROW LEVEL SECURITY;',
    );
    expect(objectsOf(report, 'TENANT_TABLE_RLS_DISABLED')).toEqual(['public.open_notes']);
    expect(objectsOf(report, 'TENANT_TABLE_NO_POLICY')).toEqual(['public.bare_notes']);
    expect(objectsOf(report, 'TENANT_INDEX_MISSING')).toEqual(['public.slow_notes']);
    expect(findingOf(report, 'TENANT_INDEX_MISSING', 'public.slow_notes').severity).toBe('warning');
  });

  it('flags an unregistered tenant table, a nullable or non-uuid tenant column, and a registered column that is gone', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'TENANT_TABLE_UNREGISTERED')).toEqual(['public.loose_notes']);
    expect(objectsOf(report, 'TENANT_COLUMN_NOT_UUID')).toEqual(['public.loose_notes.tenant_id']);
    expect(objectsOf(report, 'TENANT_COLUMN_NULLABLE')).toEqual(['public.loose_notes.tenant_id']);
    expect(objectsOf(report, 'TENANT_COLUMN_MISSING')).toEqual(['public.renamed_notes']);
    expect(report.findings.filter((f) => f.object.startsWith('public.custom_col'))).toEqual([]);
  });

  it('flags TRUNCATE, REFERENCES and TRIGGER, held directly, through PUBLIC or through a role the app can SET ROLE to', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'APP_CAN_TRUNCATE')).toEqual(['public.notes', 'public.open_notes']);
    expect(objectsOf(report, 'APP_CAN_REFERENCE')).toEqual(['public.notes', 'public.slow_notes']);
    expect(objectsOf(report, 'APP_CAN_TRIGGER')).toEqual(['public.notes']);
    expect(findingOf(report, 'APP_CAN_TRUNCATE', 'public.open_notes').fix).toBe(
      `REVOKE TRUNCATE ON TABLE public.open_notes FROM ${helper};`,
    );
    expect(findingOf(report, 'APP_CAN_REFERENCE', 'public.slow_notes').fix).toBe(
      'REVOKE REFERENCES ON TABLE public.slow_notes FROM PUBLIC;',
    );
  });

  it('flags the private schema and its key table when the app can reach them, and CREATE on a data schema', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'PRIVATE_SCHEMA_REACHABLE')).toEqual(['tenantry_private']);
    expect(objectsOf(report, 'PRIVATE_OBJECT_REACHABLE')).toEqual(['tenantry_private.context_key']);
    expect(objectsOf(report, 'APP_CAN_CREATE_IN_SCHEMA')).toEqual(['public']);
    expect(objectsOf(report, 'APP_CAN_CREATE_TEMP')).toEqual([db.name]);
    expect(report.ok).toBe(false);
  });

  it('clears every finding whose fix is SQL once the fixes are applied', async () => {
    const before = await runDoctor(db.adminUrl);
    await applyFixes(db, before, [
      'TENANT_COLUMN_NOT_UUID',
      'TENANT_COLUMN_NULLABLE',
      'TENANT_TABLE_UNREGISTERED',
      'TENANT_TABLE_RLS_DISABLED',
      'TENANT_TABLE_RLS_NOT_FORCED',
      'TENANT_TABLE_NO_POLICY',
      'TENANT_INDEX_MISSING',
      'APP_CAN_TRUNCATE',
      'APP_CAN_REFERENCE',
      'APP_CAN_TRIGGER',
      'PRIVATE_SCHEMA_REACHABLE',
      'PRIVATE_OBJECT_REACHABLE',
      'APP_CAN_CREATE_IN_SCHEMA',
      'APP_CAN_CREATE_TEMP',
    ]);
    const after = await runDoctor(db.adminUrl);
    // the renamed column and the missing primary keys need a human to pick the columns: their fixes are templates
    expect(after.findings.map((f) => `${f.code} ${f.object}`)).toEqual([
      'TENANT_COLUMN_MISSING public.renamed_notes',
      'TENANT_TABLE_NO_PRIMARY_KEY public.loose_notes',
      'TENANT_TABLE_NO_PRIMARY_KEY public.renamed_notes',
      'TENANT_TABLE_NO_PRIMARY_KEY public.slow_notes',
    ]);
  });
});

describe('doctor on keys', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createDoctorTestDatabase();
    await db.owner.query(`
      create table accounts (tenant_id uuid not null, id uuid not null default gen_random_uuid(), email text not null, handle text, code text,
                             primary key (tenant_id, id), unique (id), unique (email), unique (tenant_id, handle), unique (code) include (tenant_id));
      create unique index accounts_lower_email on accounts (lower(email));
      create table orders (tenant_id uuid not null, id uuid primary key, account_id uuid references accounts (id) on delete cascade,
                           owner_id uuid, foreign key (tenant_id, owner_id) references accounts (tenant_id, id));
      create table lines (tenant_id uuid not null, order_id uuid not null references orders (id), n int not null, primary key (tenant_id, order_id, n));
      select tenantry.register_tenant_table('accounts');
      select tenantry.register_tenant_table('orders');
      select tenantry.register_tenant_table('lines');
    `);
  });
  afterAll(() => drop(db));

  it('flags unique constraints and unique indexes without the tenant column as errors', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'UNIQUE_WITHOUT_TENANT')).toEqual(
      [
        'accounts_code_tenant_id_key on public.accounts',
        'accounts_email_key on public.accounts',
        'accounts_id_key on public.accounts',
        'public.accounts_lower_email',
      ].sort(),
    );
    expect(findingOf(report, 'UNIQUE_WITHOUT_TENANT', 'accounts_email_key on public.accounts').fix).toBe(
      'ALTER TABLE public.accounts DROP CONSTRAINT accounts_email_key, ADD CONSTRAINT accounts_email_key UNIQUE (tenant_id, email);',
    );
    expect(findingOf(report, 'UNIQUE_WITHOUT_TENANT', 'public.accounts_lower_email').fix).toBe(
      'DROP INDEX public.accounts_lower_email; CREATE UNIQUE INDEX accounts_lower_email ON public.accounts USING btree (tenant_id, lower(email));',
    );
    expect(report.findings.filter((f) => f.code === 'UNIQUE_WITHOUT_TENANT').every((f) => f.severity === 'error')).toBe(
      true,
    );
  });

  it('warns about a primary key and foreign keys that ignore the tenant column', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'PRIMARY_KEY_WITHOUT_TENANT')).toEqual(['orders_pkey on public.orders']);
    expect(objectsOf(report, 'FOREIGN_KEY_WITHOUT_TENANT')).toEqual([
      'lines_order_id_fkey on public.lines',
      'orders_account_id_fkey on public.orders',
    ]);
    const fk = findingOf(report, 'FOREIGN_KEY_WITHOUT_TENANT', 'orders_account_id_fkey on public.orders');
    expect(fk.severity).toBe('warning');
    expect(fk.fix).toBe(
      'ALTER TABLE public.orders DROP CONSTRAINT orders_account_id_fkey, ADD CONSTRAINT orders_account_id_fkey FOREIGN KEY (tenant_id, account_id) REFERENCES public.accounts (tenant_id, id) ON DELETE CASCADE;',
    );
  });

  it('clears every finding once the fixes are applied in dependency order', async () => {
    const before = await runDoctor(db.adminUrl);
    // as the foreign key message says, the referenced side needs a key that includes the tenant first
    expect(findingOf(before, 'FOREIGN_KEY_WITHOUT_TENANT', 'lines_order_id_fkey on public.lines').message).toContain(
      'public.orders (tenant_id, id)',
    );
    await db.admin.query('ALTER TABLE public.orders ADD UNIQUE (tenant_id, id)');
    // foreign keys first: they hold on to the unique indexes the other fixes drop
    expect(
      await applyFixes(db, before, [
        'FOREIGN_KEY_WITHOUT_TENANT',
        'UNIQUE_WITHOUT_TENANT',
        'PRIMARY_KEY_WITHOUT_TENANT',
      ]),
    ).toBe(7);
    // the keys now include the tenant: what is left is their shape (an index for each foreign key,
    // and the keys made twice over: unique (tenant_id, id) beside the primary key)
    const shaped = await runDoctor(db.adminUrl);
    expect(shaped.findings.map((f) => `${f.code} ${f.object}`)).toEqual([
      'DUPLICATE_INDEX public.accounts_id_key',
      'DUPLICATE_INDEX public.orders_tenant_id_id_key',
    ]);
    // the lines' foreign key stands on the duplicate: the fix moves it onto the primary key
    expect(findingOf(shaped, 'DUPLICATE_INDEX', 'public.orders_tenant_id_id_key').fix).toBe(
      'ALTER TABLE public.lines DROP CONSTRAINT lines_order_id_fkey; ALTER TABLE public.orders DROP CONSTRAINT orders_tenant_id_id_key; ALTER TABLE public.lines ADD CONSTRAINT lines_order_id_fkey FOREIGN KEY (tenant_id, order_id) REFERENCES public.orders(tenant_id, id);',
    );
    expect(await applyFixes(db, shaped, ['DUPLICATE_INDEX'])).toBe(2);
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
  });
});

describe('doctor on policies', () => {
  let db: TestDatabase;
  const isolation = '(tenant_id = ( SELECT tenantry.current_tenant_id() AS current_tenant_id))';
  beforeAll(async () => {
    db = await createDoctorTestDatabase();
    const tables = [
      'per_row',
      'raw_setting',
      'shared_notes',
      'loose_writes',
      'guarded',
      'other_role',
      'literal_trap',
      'implicit_check',
    ];
    await db.owner.query(
      tables
        .map(
          (
            t,
          ) => `create table ${t} (tenant_id uuid not null, id uuid not null default gen_random_uuid(), body text, primary key (tenant_id, id));
                     select tenantry.register_tenant_table('${t}');`,
        )
        .join('\n'),
    );
    await db.admin.query(`
      drop policy tenantry_isolation on per_row;
      create policy row_policy on per_row using (tenant_id = tenantry.current_tenant_id()) with check (tenant_id = tenantry.current_tenant_id());
      drop policy tenantry_isolation on raw_setting;
      create policy raw on raw_setting using (tenant_id = current_setting('tenantry.context')::uuid);
      create policy peek on shared_notes for select using (true);
      drop policy tenantry_isolation on loose_writes;
      create policy iso on loose_writes using (tenant_id = (select tenantry.current_tenant_id())) with check (body <> '');
      create policy open_all on guarded using (true) with check (true);
      create policy fence on guarded as restrictive using (tenant_id = (select tenantry.current_tenant_id()))
        with check (tenant_id = (select tenantry.current_tenant_id()));
      create policy staff on other_role for select to ${db.ownerRole} using (true);
      drop policy tenantry_isolation on literal_trap;
      create policy trap on literal_trap using (tenant_id = (select tenantry.current_tenant_id()) and body <> 'current_setting(x) tenantry.current_tenant_id()')
        with check (tenant_id = (select tenantry.current_tenant_id()));
      drop policy tenantry_isolation on implicit_check;
      create policy implicit on implicit_check for update using (tenant_id = (select tenantry.current_tenant_id()));
      create policy ins on implicit_check for insert with check (tenant_id = (select tenantry.current_tenant_id()));
      create policy sel on implicit_check for select using (tenant_id = (select tenantry.current_tenant_id()));
    `);
  });
  afterAll(() => drop(db));

  it('warns about context read per row, not once in a sub-select, and ignores string literals', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'POLICY_PER_ROW_CONTEXT')).toEqual([
      'raw on public.raw_setting',
      'row_policy on public.per_row',
    ]);
    const perRow = findingOf(report, 'POLICY_PER_ROW_CONTEXT', 'row_policy on public.per_row');
    expect(perRow.severity).toBe('warning');
    expect(perRow.fix).toBe(
      'ALTER POLICY row_policy ON public.per_row USING ((tenant_id = (SELECT tenantry.current_tenant_id()))) WITH CHECK ((tenant_id = (SELECT tenantry.current_tenant_id())));',
    );
  });

  it('flags a policy that takes the tenant from a raw setting in signed mode', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'POLICY_READS_SETTING_DIRECTLY')).toEqual(['raw on public.raw_setting']);
    expect(findingOf(report, 'POLICY_READS_SETTING_DIRECTLY', 'raw on public.raw_setting').severity).toBe('error');
  });

  it('flags USING (true) and a check that ignores the tenant, unless a restrictive policy guards the table or the policy is for another role', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'POLICY_ALLOWS_ALL')).toEqual(['peek on public.shared_notes']);
    expect(findingOf(report, 'POLICY_ALLOWS_ALL', 'peek on public.shared_notes').fix).toBe(
      'ALTER POLICY peek ON public.shared_notes USING (tenant_id = (SELECT tenantry.current_tenant_id()));',
    );
    expect(objectsOf(report, 'POLICY_IGNORES_TENANT')).toEqual(['iso on public.loose_writes']);
    expect(report.ok).toBe(false);
  });

  it('warns about write policies without an explicit WITH CHECK', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'POLICY_WITHOUT_WITH_CHECK')).toEqual([
      'implicit on public.implicit_check',
      'raw on public.raw_setting',
    ]);
    expect(findingOf(report, 'POLICY_WITHOUT_WITH_CHECK', 'implicit on public.implicit_check').severity).toBe(
      'warning',
    );
  });

  it('clears every finding once the fixes are applied', async () => {
    const before = await runDoctor(db.adminUrl);
    const order: FindingCode[] = [
      'POLICY_PER_ROW_CONTEXT',
      'POLICY_READS_SETTING_DIRECTLY',
      'POLICY_WITHOUT_WITH_CHECK',
      'POLICY_ALLOWS_ALL',
      'POLICY_IGNORES_TENANT',
    ];
    expect(new Set(before.findings.map((f) => f.code))).toEqual(new Set(order));
    await applyFixes(db, before, order);
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
    const { rows } = await db.admin
      .query(`select pg_get_expr(polqual, polrelid) as q, pg_get_expr(polwithcheck, polrelid) as c
                                             from pg_policy where polname = 'raw'`);
    expect(rows).toEqual([{ q: isolation, c: isolation }]);
  });
});

describe('doctor on views, SECURITY DEFINER functions and the registry', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createDoctorTestDatabase();
    const app = db.appRole;
    await db.owner.query(`
      create table notes (tenant_id uuid not null, id uuid not null default gen_random_uuid(), body text, primary key (tenant_id, id));
      select tenantry.register_tenant_table('notes');
      create view note_bodies as select tenant_id, body from notes;
      create view safe_bodies with (security_invoker = on) as select tenant_id, body from notes;
      create view hidden_bodies as select tenant_id, body from notes;
      create view off_bodies with (security_invoker = off) as select tenant_id, body from notes;
      create materialized view note_counts as select tenant_id, count(*) from notes group by tenant_id;
      grant select on note_bodies, safe_bodies, off_bodies, note_counts to ${app};
      create function public.count_notes() returns bigint language sql security definer as 'select count(*) from public.notes';
      create function public.loose_path() returns bigint language sql security definer set search_path = public as 'select count(*) from notes';
      grant execute on function public.count_notes(), public.loose_path() to ${app};
      create table plans (id text primary key);
      select tenantry.register_global_table('plans');
      create table feedback (id text primary key);
      select tenantry.register_global_table('feedback', true);
      create table gone (id int);
      select tenantry.register_global_table('gone');
      create table lookup (id int);
      create table open_lookup (id int);
      create table policy_lookup (id int);
      create policy everyone on policy_lookup for select using (true);
      create table truncatable (id int);
      create table legacy (id int);
      grant select on lookup, open_lookup, policy_lookup to ${app};
      grant truncate on truncatable to ${app};
      create table events (tenant_id uuid not null, at date not null, primary key (tenant_id, at)) partition by range (at);
      create table events_2024 partition of events for values from ('2024-01-01') to ('2025-01-01');
      select tenantry.register_tenant_table('events');
    `);
    await db.admin.query(`
      -- the sql_drop event trigger keeps the registry clean; a stale row needs it off
      alter event trigger tenantry_forget_dropped_table disable;
      drop table gone;
      alter event trigger tenantry_forget_dropped_table enable;
      create function public.admin_tool() returns int language sql security definer set search_path = pg_catalog, pg_temp as 'select 1';
      grant insert on plans to ${app};
      alter table open_lookup disable row level security;
      alter table legacy no force row level security;
      create foreign data wrapper ${db.name}_fdw;
      create server ${db.name}_remote foreign data wrapper ${db.name}_fdw;
      create foreign table remote_lookup (id int) server ${db.name}_remote;
      grant select on remote_lookup to ${app};
    `);
  });
  afterAll(() => drop(db));

  it('flags views the app can read that run as their owner, and readable materialized views', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'VIEW_NOT_SECURITY_INVOKER')).toEqual(['public.note_bodies', 'public.off_bodies']);
    expect(findingOf(report, 'VIEW_NOT_SECURITY_INVOKER', 'public.note_bodies').fix).toBe(
      'ALTER VIEW public.note_bodies SET (security_invoker = true);',
    );
    expect(objectsOf(report, 'MATERIALIZED_VIEW_REACHABLE')).toEqual(['public.note_counts']);
  });

  it('flags SECURITY DEFINER functions without search_path, without pg_temp last, or executable by PUBLIC', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'DEFINER_WITHOUT_SEARCH_PATH')).toEqual(['public.count_notes()']);
    expect(findingOf(report, 'DEFINER_WITHOUT_SEARCH_PATH', 'public.count_notes()').fix).toBe(
      'ALTER FUNCTION public.count_notes() SET search_path = pg_catalog, pg_temp;',
    );
    expect(objectsOf(report, 'DEFINER_SEARCH_PATH_UNSAFE')).toEqual(['public.loose_path()']);
    expect(findingOf(report, 'DEFINER_SEARCH_PATH_UNSAFE', 'public.loose_path()').fix).toBe(
      'ALTER FUNCTION public.loose_path() SET search_path = public, pg_temp;',
    );
    expect(objectsOf(report, 'DEFINER_EXECUTABLE_BY_PUBLIC')).toEqual(['public.admin_tool()']);
    expect(findingOf(report, 'DEFINER_EXECUTABLE_BY_PUBLIC', 'public.admin_tool()').fix).toBe(
      'REVOKE EXECUTE ON FUNCTION public.admin_tool() FROM PUBLIC;',
    );
  });

  it('flags a read-only global table the app can write, and a registry row whose table is gone', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'GLOBAL_TABLE_WRITABLE')).toEqual(['public.plans']);
    expect(findingOf(report, 'GLOBAL_TABLE_WRITABLE', 'public.plans').fix).toBe(
      `REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLE public.plans FROM ${db.appRole};`,
    );
    const stale = report.findings.filter((f) => f.code === 'REGISTRY_STALE_ENTRY');
    expect(stale).toHaveLength(1);
    expect(stale[0]!.fix).toMatch(/^DELETE FROM tenantry\.registered_tables WHERE relid::oid = \d+;$/);
  });

  it('flags unregistered tables the app can reach, and unregistered tables without forced RLS', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'UNREGISTERED_TABLE_REACHABLE')).toEqual([
      'public.open_lookup',
      'public.policy_lookup',
      'public.remote_lookup',
      'public.truncatable',
    ]);
    expect(findingOf(report, 'UNREGISTERED_TABLE_REACHABLE', 'public.remote_lookup').message).toContain(
      'foreign table',
    );
    expect(findingOf(report, 'UNREGISTERED_TABLE_REACHABLE', 'public.truncatable').message).toContain('TRUNCATE');
    expect(objectsOf(report, 'UNREGISTERED_TABLE_NOT_FORCED')).toEqual(['public.legacy', 'public.open_lookup']);
    expect(findingOf(report, 'UNREGISTERED_TABLE_NOT_FORCED', 'public.legacy').severity).toBe('warning');
    // partitions of a registered table are reached through it only
    expect(report.findings.filter((f) => f.object.includes('events'))).toEqual([]);
  });

  it('clears every finding once the fixes are applied', async () => {
    const before = await runDoctor(db.adminUrl);
    const codes: FindingCode[] = [
      'VIEW_NOT_SECURITY_INVOKER',
      'MATERIALIZED_VIEW_REACHABLE',
      'DEFINER_WITHOUT_SEARCH_PATH',
      'DEFINER_SEARCH_PATH_UNSAFE',
      'DEFINER_EXECUTABLE_BY_PUBLIC',
      'GLOBAL_TABLE_WRITABLE',
      'REGISTRY_STALE_ENTRY',
      'UNREGISTERED_TABLE_REACHABLE',
      'UNREGISTERED_TABLE_NOT_FORCED',
    ];
    expect(new Set(before.findings.map((f) => f.code))).toEqual(new Set([...codes, 'DEFINER_NOT_REVIEWED']));
    await applyFixes(db, before, codes);
    // granted to the app on purpose, each still counts every tenant's notes: a reviewer must say so
    const fixed = await runDoctor(db.adminUrl);
    expect(fixed.findings.map((f) => `${f.code} ${f.object}`)).toEqual([
      'DEFINER_NOT_REVIEWED public.count_notes()',
      'DEFINER_NOT_REVIEWED public.loose_path()',
    ]);
    const owner = await db.owner.connect();
    try {
      for (const f of fixed.findings) await acceptDefinerFunction(owner, f.object, 'global statistics, no tenant data');
    } finally {
      owner.release();
    }
    expect(await runDoctor(db.adminUrl)).toEqual({ ok: true, findings: [] });
  });
});

describe('doctor on settings and install state', () => {
  let db: TestDatabase;
  const forged = `forged-${randomBytes(6).toString('hex')}`;
  beforeAll(async () => {
    db = await createDoctorTestDatabase();
    await db.admin.query(`
      alter role ${db.appRole} set tenantry.context = '${forged}';
      alter role ${db.ownerRole} in database ${db.name} set tenantry.context = '${forged}';
      alter database ${db.name} set tenantry.context = '${forged}';
      alter event trigger tenantry_lock_new_table disable;
      delete from tenantry_private.context_key;
    `);
  });
  afterAll(() => drop(db));

  it('flags a tenant context stored for a role, a role in a database and a database, without printing it', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'PERSISTENT_TENANT_CONTEXT')).toEqual(
      [`role ${db.appRole}`, `role ${db.ownerRole} in database ${db.name}`, `database ${db.name}`].sort(),
    );
    expect(findingOf(report, 'PERSISTENT_TENANT_CONTEXT', `role ${db.appRole}`).fix).toBe(
      `ALTER ROLE ${db.appRole} RESET tenantry.context;`,
    );
    expect(JSON.stringify(report)).not.toContain(forged);
    expect(formatDoctorReport(report)).not.toContain(forged);
  });

  it('warns about a disabled event trigger and fails on a missing signing key', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(findingOf(report, 'EVENT_TRIGGER_DISABLED', 'tenantry_lock_new_table').severity).toBe('warning');
    expect(findingOf(report, 'CONTEXT_KEY_MISSING', 'tenantry_private.context_key').severity).toBe('error');
    expect(report.ok).toBe(false);
  });

  it('renders one line per finding with its fix, then a summary, and survives JSON', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
    const lines = formatDoctorReport(report).split('\n');
    expect(lines).toHaveLength(report.findings.length + 1);
    expect(lines[0]).toMatch(
      /^ERROR {3}CONTEXT_KEY_MISSING tenantry_private\.context_key: .* Fix: TENANTRY_CONTEXT_SECRET=/,
    );
    expect(lines).toContain(
      `WARNING EVENT_TRIGGER_DISABLED tenantry_lock_new_table: ${findingOf(report, 'EVENT_TRIGGER_DISABLED', 'tenantry_lock_new_table').message} Fix: ALTER EVENT TRIGGER tenantry_lock_new_table ENABLE;`,
    );
    expect(lines.at(-1)).toBe('tenantry doctor: 4 errors, 1 warning.');
  });

  it('clears the SQL-fixable findings once the fixes are applied', async () => {
    const before = await runDoctor(db.adminUrl);
    await applyFixes(db, before, ['PERSISTENT_TENANT_CONTEXT', 'EVENT_TRIGGER_DISABLED']);
    const after = await runDoctor(db.adminUrl);
    expect(after.findings.map((f) => f.code)).toEqual(['CONTEXT_KEY_MISSING']);
  });
});

describe('doctor on an unsigned install without the event trigger', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createDoctorTestDatabase({ contextMode: 'unsigned', eventTrigger: false });
    await db.owner.query(`
      create table notes (tenant_id uuid not null, id uuid not null default gen_random_uuid(), primary key (tenant_id, id));
      select tenantry.register_tenant_table('notes');
    `);
    await db.admin.query(`
      drop policy tenantry_isolation on notes;
      create policy raw on notes using (tenant_id = current_setting('tenantry.context')::uuid)
        with check (tenant_id = current_setting('tenantry.context')::uuid);
    `);
  });
  afterAll(() => drop(db));

  it('warns that the event trigger is missing, and reads of the raw setting are only slow, not forgeable', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(report.findings.map((f) => `${f.severity} ${f.code} ${f.object}`)).toEqual([
      'warning EVENT_TRIGGER_MISSING tenantry_lock_new_table',
      'warning POLICY_PER_ROW_CONTEXT raw on public.notes',
    ]);
    expect(report.ok).toBe(true);
  });
});

describe('doctor and other databases on the same cluster', () => {
  it('ignores a context stored for another database’s role, and still sees one stored for its own app role', async () => {
    const mine = await createDoctorTestDatabase();
    const other = await createDoctorTestDatabase();
    try {
      await other.admin.query(`alter role ${other.appRole} set tenantry.context = 'elsewhere'`);
      expect((await runDoctor(mine.adminUrl)).findings.filter((f) => f.code === 'PERSISTENT_TENANT_CONTEXT')).toEqual(
        [],
      );
      await mine.admin.query(`alter role ${mine.appRole} set tenantry.context = 'here'`);
      expect(objectsOf(await runDoctor(mine.adminUrl), 'PERSISTENT_TENANT_CONTEXT')).toEqual([`role ${mine.appRole}`]);
    } finally {
      await drop(mine);
      await drop(other);
    }
  });
});
