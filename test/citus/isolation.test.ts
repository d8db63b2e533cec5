// The isolation suite on a Citus cluster (coordinator + workers), signed mode: cross-tenant
// reads, updates, deletes and inserts, no tenant, forged and replayed context values, for
// router statements (WHERE tenant_id = …: one shard) and multi-shard statements (no tenant
// filter: every shard, the policy on the workers does the isolating), autocommit and inside the
// application's transactions. Every refusal is checked from the other tenant's side too: nothing
// of B's changed. Runs when CITUS_URL names a coordinator (a superuser URL of a database with the
// citus extension and its workers added); skipped otherwise.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createHmac, randomUUID } from 'node:crypto';
import { runAs, runWithoutTenant } from '../../src/context/tenant-context.js';
import { TenantPool } from '../../src/data/tenant-pool.js';
import { install } from '../../src/policy/installer.js';
import { citusAppUrl, CITUS_SECRET, CITUS_URL, sqlStateOf } from './citus-support.js';

const A = randomUUID();
const B = randomUUID();
const NOTES = 'citus_iso_notes';
const ITEMS = 'citus_iso_items';

/** A context value; `gpid`: bound to that backend's global pid, as the pool signs in Citus mode. */
function sign(tenant: string, expiresAt: number, secret: string, gpid?: string): string {
  const payload = `${tenant}.${expiresAt}`;
  const signed = gpid === undefined ? payload : `${payload}.${gpid}`;
  return `${payload}.${createHmac('sha256', Buffer.from(secret, 'utf8')).update(signed).digest('hex')}`;
}

const UNSIGNED_URL = process.env.CITUS_UNSIGNED_URL || undefined;

isolationSuite('signed', CITUS_URL, 'CITUS_URL');
// another database of the same cluster (with citus and the workers added), installed --unsigned
isolationSuite('unsigned', UNSIGNED_URL, 'CITUS_UNSIGNED_URL');

