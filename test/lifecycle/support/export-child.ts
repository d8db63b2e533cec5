// An export in its own process, for the work-folder sweep test: it SIGKILLs itself half-way
// through streaming a table, leaving its `.tenantry-export-*` folder next to EXPORT_ENV.out.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { exportTenant } from '../../../src/lifecycle/index.js';
import { Placements } from '../../../src/tiers/placements.js';

const env = JSON.parse(process.env.EXPORT_ENV ?? '{}') as { ownerUrl: string; tenant: string; out: string };
const catalog = new pg.Pool({ connectionString: env.ownerUrl, max: 3 });
const placements = new Placements({ catalog, owners: { home: env.ownerUrl } });
// a table's file is opened asynchronously: kill once one is on disk (at the latest when its table is done)
const holdsData = (): boolean => {
  const dir = path.dirname(env.out);
  return readdirSync(dir)
    .filter((n) => n.startsWith('.tenantry-export-'))
    .some((n) => readdirSync(path.join(dir, n)).some((f) => f.endsWith('.copy.gz')));
};
await exportTenant({
  catalog,
  placements,
  tenant: env.tenant,
  out: env.out,
  onProgress: (p) => {
    if (p.step === 'exporting' && p.rows && p.rows > 0 && holdsData()) process.kill(process.pid, 'SIGKILL');
  },
});
await placements.end();
await catalog.end();
