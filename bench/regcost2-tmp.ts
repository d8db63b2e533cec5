import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { ContextSigner } from '../src/data/context-signer.js';
async function main() {
  const c = new pg.Client('postgres://postgres@127.0.0.1:5432/regbench'); await c.connect();
  await c.query('set role regbench_app');
  const signer = new ContextSigner('a-context-secret-of-enough-length-0123456789');
  const vals = Array.from({ length: 1800 }, () => signer.encode(randomUUID()));
  for (const round of [1, 2, 3]) {
    const t0 = process.hrtime.bigint();
    for (const v of vals.slice((round - 1) * 600, round * 600)) await c.query(process.env.Q ?? 'select tenantry.register_context($1)', [v]);
    console.log('µs per call:', (Number(process.hrtime.bigint() - t0) / 1e3 / 600).toFixed(0));
  }
  await c.end();
}
void main();