function isolationSuite(mode: 'signed' | 'unsigned', url: string | undefined, variable: string): void {
  describe.skipIf(!url)(
    url ? `isolation on Citus (${mode})` : `isolation on Citus (${mode}; skipped: ${variable} is not set)`,
    () => {
      let admin: pg.Client;
      let pool: TenantPool;

      /** B's rows as the superuser sees them (RLS bypassed): what must never change. */
      const rowsOfB = async () =>
        (
          await admin.query(
            `select 'n' as t, id, body from ${NOTES} where tenant_id = $1 union all select 'i', id, body from ${ITEMS} where tenant_id = $1 order by 1, 2`,
            [B],
          )
        ).rows;

      beforeAll(async () => {
        const options =
          mode === 'signed'
            ? { citus: true, contextSecret: CITUS_SECRET }
            : { citus: true, contextMode: 'unsigned' as const };
        await install(url!, options);
        // a second install re-runs cleanly (roles, schemas, migrations, reference tables, policies)
        await install(url!, options);
        admin = new pg.Client({ connectionString: url });
        await admin.connect();
        for (const t of [ITEMS, NOTES]) await admin.query(`drop table if exists ${t}`);
        await admin.query(
          `create table ${NOTES} (tenant_id uuid not null, id bigint not null, body text not null, primary key (tenant_id, id))`,
        );
        await admin.query(
          `create table ${ITEMS} (tenant_id uuid not null, id bigint not null, body text not null, primary key (tenant_id, id))`,
        );
        await admin.query(`alter table ${NOTES} owner to tenantry_owner`);
        await admin.query(`alter table ${ITEMS} owner to tenantry_owner`);
        // register then distribute (notes), and distribute then register (items)
        await admin.query(`set role tenantry_owner`);
        await admin.query(`select tenantry.citus_tenant_table('${NOTES}')`);
        await admin.query(`reset role`);
        await admin.query(`select create_distributed_table('${ITEMS}', 'tenant_id', colocate_with => '${NOTES}')`);
        await admin.query(`set role tenantry_owner`);
        await admin.query(`select tenantry.citus_tenant_table('${ITEMS}')`);
        await admin.query(`reset role`);
        for (const [t, tenant, prefix] of [
          [NOTES, A, 'a'],
          [NOTES, B, 'b'],
          [ITEMS, A, 'a'],
          [ITEMS, B, 'b'],
        ] as const)
          await admin.query(`insert into ${t} values ($1, 1, $2), ($1, 2, $3)`, [tenant, `${prefix}1`, `${prefix}2`]);
        pool = new TenantPool(
          mode === 'signed'
            ? { connectionString: citusAppUrl(url!), contextSecret: CITUS_SECRET, citus: true }
            : { connectionString: citusAppUrl(url!), contextMode: 'unsigned', citus: true },
        );
      });

      afterAll(async () => {
        await pool?.end();
        await admin?.end();
      });

      it('puts the tables on the workers, colocated, with the policy in the form Citus accepts', async () => {
        const { rows } = await admin.query(
          `select logicalrelid::text as t, partmethod, colocationid from pg_dist_partition where logicalrelid::text in ($1, $2) order by 1`,
          [ITEMS, NOTES],
        );
        expect(rows.map((r) => r.partmethod)).toEqual(['h', 'h']);
        expect(rows[0].colocationid).toBe(rows[1].colocationid);
        const refs = await admin.query(
          `select count(*)::int as n from pg_dist_partition where partmethod = 'n' and logicalrelid in ('tenantry_private.context_key'::regclass, 'tenantry.local_route'::regclass, 'tenantry.local_tenants'::regclass)`,
        );
        expect(refs.rows[0].n).toBe(3);
        const policy = await admin.query(
          `select qual from pg_policies where tablename = $1 and policyname = 'tenantry_isolation'`,
          [NOTES],
        );
        expect(policy.rows[0].qual).toBe('(tenant_id = tenantry.current_tenant_id())');
      });

      it('reads only the tenant in context: multi-shard and router', async () => {
        const all = await runAs(A, () => pool.query(`select body from ${NOTES} order by body`));
        expect(all.rows.map((r) => r.body)).toEqual(['a1', 'a2']);
        const router = await runAs(A, () => pool.query(`select body from ${NOTES} where tenant_id = $1`, [B]));
        expect(router.rows).toEqual([]);
        const joined = await runAs(A, () =>
          pool.query(
            `select n.body as n, i.body as i from ${NOTES} n join ${ITEMS} i using (tenant_id, id) order by 1`,
          ),
        );
        expect(joined.rows).toEqual([
          { n: 'a1', i: 'a1' },
          { n: 'a2', i: 'a2' },
        ]);
        const count = await runAs(B, () => pool.query(`select count(*)::int as n from ${ITEMS}`));
        expect(count.rows[0].n).toBe(2);
      });

      it("refuses A's updates and deletes of B's rows (router and multi-shard); nothing of B's changes", async () => {
        const before = await rowsOfB();
        const updates = await runAs(A, async () => [
          await pool.query(`update ${NOTES} set body = 'x' where tenant_id = $1`, [B]),
          await pool.query(`update ${ITEMS} set body = 'x' where body like 'b%'`),
          await pool.query(`delete from ${NOTES} where tenant_id = $1 and id = 1`, [B]),
          await pool.query(`delete from ${ITEMS} where body = 'b2'`),
        ]);
        expect(updates.map((r) => r.rowCount)).toEqual([0, 0, 0, 0]);
        expect(await rowsOfB()).toEqual(before);
        // A's own rows are writable: the refusal is the policy, not a broken data path
        const own = await runAs(A, () => pool.query(`update ${NOTES} set body = body where tenant_id = $1`, [A]));
        expect(own.rowCount).toBe(2);
      });

      it("refuses A's inserts into B (router), and moving A's row to B (multi-shard update); nothing of B's changes", async () => {
        const before = await rowsOfB();
        const insert = await runAs(A, () =>
          pool.query(`insert into ${NOTES} values ($1, 99, 'forged')`, [B]).then(
            () => 'inserted',
            (e: unknown) => sqlStateOf(e),
          ),
        );
        expect(insert).toBe('42501');
        const move = await runAs(A, () =>
          pool.query(`update ${ITEMS} set tenant_id = $1`, [B]).then(
            () => 'updated',
            (e: unknown) => sqlStateOf(e),
          ),
        );
        // Citus refuses changing the distribution column (0A000) before RLS would (42501): refused either way
        expect(['42501', '0A000']).toContain(move);
        expect(await rowsOfB()).toEqual(before);
        // the pool is still usable after the refusals (the failed blocks were rolled back)
        const again = await runAs(A, () => pool.query(`select count(*)::int as n from ${NOTES}`));
        expect(again.rows[0].n).toBe(2);
      });

      it("the app role cannot run SQL text on the workers (run_command_on_*): nothing of B's read or changed", async () => {
        const before = await rowsOfB();
        const app = new pg.Client({ connectionString: citusAppUrl(url!) });
        await app.connect();
        try {
          for (const call of [
            `select * from run_command_on_workers($$select count(*) from ${NOTES}$$)`,
            `select * from run_command_on_shards('${NOTES}', $$update %s set body = 'pwned'$$)`,
            `select * from run_command_on_placements('${NOTES}', $$select count(*) from %s$$)`,
            `select * from run_command_on_colocated_placements('${NOTES}', '${ITEMS}', $$select 1$$)`,
          ]) {
            const state = await app.query(call).then(
              () => 'ran',
              (e: unknown) => sqlStateOf(e),
            );
            expect(state, call).toBe('42501');
          }
        } finally {
          await app.end();
        }
        expect(await rowsOfB()).toEqual(before);
      });

      it('sees nothing and writes nothing without a tenant', async () => {
        const before = await rowsOfB();
        const read = await runWithoutTenant(() => pool.query(`select * from ${NOTES}`));
        expect(read.rows).toEqual([]);
        const write = await runWithoutTenant(() =>
          pool.query(`insert into ${NOTES} values ($1, 98, 'none')`, [B]).then(
            () => 'inserted',
            (e: unknown) => sqlStateOf(e),
          ),
        );
        expect(write).toBe('42501');
        expect(await rowsOfB()).toEqual(before);
      });

      it("keeps A's context inside the application's transaction, on every worker it touches", async () => {
        const before = await rowsOfB();
        const result = await runAs(A, async () => {
          const client = await pool.connect();
          try {
            await client.query('BEGIN');
            const read = await client.query(`select body from ${NOTES} order by body`);
            const upd = await client.query(`update ${ITEMS} set body = body`);
            const cross = await client.query(`update ${NOTES} set body = 'x' where tenant_id = $1`, [B]);
            await client.query('COMMIT');
            return { read: read.rows.map((r) => r.body), upd: upd.rowCount, cross: cross.rowCount };
          } finally {
            client.release();
          }
        });
        expect(result).toEqual({ read: ['a1', 'a2'], upd: 2, cross: 0 });
        expect(await rowsOfB()).toEqual(before);
      });

      it.skipIf(mode === 'unsigned')(
        'refuses forged and replayed context values on the workers (TR001); nothing of B changes',
        async () => {
          const before = await rowsOfB();
          const raw = new pg.Client({ connectionString: citusAppUrl(url!) });
          await raw.connect();
          const attempt = async (value: string, sql: string) => {
            await raw.query('BEGIN');
            try {
              await raw.query(`SET LOCAL citus.propagate_set_commands = 'local'`);
              await raw.query(`SET LOCAL tenantry.context = '${value}'`);
              const r = await raw.query(sql);
              await raw.query('COMMIT');
              return { rows: r.rows.length, rowCount: r.rowCount };
            } catch (error) {
              await raw.query('ROLLBACK');
              return sqlStateOf(error);
            }
          };
          try {
            const gpid = (await raw.query<{ g: string }>('select citus_backend_gpid()::text as g')).rows[0]!.g;
            const future = Math.floor(Date.now() / 1000) + 300;
            const forged = sign(B, future, 'not-the-secret-not-the-secret-not-the-secret', gpid);
            expect(await attempt(forged, `select * from ${NOTES}`)).toBe('TR001');
            expect(await attempt(forged, `delete from ${ITEMS}`)).toBe('TR001');
            // a value signed with the real secret that expired: replayed later, refused
            const replayed = sign(B, Math.floor(Date.now() / 1000) - 5, CITUS_SECRET, gpid);
            expect(await attempt(replayed, `select * from ${NOTES} where tenant_id = '${B}'`)).toBe('TR001');
            // the bare tenant id (unsigned form) is malformed in signed mode
            expect(await attempt(B, `select * from ${NOTES}`)).toBe('TR001');
            // set_config() is a function call: Citus never carries it to the workers, which then see no tenant
            await raw.query('BEGIN');
            await raw.query(`select set_config('tenantry.context', $1, true)`, [sign(B, future, CITUS_SECRET, gpid)]);
            const viaFunction = await raw.query(`select * from ${NOTES}`);
            await raw.query('ROLLBACK');
            expect(viaFunction.rows).toEqual([]);
          } finally {
            await raw.end();
          }
          expect(await rowsOfB()).toEqual(before);
        },
      );

      it.skipIf(mode === 'unsigned')(
        "a spy of the same role cannot read B's live context value (pg_stat_activity, citus_stat_activity), nor turn the role's track_activities back on; a copy of it (from a log) replayed from its own session: refused (TR001), nothing of B changes",
        async () => {
          const before = await rowsOfB();
          const victim = await pool.connect();
          const spy = new pg.Client({ connectionString: citusAppUrl(url!) });
          await spy.connect();
          try {
            // B's transaction: BEGIN, then the two SET LOCALs after it in the same pipeline. With
            // track_activities on, the last text pg_stat_activity showed for B's backend, to every
            // session of the app role, was that SET LOCAL with the value (the try-out's replay by
            // pid reuse started there). install --citus turns it off for the app role in this
            // database: nothing of B's statements is shown, on the coordinator or the workers
            await runAs(B, () => victim.query('BEGIN'));
            const pid = (victim as unknown as { processID: number }).processID;
            const { rows } = await spy.query<{ query: string | null; state: string | null }>(
              `select query, state from pg_stat_activity where pid = $1`,
              [pid],
            );
            expect(rows, "the spy sees B's backend (the check is not vacuous)").toHaveLength(1);
            expect(rows[0]!.query ?? '').toBe('');
            expect(rows[0]!.state).toBe('disabled');
            // while B's statement runs on the workers: no session of the app role shows a context
            const running = runAs(B, () => victim.query(`select pg_sleep(1.5), (select count(*) from ${NOTES})`));
            const shown: string[] = [];
            for (let i = 0; i < 5; i++) {
              await new Promise((r) => setTimeout(r, 200));
              const all = await spy.query<{ query: string }>(
                `select coalesce(query, '') as query from pg_stat_activity where usename = current_user`,
              );
              shown.push(...all.rows.map((r) => r.query));
              const citus = await spy
                .query<{ query: string }>(`select coalesce(query, '') as query from citus_stat_activity`)
                .then((r) => r.rows.map((x) => x.query))
                .catch((error: unknown) => [`refused: ${sqlStateOf(error)}`]);
              shown.push(...citus);
            }
            await running;
            expect(shown.filter((q) => q.includes('tenantry.context') || q.includes(B))).toEqual([]);
            // a superuser-only setting: the app role cannot show its statements again
            expect(
              await spy.query('set track_activities = on').then(
                () => 'set',
                (e: unknown) => sqlStateOf(e),
              ),
            ).toBe('42501');
            // the value the pool signed for B's backend, as a log (log_statement = 'all') would show it
            const victimGpid = (
              await runAs(B, () => victim.query<{ g: string }>('select citus_backend_gpid()::text as g'))
            ).rows[0]!.g;
            const leaked = sign(B, Math.floor(Date.now() / 1000) + 240, CITUS_SECRET, victimGpid);
            const seen = await runAs(B, () =>
              victim.query<{ body: string }>(`select body from ${NOTES} order by body`),
            );
            expect(seen.rows.map((r) => r.body)).toEqual(['b1', 'b2']);

            const replay = async (sql: string) => {
              await spy.query('BEGIN');
              try {
                await spy.query(`SET LOCAL citus.propagate_set_commands = 'local'`);
                await spy.query(`SET LOCAL tenantry.context = '${leaked}'`);
                const r = await spy.query(sql);
                await spy.query('COMMIT');
                return { rows: r.rows.length, rowCount: r.rowCount };
              } catch (error) {
                await spy.query('ROLLBACK');
                return sqlStateOf(error);
              }
            };
            expect(await replay(`select * from ${NOTES}`)).toBe('TR001');
            expect(await replay(`select * from ${NOTES} where tenant_id = '${B}'`)).toBe('TR001');
            expect(await replay(`update ${NOTES} set body = 'spy' where tenant_id = '${B}'`)).toBe('TR001');
            expect(await replay(`delete from ${ITEMS}`)).toBe('TR001');
            // posing as a Citus connection of B's backend (Citus takes the global pid from such an
            // application_name) does not help on the coordinator
            const gpid = (
              await admin.query<{ g: string }>(`select global_pid::text as g from citus_stat_activity where pid = $1`, [
                pid,
              ])
            ).rows[0]!.g;
            await spy.query(`set application_name = 'citus_internal gpid=${gpid}'`);
            expect((await spy.query<{ g: string }>('select citus_backend_gpid()::text as g')).rows[0]!.g).toBe(gpid);
            // (TR001 from the context check, or Citus itself: "cannot execute a distributed query
            // from a query on a shard", XX000, for a backend that claims to be its own)
            expect(['TR001', 'XX000']).toContain(await replay(`select * from ${NOTES} where tenant_id = '${B}'`));
            expect(['TR001', 'XX000']).toContain(await replay(`select * from ${NOTES}`));
            expect(['TR001', 'XX000']).toContain(await replay(`delete from ${ITEMS}`));
            await spy.query(`reset application_name`);
            // the same value still serves B's own session (it is bound to that backend, not broken)
            const still = await runAs(B, () => victim.query<{ n: number }>(`select count(*)::int as n from ${ITEMS}`));
            expect(still.rows[0]!.n).toBe(2);
            await victim.query('COMMIT');
          } finally {
            victim.release(true);
            await spy.end();
          }
          expect(await rowsOfB()).toEqual(before);
        },
      );

      it("a session-level context planted by injected SQL does not survive into the next tenant's statement", async () => {
        const client = await pool.connect();
        try {
          const future = Math.floor(Date.now() / 1000) + 300;
          await runAs(A, () =>
            client.query(`select set_config('tenantry.context', $1, false)`, [sign(B, future, CITUS_SECRET)]),
          );
          const read = await runAs(A, () => client.query(`select body from ${NOTES} order by body`));
          expect(read.rows.map((r) => r.body)).toEqual(['a1', 'a2']);
          const none = await runWithoutTenant(() => client.query(`select body from ${NOTES}`));
          expect(none.rows).toEqual([]);
        } finally {
          client.release(true);
        }
      });
    },
  );
}
