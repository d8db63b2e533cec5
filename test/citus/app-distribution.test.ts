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
import { citusAppUrl, CITUS_SECRET, CITUS_URL, sqlStateOf } from './citus-support.js';

const DB = `app_citus_${randomUUID().slice(0, 8)}`;
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
    let workers: { nodename: string; nodeport: number }[] = [];
    const users: Record<string, string> = { [A]: randomUUID(), [B]: randomUUID() };

    const onNode = async (host: string, port: number, database: string, sql: string[]) => {
      const c = new pg.Client({ host, port, user: new URL(CITUS_URL!).username || 'postgres', database });
      await c.connect();
      try {
        for (const s of sql) await c.query(s);
      } finally {
        await c.end();
      }
    };
    const rowsOfB = async () =>
      (
        await admin.query(
          `select 'r' as k, id::text, title as v from recordings where tenant_id = $1
           union all select 'm', user_id::text, display_name from members where tenant_id = $1 order by 1, 2`,
          [B],
        )
      ).rows;

    beforeAll(async () => {
      const root = new pg.Client({ connectionString: CITUS_URL });
      await root.connect();
      workers = (
        await root.query<{ nodename: string; nodeport: number }>(
          `select nodename, nodeport from pg_dist_node where groupid <> 0 and isactive order by nodeport`,
        )
      ).rows;
      await root.query(`create database ${DB}`);
      await root.end();
      for (const w of workers)
        await onNode(w.nodename, w.nodeport, 'postgres', [`create database ${DB}`]).then(() =>
          onNode(w.nodename, w.nodeport, DB, ['create extension citus']),
        );
      const u = new URL(CITUS_URL!);
      u.pathname = `/${DB}`;
      url = u.toString();
      admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query('create extension citus');
      await admin.query(`select citus_set_coordinator_host($1, $2)`, [u.hostname, Number(u.port || 5432)]);
      for (const w of workers) await admin.query(`select citus_add_node($1, $2)`, [w.nodename, w.nodeport]);
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
      await admin?.end();
      const root = new pg.Client({ connectionString: CITUS_URL });
      await root.connect();
      await root.query(`drop database if exists ${DB} with (force)`).catch(() => undefined);
      await root.end();
      for (const w of workers)
        await onNode(w.nodename, w.nodeport, 'postgres', [`drop database if exists ${DB} with (force)`]).catch(
          () => undefined,
        );
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
