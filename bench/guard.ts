// Per-check cost of the query guard (not a test): `npx tsx bench/guard.ts`.
// Cached = the same statement text again (the common case: an app sends a few hundred distinct
// texts); uncached = parse + fingerprint + analysis of a text never seen.
import { analyzeStatement, analyzeUncached } from '../src/guard/analyze-statement.js';
import { QueryGuard } from '../src/guard/query-guard.js';
import { TenantTableMap } from '../src/guard/tenant-table-map.js';

const tables = TenantTableMap.from(['public.recordings', 'public.notes', 'public.comments']);
const statements = {
  'simple select': 'select * from recordings where tenant_id = $1 and id = $2',
  'join + subquery': `select n.id, n.body, (select count(*) from comments c where c.note_id = n.id and c.tenant_id = n.tenant_id)
      from notes n join recordings r on r.id = n.recording_id and r.tenant_id = n.tenant_id
     where n.tenant_id = $1 and n.created_at > $2 order by n.created_at desc limit 20`,
  insert: 'insert into notes (tenant_id, recording_id, body) values ($1, $2, $3) returning id',
};

function perCall(fn: (i: number) => void, iterations: number): number {
  for (let i = 0; i < Math.min(iterations, 1_000); i++) fn(i); // warm up
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn(i);
  return Number(process.hrtime.bigint() - start) / iterations / 1_000; // µs
}

await QueryGuard.ready();
const rows: string[] = [
  '| statement | uncached analysis (µs) | cached analysis (µs) | enforce check, cached (µs) | report, sampleRate 0.01 (µs) |',
  '|---|---|---|---|---|',
];
for (const [name, sql] of Object.entries(statements)) {
  const uncached = perCall(() => analyzeUncached(sql, tables), 2_000);
  const cached = perCall(() => analyzeStatement(sql, tables), 200_000);
  const enforce = new QueryGuard({ mode: 'enforce', tables });
  const checked = perCall(() => enforce.check(sql), 200_000);
  const sampled = new QueryGuard({ mode: 'report', tables, sampleRate: 0.01 });
  const sampling = perCall(() => sampled.check(sql), 200_000);
  rows.push(
    `| ${name} | ${uncached.toFixed(1)} | ${cached.toFixed(2)} | ${checked.toFixed(2)} | ${sampling.toFixed(2)} |`,
  );
}
console.log(rows.join('\n'));
console.log(`\nnode ${process.version}, ${process.platform}/${process.arch}`);
