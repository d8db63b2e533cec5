// residual of the gpid binding: a value taken by a reader who CAN see it (superuser, pg_read_all_stats, a log) replays after pid reuse
import pg from 'pg';
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
const url = process.env.APP_URL!; const secret = process.env.TENANTRY_CONTEXT_SECRET!;
const admin = new pg.Client({ connectionString: process.env.ADMIN_URL! }); await admin.connect();
const B = (await admin.query("select tenant_id::text t from citus_iso_notes where body = 'b1'")).rows[0].t;
const v = new pg.Client({ connectionString: url }); await v.connect();
const { rows: [{ pid: P, gpid }] } = await v.query('select pg_backend_pid() pid, citus_backend_gpid()::text gpid');
const payload = `${B}.${Math.floor(Date.now() / 1000) + 120}`;
const V = `${payload}.${createHmac('sha256', Buffer.from(secret)).update(`${payload}.${gpid}`).digest('hex')}`;
await v.end();
await new Promise((r) => setTimeout(r, 300));
for (let i = 0; i < 30; i++) {
  writeFileSync('/proc/sys/kernel/ns_last_pid', String(P - 1));
  const a = new pg.Client({ connectionString: url }); await a.connect();
  const { rows: [{ pid }] } = await a.query('select pg_backend_pid() pid');
  if (pid !== P) { await a.end(); continue; }
  await a.query('BEGIN'); await a.query(`SET LOCAL tenantry.context = '${V}'`);
  const r = await a.query('select count(*)::int n from citus_iso_notes').then((x) => x.rows[0].n, (e) => e.code);
  await a.query('ROLLBACK'); await a.end();
  console.log(`attempt ${i}: same pid ${pid}; multi-shard count with the copied value:`, r);
  break;
}
await admin.end();
