// `tenantry.citus_tenant_table` on a Citus local table: `create_reference_table` makes one of a
// tenant table that references it (by a foreign key); the function distributes it (before the
// fix it counted it as distributed and left it on the coordinator), and keeps it registered
// (Citus makes it again under a new oid, and the event trigger took the old row out of
// tenantry.registered_tables). Then A's reads and writes of B's rows are refused and nothing of
// B's changes. A fresh database of the cluster; runs when CITUS_URL is set.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { runAs } from '../../src/context/tenant-context.js';
import { TenantPool } from '../../src/data/tenant-pool.js';
import { install } from '../../src/policy/installer.js';
import {
  citusAppUrl,
  createCitusDatabase,
  CITUS_SECRET,
  CITUS_URL,
  sqlStateOf,
  type CitusTestDatabase,
} from './citus-support.js';

const A = randomUUID();
const B = randomUUID();

describe.skipIf(!CITUS_URL)(
  CITUS_URL
    ? 'citus_tenant_table on a Citus local table'
    : 'citus_tenant_table on a Citus local table (skipped: CITUS_URL is not set)',
  () => {
    let cluster: CitusTestDatabase | undefined;
    let pool: TenantPool | undefined;

    beforeAll(async () => {
      cluster = await createCitusDatabase('citus_local');
      const { admin, url } = cluster;
      await install(url, { citus: true, contextSecret: CITUS_SECRET });
      await admin.query(`set role tenantry_owner`);
      await admin.query(`create table public.kinds (id int primary key, name text not null)`);
      await admin.query(`create table public.things (
        tenant_id uuid not null default tenantry.current_tenant_id(), id int not null,
        kind int not null references public.kinds (id), body text not null, primary key (tenant_id, id))`);
      await admin.query(`reset role`);
      await admin.query(`select create_reference_table('public.kinds')`);
      await admin.query(`insert into public.kinds values (1, 'note')`);
      const before = await admin.query(
        `select partmethod, repmodel from pg_dist_partition where logicalrelid = 'public.things'::regclass`,
      );
      expect(before.rows).toEqual([{ partmethod: 'n', repmodel: 's' }]); // a Citus local table
      await admin.query(`set role tenantry_owner`);
      await admin.query(`select tenantry.citus_tenant_table('public.things')`);
      await admin.query(`reset role`);
      await admin.query(`insert into public.things values ($1, 1, 1, 'a1'), ($2, 1, 1, 'b1')`, [A, B]);
      pool = new TenantPool({ connectionString: citusAppUrl(url), contextSecret: CITUS_SECRET, citus: true, max: 2 });
    }, 180_000);

    afterAll(async () => {
      await pool?.end();
      await cluster?.drop();
    });

    it('is distributed by tenant_id, registered, with the plain policy', async () => {
      const { admin } = cluster!;
      const dist = await admin.query(
        `select partmethod from pg_dist_partition where logicalrelid = 'public.things'::regclass`,
      );
      expect(dist.rows).toEqual([{ partmethod: 'h' }]);
      const registered = await admin.query(
        `select kind, tenant_column from tenantry.registered_tables where relid = 'public.things'::regclass`,
      );
      expect(registered.rows).toEqual([{ kind: 'tenant', tenant_column: 'tenant_id' }]);
      const policy = await admin.query<{ q: string }>(
        `select pg_get_expr(polqual, polrelid) as q from pg_policy where polrelid = 'public.things'::regclass and polname = 'tenantry_isolation'`,
      );
      expect(policy.rows).toEqual([{ q: '(tenant_id = tenantry.current_tenant_id())' }]);
    });

    it("A reads only A's rows; A's update, delete and insert into B are refused; nothing of B's changes", async () => {
      const { admin } = cluster!;
      const ofB = async () => (await admin.query(`select * from public.things where tenant_id = $1`, [B])).rows;
      const before = await ofB();
      await runAs(A, async () => {
        expect((await pool!.query(`select body from public.things`)).rows).toEqual([{ body: 'a1' }]);
        expect((await pool!.query(`update public.things set body = 'x' where tenant_id = $1`, [B])).rowCount).toBe(0);
        expect((await pool!.query(`delete from public.things where tenant_id = $1`, [B])).rowCount).toBe(0);
        const planted = await pool!
          .query(`insert into public.things (tenant_id, id, kind, body) values ($1, 2, 1, 'planted')`, [B])
          .then(
            () => 'inserted',
            (e) => sqlStateOf(e),
          );
        expect(planted).toBe('42501');
      });
      expect(await ofB()).toEqual(before);
    });
  },
);
