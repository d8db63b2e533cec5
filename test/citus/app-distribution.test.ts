// The reference server's tables on Citus (TENANTRY_CITUS=1's distribution step, app/citus-distribution.ts):
// a fresh database of the cluster gets `install --citus`, the app migrations and the step; the
// tables are then a reference table (users) and four colocated distributed tables, and two
// tenants' recordings and members are isolated through a Citus TenantPool: A's reads, updates,
// deletes and inserts of B's rows are refused and nothing of B's changes. (The server itself on
// Citus: reference-server.test.ts.) Runs when CITUS_URL is set.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { runAs } from '../../src/context/tenant-context.js';
import { TenantPool } from '../../src/data/tenant-pool.js';
import { install } from '../../src/policy/installer.js';
import { ensureExtensions, migrate } from '../../app/migrate.js';
import { distributeAppTables } from '../../app/citus-distribution.js';
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
    ? "the reference server's tables on Citus"
    : "the reference server's tables on Citus (skipped: CITUS_URL is not set)",
  () => {
    let url: string;
    let admin: pg.Client;
    let pool: TenantPool;
    let cluster: CitusTestDatabase | undefined;
    const users: Record<string, string> = { [A]: randomUUID(), [B]: randomUUID() };

    const rowsOfB = async () =>
      (
        await admin.query(
          `select 'r' as k, id::text, title as v from recordings where tenant_id = $1
           union all select 'm', user_id::text, display_name from members where tenant_id = $1 order by 1, 2`,
          [B],
        )
      ).rows;

    beforeAll(async () => {
      cluster = await createCitusDatabase('app_citus');
      ({ url, admin } = cluster);
      await install(url, { citus: true, contextSecret: CITUS_SECRET });
      await ensureExtensions(url);
      await migrate(citusAppUrl(url, 'tenantry_owner'), { appRole: 'tenantry_app' });
      expect(await distributeAppTables(url)).toEqual([
        'app_private.users',
        'public.members',
        'public.recordings',
        'public.tenant_event_streams',
        'public.tenant_events',
      ]);
      // idempotent
      expect(await distributeAppTables(url)).toEqual([]);
      for (const t of [A, B]) {
        await admin.query(
          `insert into app_private.users (id, email, password_hash, display_name) values ($1, $2, '$2b$10$x', 'u')`,
          [users[t], `${users[t]}@example.com`],
        );
        await admin.query(
          `insert into members (tenant_id, user_id, display_name, email) values ($1, $2, $3, 'm@example.com')`,
          [t, users[t], `member of ${t === A ? 'A' : 'B'}`],
        );
      }
      pool = new TenantPool({ connectionString: citusAppUrl(url), contextSecret: CITUS_SECRET, citus: true, max: 2 });
      for (const t of [A, B])
        await runAs(t, () =>
          pool.query(
            `insert into recordings (owner_id, title, mime_type, duration_seconds) values ($1, $2, 'audio/ogg', 3)`,
            [users[t], `rec of ${t === A ? 'A' : 'B'}`],
          ),
        );
    });

    afterAll(async () => {
      await pool?.end();
      await cluster?.drop();
    });

    it('users is a reference table, the tenant tables are distributed by tenant_id in one colocation group', async () => {
      const { rows } = await admin.query<{ t: string; partmethod: string; colocationid: number }>(
        `select logicalrelid::text as t, partmethod, colocationid from pg_dist_partition
          where logicalrelid::text in ('app_private.users', 'members', 'recordings', 'tenant_event_streams', 'tenant_events')
          order by 1`,
      );
      expect(rows.map((r) => `${r.t} ${r.partmethod}`)).toEqual([
        'app_private.users n',
        'members h',
        'recordings h',
        'tenant_event_streams h',
        'tenant_events h',
      ]);
      expect(new Set(rows.filter((r) => r.partmethod === 'h').map((r) => r.colocationid)).size).toBe(1);
      // still registered as tenant tables (Citus makes members and recordings again under a new
      // oid on the way: they had dropped out of the registry), members pinned
      const registry = await admin.query<{ t: string; pinned: boolean }>(
        `select r.relid::regclass::text as t, r.pinned from tenantry.registered_tables r
          join pg_dist_partition d on d.logicalrelid = r.relid where r.kind = 'tenant' order by 1`,
      );
      expect(registry.rows).toEqual([
        { t: 'members', pinned: true },
        { t: 'recordings', pinned: false },
        { t: 'tenant_event_streams', pinned: false },
        { t: 'tenant_events', pinned: false },
      ]);
    });

    it('install --citus with a support role, twice, after the tables are distributed: clean; the support role gets its read grant and policy in the form Citus accepts; the second leaves the policies alone', async () => {
      // before the fix the second install failed: its support-role step re-registered every
      // tenant table with the InitPlan policy ("unexpected non-SELECT command in SubLink")
      const policies = async () =>
        (
          await admin.query<{ t: string; polname: string; oid: string; qual: string; roles: string }>(
            `select p.polrelid::regclass::text as t, p.polname, p.oid::text as oid, pg_get_expr(p.polqual, p.polrelid) as qual,
                    array_to_string(array(select coalesce((select rolname from pg_roles where oid = r), 'public') from unnest(p.polroles) r), ',') as roles
               from pg_policy p join pg_dist_partition d on d.logicalrelid = p.polrelid and d.partmethod = 'h'
              order by 1, 2`,
          )
        ).rows;
      const options = { citus: true, contextSecret: CITUS_SECRET, supportRole: 'tenantry_support' };
      await install(url, options);
      const first = await policies();
      const tables = [...new Set(first.map((p) => p.t))];
      expect(tables).toEqual(['members', 'recordings', 'tenant_event_streams', 'tenant_events']);
      expect(first.map((p) => `${p.t} ${p.polname} ${p.roles} ${p.qual}`)).toEqual(
        tables.flatMap((t) => [
          `${t} tenantry_isolation public (tenant_id = tenantry.${t === 'members' ? 'home' : 'current'}_tenant_id())`,
          `${t} tenantry_support_read tenantry_support tenantry.support_read_allowed()`,
        ]),
      );
      for (const t of tables) {
        const { rows } = await admin.query<{ sel: boolean; ins: boolean }>(
          `select has_table_privilege('tenantry_support', $1, 'SELECT') as sel,
                  has_table_privilege('tenantry_support', $1, 'INSERT, UPDATE, DELETE, TRUNCATE') as ins`,
          [t],
        );
        expect(rows[0], t).toEqual({ sel: true, ins: false });
      }
      await install(url, options);
      // the same policies (same oids): nothing dropped and made again on the distributed tables
      expect(await policies()).toEqual(first);
    });

    it("A reads only A's members and recordings; A's update, delete and insert into B are refused; nothing of B's changes", async () => {
      const before = await rowsOfB();
      expect(before).toHaveLength(2);
      await runAs(A, async () => {
        const recs = await pool.query<{ title: string }>(`select title from recordings`);
        expect(recs.rows.map((r) => r.title)).toEqual(['rec of A']);
        const mems = await pool.query<{ display_name: string }>(`select display_name from members`);
        expect(mems.rows.map((r) => r.display_name)).toEqual(['member of A']);
        expect((await pool.query(`select * from recordings where tenant_id = $1`, [B])).rows).toEqual([]);
        expect((await pool.query(`update recordings set title = 'x' where tenant_id = $1`, [B])).rowCount).toBe(0);
        expect((await pool.query(`update recordings set title = 'x'`)).rowCount).toBe(1);
        expect((await pool.query(`delete from members where tenant_id = $1`, [B])).rowCount).toBe(0);
        const cross = await pool
          .query(
            `insert into recordings (tenant_id, owner_id, title, mime_type, duration_seconds) values ($1, $2, 'planted', 'audio/ogg', 1)`,
            [B, users[B]],
          )
          .then(
            () => 'inserted',
            (e) => sqlStateOf(e),
          );
        expect(cross).toBe('42501');
      });
      expect(await rowsOfB()).toEqual(before);
    });
  },
);
