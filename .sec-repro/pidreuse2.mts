// /work/tryout-citus/tryout/pidreuse.ts, against the fixed install (sec_iso): the spy reads pg_stat_activity
import { TenantPool } from '/work/wt-citus-sec/src/data/tenant-pool.ts';
import { runAs } from '/work/wt-citus-sec/src/context/tenant-context.ts';
import pg from 'pg';
import { writeFileSync } from 'node:fs';
const url = process.env.APP_URL!;
const admin = new pg.Client({ connectionString: process.env.ADMIN_URL! }); await admin.connect();
const B = (await admin.query("select tenant_id::text t from citus_iso_notes where body = 'b1'")).rows[0].t;
const victim = new TenantPool({ connectionString: url, contextSecret: process.env.TENANTRY_CONTEXT_SECRET!, citus: true, max: 1 } as any);
const spy = new pg.Client({ connectionString: url }); await spy.connect();
let P = 0;
await runAs(B, async () => {
  const c = await victim.connect();
  await c.query('BEGIN');
  P = (c as any).processID;
  const r = await spy.query("select pid, state, query from pg_stat_activity where query like 'SET LOCAL tenantry.context%' or pid = $1", [P]);
  console.log('spy sees', r.rows.map((x) => [x.pid, x.state, x.query.slice(0, 90)]));
  const cs = await spy.query("select global_pid, query from citus_stat_activity where query like '%tenantry.context%'").then((r) => r.rows, (e) => 'citus_stat_activity refused: ' + e.code);
  console.log('spy, citus_stat_activity:', cs);
  await c.query('COMMIT'); c.release();
});
await victim.end();
await spy.end();
console.log('victim pid', P, ': the spy has no value to replay');
await admin.end();
