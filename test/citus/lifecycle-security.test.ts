// Suspend, resume, soft-delete and restore, the context secret's rotation, and the doctor's
// finding for the app role's visible statement text, on a Citus cluster
// (a fresh database of it: `sec_holds_<random>`, dropped after). On Citus the holds table
// (tenantry.inactive_tenants) and the key (tenantry_private.context_key) are reference tables,
// where Citus refuses `now()` in the DO UPDATE SET clause of an INSERT (the suspend trigger
// failed with 0A000) and a void column joined into an UPDATE (the rotation failed with 42P16).
// Every refusal is checked from the other side: the held tenant's rows unchanged, the other
// tenant still served. Runs when CITUS_URL names a coordinator; skipped otherwise.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { TenantCatalog } from '../../src/catalog/tenant-catalog.js';
import { runAs } from '../../src/context/tenant-context.js';
import { TenantPool } from '../../src/data/tenant-pool.js';
import { TenantPurger } from '../../src/lifecycle/purge/tenant-purger.js';
import { runDoctor } from '../../src/policy/doctor.js';
import { install } from '../../src/policy/installer.js';
import { rotateContextSecret } from '../../src/policy/rotation.js';
import {
  citusAppUrl,
  CITUS_SECRET,
  CITUS_URL,
  createCitusDatabase,
  sqlStateOf,
  type CitusTestDatabase,
} from './citus-support.js';

const NOTES = 'sec_holds_notes';

