// A tenant's own shard on Citus: isolate_tenant_to_new_shard through isolateTenantShard, then a
// move to the other worker through moveTenantShard (citus_move_shard_placement, logical
// replication), with tenants A and B reading and writing all along: every read returns the
// reader's rows only, and nothing is lost or crosses over. Runs when CITUS_URL is set.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { runAs } from '../../src/context/tenant-context.js';
import { TenantPool } from '../../src/data/tenant-pool.js';
import { install } from '../../src/policy/installer.js';
import { applyCitusPlacement, citusPlacementPolicy, citusPlacementQuestion } from '../../src/citus/citus-placement.js';
import { isolateTenantShard, moveTenantShard, tenantShardPlacement } from '../../src/citus/tenant-shards.js';
import { citusAppUrl, CITUS_SECRET, CITUS_URL } from './citus-support.js';

const T = 'citus_shard_notes';
// auto/force_logical transfers need `output_plugin_libraries` to name citus on every node (PostgreSQL
// 15.20 refuses 'library "citus" may not be used as an output plugin' otherwise): CITUS_TRANSFER_MODE
// chooses (default auto; block_writes: writes to the shard wait during the copy, and still land)
const MODE = (process.env.CITUS_TRANSFER_MODE ?? 'auto') as 'auto' | 'force_logical' | 'block_writes';
const A = randomUUID();
const B = randomUUID();
const C = randomUUID();

