// One export, import or plain COPY of the export benchmark, in its own process so that its peak RSS is its
// own. Input: EXPORT_RUN (JSON); output: one JSON line on stdout.
import pg from 'pg';
import { createReadStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { exportTenant, importTenant, type ImportTenantOptions } from '../../src/lifecycle/index.js';
import { Placements } from '../../src/tiers/placements.js';

const env = JSON.parse(process.env.EXPORT_RUN ?? '{}') as {
  /** `copy-out`: the baseline, the same COPY statements streamed to nothing (no hash, no gzip, no file). */
  /** `copy-in`: the import's floor, plain COPY FROM STDIN of prepared text files as the owner (rolled back). */
  mode: 'export' | 'import' | 'copy-out' | 'copy-in';
  /** copy-in: table name → COPY text file of its rows, loaded in this order. */
  files?: Array<{ table: string; file: string }>;
  ownerUrl: string;
  tenant: string;
  file: string;
  level?: number;
  as?: string;
  replace?: boolean;
  /** import: false takes the per-row foreign-key path even where replica mode is allowed. */
  replicaLoad?: boolean;
  /** import: false keeps a new tenant's own tables' indexes in place during the load. */
  indexRebuild?: boolean;
  /** import: where to (default: the archive's tier at home). */
  to?: ImportTenantOptions['to'];
  /** copy-in: the database to load (default ownerUrl's), and SQL run in the transaction before and after the COPYs. */
  copyUrl?: string;
  before?: string;
  after?: string;
};
const catalog = new pg.Pool({ connectionString: env.ownerUrl, max: 3 });
const placements = new Placements({ catalog, owners: { home: env.ownerUrl } });
const cpu0 = process.cpuUsage();
const t0 = performance.now();
let bytes = 0;
let rows = 0;
let archiveBytes = 0;
const phases: Record<string, number> = {};
if (env.mode === 'copy-out') {
  const client = await catalog.connect();
  const { rows: t } = await client.query<{ id: string }>('select id from tenantry.tenants where slug = $1', [
    env.tenant,
  ]);
  for (const table of ['projects', 'tasks']) {
    const stream = client.query(
      copyTo(`copy (select * from ${table} where tenant_id = '${t[0]!.id}'::uuid order by tenant_id, id) to stdout`),
    );
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) rows++;
    }
  }
  client.release();
} else if (env.mode === 'copy-in') {
  // one transaction, as the import; rolled back so that the tables stay as seeded for the next runs
  const target = env.copyUrl ? new pg.Client({ connectionString: env.copyUrl }) : undefined;
  await target?.connect();
  const client = target ?? (await catalog.connect());
  await client.query('begin');
  if (env.before) await client.query(env.before);
  for (const { table, file } of env.files ?? []) {
    const copy = client.query(copyFrom(`copy ${table} from stdin`));
    await pipeline(
      createReadStream(file),
      new Transform({
        transform(chunk: Buffer, _enc, done) {
          bytes += chunk.length;
          for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) rows++;
          done(null, chunk);
        },
      }),
      copy,
    );
  }
  if (env.after) await client.query(env.after);
  await client.query('rollback');
  if (target) await target.end();
  else (client as pg.PoolClient).release();
} else if (env.mode === 'export') {
  const r = await exportTenant({ catalog, placements, tenant: env.tenant, out: env.file, compressionLevel: env.level });
  bytes = r.manifest.tables.reduce((n, t) => n + t.bytes, 0);
  rows = r.manifest.tables.reduce((n, t) => n + t.rows, 0);
  archiveBytes = r.archiveBytes;
} else {
  // where the import's time goes: up to the load, COPY in, read-back, then commit and switch
  const mark = (name: string): void => {
    phases[name] ??= performance.now() - t0;
  };
  const r = await importTenant({
    catalog,
    placements,
    file: env.file,
    as: env.as,
    replace: env.replace,
    replicaLoad: env.replicaLoad,
    to: env.to,
    indexRebuild: env.indexRebuild,
    onStep: (step) => mark(step),
    onProgress: (p) => {
      if (p.step === 'verifying') mark('verifying');
    },
  });
  bytes = r.bytes;
  phases.setBased = r.foreignKeyChecks === 'set-based' ? 1 : 0;
  phases.rebuilt = r.indexes === 'rebuilt' ? 1 : 0;
  rows = r.tables.reduce((n, t) => n + t.rows, 0);
}
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
await placements.end();
await catalog.end();
process.stdout.write(
  `${JSON.stringify({ ms, rows, bytes, archiveBytes, cpuMs: (cpu.user + cpu.system) / 1000, maxRssKb: process.resourceUsage().maxRSS, phases })}\n`,
);