describe.skipIf(!CITUS_URL)(
  CITUS_URL ? 'lifecycle and security on Citus' : 'lifecycle and security on Citus (skipped: CITUS_URL is not set)',
  () => {
    let db: CitusTestDatabase;
    let pool: TenantPool;
    let catalog: TenantCatalog;
    let A: string;
    let B: string;
    /** The database's context secret (the rotation test changes it). */
    let secret = CITUS_SECRET;

    const rowsOf = async (tenant: string) =>
      (await db.admin.query(`select id, body from ${NOTES} where tenant_id = $1 order by id`, [tenant])).rows;
    /** What the tenant's context gets: its rows' bodies, or the refusal's code. */
    const as = (
      p: TenantPool,
      tenant: string,
      sql = `select body from ${NOTES} where tenant_id = '${tenant}' order by id`,
    ) =>
      runAs(tenant, () => p.query<{ body: string }>(sql)).then(
        (r) => r.rows.map((x) => x.body),
        (error: unknown) => {
          const cause = (error as { cause?: unknown }).cause;
          return sqlStateOf(cause) ?? sqlStateOf(error);
        },
      );
    /** The holds on every node (a reference table: one placement on each). */
    const holdsEverywhere = async () => {
      const out: string[] = [];
      const u = new URL(db.url);
      for (const [host, port] of [
        [u.hostname, Number(u.port)] as const,
        ...db.workers.map((w) => [w.nodename, w.nodeport] as const),
      ]) {
        const c = new pg.Client({ host, port, user: u.username || 'postgres', database: db.name });
        await c.connect();
        try {
          // the reference table's placement on this node (tenantry.inactive_tenants_<shardid>),
          // which Citus hides from pg_class unless told not to
          await c.query('set citus.override_table_visibility = off');
          const { rows } = await c.query<{ t: string }>(
            `select c.oid::regclass::text as t from pg_class c where c.relnamespace = 'tenantry'::regnamespace
              and c.relname ~ '^inactive_tenants(_[0-9]+)?$' and c.relkind = 'r' order by 1 desc limit 1`,
          );
          const held = await c.query<{ s: string }>(
            `select coalesce(string_agg(tenant_key || '=' || status, ',' order by tenant_key), '') as s from ${rows[0]!.t}`,
          );
          out.push(held.rows[0]!.s);
        } finally {
          await c.end();
        }
      }
      return out;
    };

    beforeAll(async () => {
      db = await createCitusDatabase('sec_holds');
      await install(db.url, { citus: true, contextSecret: CITUS_SECRET });
      await db.admin.query(
        `create table ${NOTES} (tenant_id uuid not null, id bigint not null, body text not null, primary key (tenant_id, id))`,
      );
      await db.admin.query(`alter table ${NOTES} owner to tenantry_owner`);
      await db.admin.query(`set role tenantry_owner`);
      await db.admin.query(`select tenantry.citus_tenant_table('${NOTES}')`);
      await db.admin.query(`reset role`);
      catalog = new TenantCatalog(db.admin);
      A = (await catalog.create({ slug: 'acme', name: 'Acme' })).id;
      B = (await catalog.create({ slug: 'globex', name: 'Globex' })).id;
      for (const [t, p] of [
        [A, 'a'],
        [B, 'b'],
      ] as const)
        await db.admin.query(`insert into ${NOTES} values ($1, 1, $2), ($1, 2, $3)`, [t, `${p}1`, `${p}2`]);
      pool = new TenantPool({ connectionString: citusAppUrl(db.url), contextSecret: CITUS_SECRET, citus: true });
    }, 120_000);

    afterAll(async () => {
      await pool?.end();
      await db?.drop();
    }, 60_000);

    it('suspend, resume, soft-delete and restore: the held tenant refused on the workers (TR005, TR006), the other served; nothing of it changes', async () => {
      const before = await rowsOf(B);
      expect(await as(pool, B)).toEqual(['b1', 'b2']);

      expect((await catalog.suspend('globex')).status).toBe('suspended');
      expect(await holdsEverywhere()).toEqual([`${B}=suspended`, `${B}=suspended`, `${B}=suspended`]);
      // router (one shard) and multi-shard, read and write
      expect(await as(pool, B)).toBe('TR005');
      expect(await as(pool, B, `select body from ${NOTES}`)).toBe('TR005');
      expect(await as(pool, B, `update ${NOTES} set body = 'x' where tenant_id = '${B}'`)).toBe('TR005');
      expect(await as(pool, B, `insert into ${NOTES} values ('${B}', 3, 'x')`)).toBe('TR005');
      expect(await as(pool, A)).toEqual(['a1', 'a2']);
      expect(await rowsOf(B)).toEqual(before);

      // suspended again (a repeated transition): the upsert's DO UPDATE branch
      await db.admin.query(`update tenantry.tenants set status = 'suspended' where id = $1`, [B]);
      expect(await holdsEverywhere()).toEqual([`${B}=suspended`, `${B}=suspended`, `${B}=suspended`]);

      expect((await catalog.resume('globex')).status).toBe('active');
      expect(await holdsEverywhere()).toEqual(['', '', '']);
      expect(await as(pool, B)).toEqual(['b1', 'b2']);

      expect((await catalog.softDelete('globex')).status).toBe('deleted');
      expect(await holdsEverywhere()).toEqual([`${B}=deleted`, `${B}=deleted`, `${B}=deleted`]);
      expect(await as(pool, B)).toBe('TR006');
      expect(await as(pool, B, `delete from ${NOTES}`)).toBe('TR006');
      expect(await as(pool, A)).toEqual(['a1', 'a2']);
      expect(await rowsOf(B)).toEqual(before);

      expect((await catalog.restore('globex')).status).toBe('active');
      expect(await holdsEverywhere()).toEqual(['', '', '']);
      expect(await as(pool, B)).toEqual(['b1', 'b2']);
      expect(await rowsOf(B)).toEqual(before);
    }, 60_000);

    it('rotates the context secret on the reference-table key: old and new accepted during the overlap, the old refused after; nothing of B changes', async () => {
      const before = await rowsOf(B);
      const fresh = randomBytes(32).toString('base64url');
      const r = await rotateContextSecret(db.admin, fresh, { overlapSeconds: 4 });
      expect(r.rotated).toBe(true);
      secret = fresh;
      // the key's placement on every node was rotated with it (two-phase commit)
      const u = new URL(db.url);
      for (const w of db.workers) {
        const c = new pg.Client({
          host: w.nodename,
          port: w.nodeport,
          user: u.username || 'postgres',
          database: db.name,
        });
        await c.connect();
        try {
          await c.query('set citus.override_table_visibility = off');
          const { rows } = await c.query<{ t: string }>(
            `select c.oid::regclass::text as t from pg_class c where c.relnamespace = 'tenantry_private'::regnamespace
              and c.relname ~ '^context_key_[0-9]+$' and c.relkind = 'r'`,
          );
          const k = await c.query<{ n: number }>(
            `select count(*)::int as n from ${rows[0]!.t} where previous_until > now()`,
          );
          expect(k.rows[0]!.n).toBe(1);
        } finally {
          await c.end();
        }
      }
      const next = new TenantPool({ connectionString: citusAppUrl(db.url), contextSecret: fresh, citus: true });
      try {
        expect(await as(pool, A)).toEqual(['a1', 'a2']);
        expect(await as(next, A)).toEqual(['a1', 'a2']);
        await new Promise((resolve) => setTimeout(resolve, 5_000));
        // the old secret's values: refused on the workers, router and multi-shard, reads and writes
        expect(await as(pool, A)).toBe('TR001');
        expect(await as(pool, B, `select body from ${NOTES}`)).toBe('TR001');
        expect(await as(pool, B, `update ${NOTES} set body = 'x' where tenant_id = '${B}'`)).toBe('TR001');
        expect(await as(next, A)).toEqual(['a1', 'a2']);
        expect(await as(next, B)).toEqual(['b1', 'b2']);
        // the same secret again: nothing to rotate
        expect((await rotateContextSecret(db.admin, fresh)).rotated).toBe(false);
      } finally {
        await next.end();
      }
      expect(await rowsOf(B)).toEqual(before);
    }, 60_000);

    it("purges a soft-deleted tenant on Citus: its rows gone from the shards, the 'deleted' hold kept on every node (the trigger's DELETE branch), the other tenant untouched", async () => {
      const C = (await catalog.create({ slug: 'initech', name: 'Initech' })).id;
      await db.admin.query(`insert into ${NOTES} values ($1, 1, 'c1'), ($1, 2, 'c2')`, [C]);
      const beforeA = await rowsOf(A);
      expect((await catalog.softDelete('initech')).status).toBe('deleted');
      const ownerUrl = citusAppUrl(db.url, 'tenantry_owner');
      const owner = new pg.Pool({ connectionString: ownerUrl, max: 3 });
      try {
        const report = await new TenantPurger({ catalog: owner, owners: { home: ownerUrl }, batchSize: 100 }).run(
          'initech',
          { confirm: 'initech', operator: 'ops', ignoreRetention: true },
        );
        expect(report).toBeDefined();
      } finally {
        await owner.end();
      }
      expect(await rowsOf(C)).toEqual([]);
      expect((await holdsEverywhere()).map((h) => h.split(',').filter((x) => x.startsWith(C)))).toEqual([
        [`${C}=deleted`],
        [`${C}=deleted`],
        [`${C}=deleted`],
      ]);
      const current = new TenantPool({ connectionString: citusAppUrl(db.url), contextSecret: secret, citus: true });
      try {
        expect(await as(current, C, `select body from ${NOTES}`)).toBe('TR006');
        expect(await as(current, A)).toEqual(['a1', 'a2']);
      } finally {
        await current.end();
      }
      expect(await rowsOf(A)).toEqual(beforeA);
    }, 90_000);

    it("doctor --citus reports the app role's statement text visible (CITUS_CONTEXT_TEXT_VISIBLE) when track_activities is on for it, and its fix clears it", async () => {
      const codes = async () =>
        (await runDoctor(db.url, { citus: true })).findings
          .filter((f) => f.code === 'CITUS_CONTEXT_TEXT_VISIBLE')
          .map((f) => f.fix);
      expect(await codes()).toEqual([]);
      await db.admin.query(`alter role tenantry_app in database ${db.name} reset track_activities`);
      try {
        const fixes = await codes();
        expect(fixes).toHaveLength(1);
        expect(fixes[0]).toContain('SET track_activities = off');
        // a second app-role session now sees the first one's statements (what the fix hides)
        const victim = new pg.Client({ connectionString: citusAppUrl(db.url) });
        const spy = new pg.Client({ connectionString: citusAppUrl(db.url) });
        await victim.connect();
        await spy.connect();
        try {
          await victim.query(`select 'visible-marker'`);
          const { rows } = await spy.query<{ query: string }>(`select query from pg_stat_activity where pid = $1`, [
            (victim as unknown as { processID: number }).processID,
          ]);
          expect(rows[0]!.query).toContain('visible-marker');
        } finally {
          await victim.end();
          await spy.end();
        }
        for (const statement of fixes[0]!.split(/;\s*/).filter(Boolean)) await db.admin.query(statement);
        expect(await codes()).toEqual([]);
      } finally {
        await db.admin.query(`alter role tenantry_app in database ${db.name} set track_activities = off`);
      }
    }, 60_000);
  },
);