describe.skipIf(!CITUS_URL)(
  CITUS_URL ? 'tenant shards on Citus' : 'tenant shards on Citus (skipped: CITUS_URL is not set)',
  () => {
    let admin: pg.Client;
    let pool: TenantPool;

    beforeAll(async () => {
      await install(CITUS_URL!, { citus: true, contextSecret: CITUS_SECRET });
      admin = new pg.Client({ connectionString: CITUS_URL });
      await admin.connect();
      await admin.query(`drop table if exists ${T}`);
      await admin.query(
        `create table ${T} (tenant_id uuid not null, id bigint generated always as identity, body text not null, primary key (tenant_id, id))`,
      );
      await admin.query(`alter table ${T} owner to tenantry_owner`);
      await admin.query(`set role tenantry_owner`);
      await admin.query(`select tenantry.citus_tenant_table('${T}')`);
      await admin.query(`reset role`);
      for (const t of [A, B, C])
        await admin.query(`insert into ${T} (tenant_id, body) select $1, 'seed-' || g from generate_series(1, 200) g`, [
          t,
        ]);
      pool = new TenantPool({ connectionString: citusAppUrl(), contextSecret: CITUS_SECRET, citus: true, max: 4 });
    });

    afterAll(async () => {
      await pool?.end();
      await admin?.end();
    });

    it('isolates A to a shard of its own, moves it to the other worker, and keeps A and B apart throughout', async () => {
      const isolated = await isolateTenantShard(admin, T, A, MODE);
      expect(isolated.isolated).toBe(true);
      expect((await tenantShardPlacement(admin, T, B)).isolated).toBe(false);
      // idempotent
      expect((await isolateTenantShard(admin, T, A, MODE)).shardId).toBe(isolated.shardId);

      const workers = (
        await admin.query<{ nodename: string; nodeport: number }>(
          `select nodename, nodeport from pg_dist_node where groupid <> 0 and isactive order by nodeport`,
        )
      ).rows;
      const target = workers.find((w) => w.nodeport !== isolated.nodePort)!;

      let stop = false;
      const written: Record<string, number> = { [A]: 200, [B]: 200 };
      const traffic = async (tenant: string) => {
        let reads = 0;
        while (!stop) {
          await runAs(tenant, async () => {
            await pool.query(`insert into ${T} (tenant_id, body) values ($1, 'during')`, [tenant]);
            written[tenant]!++;
            const { rows } = await pool.query<{ tenant_id: string }>(`select tenant_id from ${T}`);
            for (const r of rows) expect(r.tenant_id).toBe(tenant);
            expect(rows.length).toBeGreaterThanOrEqual(written[tenant]!);
          });
          reads++;
        }
        return reads;
      };
      const running = [traffic(A), traffic(B)];
      const moving = moveTenantShard(admin, T, A, { nodeName: target.nodename, nodePort: target.nodeport }, MODE);
      const moved = await moving.finally(() => {
        stop = true;
      });
      const reads = await Promise.all(running);
      expect(moved.nodePort).toBe(target.nodeport);
      expect(moved.shardId).toBe(isolated.shardId);
      expect(reads.every((n) => n > 0)).toBe(true);
      for (const t of [A, B]) {
        const { rows } = await admin.query(`select count(*)::int as n from ${T} where tenant_id = $1`, [t]);
        expect(rows[0].n).toBe(written[t]);
      }
      // FORCE ROW LEVEL SECURITY, lifted during a logical transfer, is back
      const forced = await admin.query(`select relforcerowsecurity as f from pg_class where oid = '${T}'::regclass`);
      expect(forced.rows[0].f).toBe(true);
      const onShards = await admin.query<{ result: string }>(
        `select result from run_command_on_placements('${T}', $$select relforcerowsecurity::text from pg_class where oid = '%s'::regclass$$)`,
      );
      expect(new Set(onShards.rows.map((r) => r.result))).toEqual(new Set(['true']));
      // after the move, still only A's rows for A (now served by the other worker)
      const after = await runAs(A, () => pool.query<{ tenant_id: string }>(`select distinct tenant_id from ${T}`));
      expect(after.rows).toEqual([{ tenant_id: A }]);
    });

    it('the placement policy gives a hot tenant a shard of its own on the least loaded worker, and leaves a quiet one', async () => {
      const policy = citusPlacementPolicy();
      const quiet = policy.decide(await citusPlacementQuestion(admin, T, B, { dbShare: 0.05 }));
      expect(quiet.action).toBe('stay');
      const question = await citusPlacementQuestion(admin, T, C, { dbShare: 0.6 });
      expect(question.workers).toHaveLength(2);
      const decision = policy.decide(question);
      expect(decision.action).toBe('isolate');
      const least = [...question.workers].sort((a, b) => a.shardBytes - b.shardBytes)[0]!;
      const here = question.workers.find((w) => w.nodePort === question.current.nodePort)!;
      expect(decision.worker!.nodePort).toBe(
        here.shardBytes <= least.shardBytes ? question.current.nodePort : least.nodePort,
      );
      expect(policy.decide({ ...question, dbShare: undefined, plan: 'enterprise' }).action).toBe('isolate');

      // B reads and writes while C is isolated and moved: B sees B's rows only, C's are all there after
      let stop = false;
      let bRows: number = (await admin.query(`select count(*)::int as n from ${T} where tenant_id = $1`, [B])).rows[0]
        .n;
      let transient = 0;
      const reader = (async () => {
        let reads = 0;
        while (!stop) {
          await runAs(B, async () => {
            await pool.query(`insert into ${T} (tenant_id, body) values ($1, 'during-c')`, [B]);
            bRows++;
            // a multi-shard read planned just before the split swaps C's shard can fail with
            // Citus's "could not find valid entry for shard" (XX000; seen with force_logical):
            // it returns nothing, wrong or otherwise; any other error fails the test
            const read = await pool.query<{ tenant_id: string }>(`select tenant_id from ${T}`).catch((e: Error) => {
              expect(e.message).toMatch(/could not find valid entry for shard/);
              transient++;
              return undefined;
            });
            if (read) {
              for (const r of read.rows) expect(r.tenant_id).toBe(B);
              expect(read.rows.length).toBe(bRows);
            }
          });
          reads++;
        }
        return reads;
      })();
      const placed = await applyCitusPlacement(admin, T, C, decision, MODE).finally(() => {
        stop = true;
      });
      expect(await reader).toBeGreaterThan(transient);
      expect(placed.isolated).toBe(true);
      expect(placed.nodePort).toBe(decision.worker!.nodePort);
      const c = await runAs(C, () => pool.query<{ n: number }>(`select count(*)::int as n from ${T}`));
      expect(c.rows[0]!.n).toBe(200);
    });
  },
);
