// `tenantry doctor --citus` gives fixes that work in the order given (issue 18, second try-out):
// a registered tenant table with a foreign key to a plain table got two fixes that each needed
// the other first (create_reference_table refused the InitPlan policy of the table it turned into
// a Citus local table; tenantry.citus_tenant_table refused the plain referenced table), and a
// table with an identity column could not be distributed at all once it was a Citus local table.
// Here the findings' fixes are run as given, statement by statement, on a fresh database of the
// cluster: every table distributes, stays registered, and the doctor is clean. A tenant table
// whose FORCE was lifted gets `tenantry citus prepare` as its fix, which puts FORCE back on the
// table and on every shard. Runs when CITUS_URL is set.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { install } from '../../src/policy/installer.js';
import { runDoctor } from '../../src/policy/doctor.js';
import { prepareCitus } from '../../src/citus/citus-install.js';
import { splitStatements } from '../../src/citus/split-statements.js';
import { createCitusDatabase, CITUS_SECRET, CITUS_URL, type CitusTestDatabase } from './citus-support.js';

describe.skipIf(!CITUS_URL)(
  CITUS_URL
    ? 'doctor --citus: fixes in a working order'
    : 'doctor --citus: fixes in a working order (skipped: CITUS_URL is not set)',
  () => {
    let cluster: CitusTestDatabase | undefined;

    beforeAll(async () => {
      cluster = await createCitusDatabase('app_doctor');
      await install(cluster.url, { citus: true, contextSecret: CITUS_SECRET });
      const a = cluster.admin;
      await a.query(`create table public.doc_ref (id uuid primary key)`);
      await a.query(`create table public.doc_ref2 (id uuid primary key)`);
      // no identity column / an identity column
      await a.query(
        `create table public.doc_plain (tenant_id uuid not null, id uuid not null default gen_random_uuid(), ref_id uuid references public.doc_ref (id), primary key (tenant_id, id))`,
      );
      await a.query(
        `create table public.doc_ident (tenant_id uuid not null, id bigint generated always as identity, ref_id uuid references public.doc_ref2 (id), primary key (tenant_id, id))`,
      );
      for (const t of ['doc_ref', 'doc_ref2', 'doc_plain', 'doc_ident']) {
        await a.query(`alter table public.${t} owner to tenantry_owner`);
        if (t.startsWith('doc_ref')) continue;
        await a.query(`create index on public.${t} (ref_id)`);
      }
      await a.query(`set role tenantry_owner`);
      for (const t of ['doc_plain', 'doc_ident']) await a.query(`select tenantry.register_tenant_table('public.${t}')`);
      await a.query(`reset role`);
    }, 180_000);

    afterAll(async () => {
      await cluster?.drop();
    }, 60_000);

    const citusFindings = async () =>
      (await runDoctor(cluster!.url, { citus: true })).findings.filter(
        (f) => f.object.includes('doc_') || f.code.startsWith('CITUS_'),
      );

    it("a tenant table's foreign key to a plain table: the fixes, run as given, distribute it (with or without an identity column)", async () => {
      const before = await citusFindings();
      expect(before.map((f) => `${f.code} ${f.object}`)).toEqual([
        'CITUS_FOREIGN_KEY_TO_LOCAL_TABLE doc_ident_ref_id_fkey on public.doc_ident',
        'CITUS_FOREIGN_KEY_TO_LOCAL_TABLE doc_plain_ref_id_fkey on public.doc_plain',
        'CITUS_POLICY_SUBQUERY tenantry_isolation on public.doc_ident',
        'CITUS_POLICY_SUBQUERY tenantry_isolation on public.doc_plain',
      ]);
      const ident = before.find((f) => f.object.endsWith('public.doc_ident'))!;
      expect(ident.message).toContain('identity column');
      expect(ident.fix).toContain('DROP CONSTRAINT doc_ident_ref_id_fkey');
      // the fixes in the order the report gives them, each statement on its own (the citus_*
      // functions as the owner role, as the fix says)
      const a = cluster!.admin;
      for (const f of before)
        for (const statement of await splitStatements(f.fix)) {
          const asOwner = statement.includes('tenantry.citus_');
          if (asOwner) await a.query('set role tenantry_owner');
          try {
            await a.query(statement);
          } finally {
            if (asOwner) await a.query('reset role');
          }
        }
      const { rows } = await a.query<{ t: string; m: string }>(
        `select logicalrelid::text as t, partmethod::text || repmodel::text as m from pg_dist_partition
          where logicalrelid::text like 'doc%' order by 1`,
      );
      expect(rows.map((r) => `${r.t} ${r.m}`)).toEqual(['doc_ident hs', 'doc_plain hs', 'doc_ref nt', 'doc_ref2 nt']);
      // still registered (Citus made doc_plain again under a new oid), the keys back
      const registered = await a.query<{ t: string }>(
        `select relid::regclass::text as t from tenantry.registered_tables where relid::regclass::text like 'doc%' order by 1`,
      );
      expect(registered.rows.map((r) => r.t)).toEqual(['doc_ident', 'doc_plain']);
      const keys = await a.query<{ n: number }>(
        `select count(*)::int as n from pg_constraint where contype = 'f' and conname in ('doc_plain_ref_id_fkey', 'doc_ident_ref_id_fkey')`,
      );
      expect(keys.rows).toEqual([{ n: 2 }]);
      expect(await citusFindings()).toEqual([]);
    }, 240_000);

    it('FORCE lifted from a distributed tenant table: the fix is tenantry citus prepare, which puts it back on the table and its shards', async () => {
      const a = cluster!.admin;
      await a.query(`alter table public.doc_plain no force row level security`);
      const forced = async () => {
        const coordinator = await a.query<{ f: boolean }>(
          `select relforcerowsecurity as f from pg_class where oid = 'public.doc_plain'::regclass`,
        );
        const shards = await a.query<{ result: string }>(
          `select result from run_command_on_placements('public.doc_plain', $$select relforcerowsecurity from pg_class where oid = '%s'::regclass$$)`,
        );
        return [coordinator.rows[0]!.f, ...new Set(shards.rows.map((r) => r.result))];
      };
      expect((await forced())[0]).toBe(false);
      const finding = (await citusFindings()).find((f) => f.code === 'TENANT_TABLE_RLS_NOT_FORCED');
      expect(finding?.object).toBe('public.doc_plain');
      expect(finding?.fix).toContain('tenantry citus prepare');
      expect(finding?.fix).not.toContain('ALTER TABLE');
      await prepareCitus(a as never, {
        appRole: 'tenantry_app',
        ownerRole: 'tenantry_owner',
        contextMode: 'signed',
        eventTrigger: true,
      });
      expect(await forced()).toEqual([true, 't']);
      expect(await citusFindings()).toEqual([]);
    }, 180_000);
  },
);
