// An import in its own process, for the crash tests: it SIGKILLs itself at the point named in
// IMPORT_ENV.crashAt: 'loading' (half-way through the largest table), 'verified' (every table
// loaded and checked, not committed) or 'switching' (committed, not yet visible).
import pg from 'pg';
import { importTenant, type ImportTenantOptions } from '../../../src/lifecycle/index.js';
import { Placements } from '../../../src/tiers/placements.js';

const env = JSON.parse(process.env.IMPORT_ENV ?? '{}') as {
  ownerUrl: string;
  file: string;
  as: string;
  crashAt: string;
  to?: ImportTenantOptions['to'];
};
const catalog = new pg.Pool({ connectionString: env.ownerUrl, max: 3 });
const placements = new Placements({ catalog, owners: { home: env.ownerUrl } });
await importTenant({
  file: env.file,
  catalog,
  placements,
  as: env.as,
  to: env.to,
  onProgress: (p) => {
    if (env.crashAt === 'loading' && p.step === 'loading' && p.total && p.rows && p.rows > p.total / 2)
      process.kill(process.pid, 'SIGKILL');
  },
  onStep: (step) => {
    if (step === env.crashAt) process.kill(process.pid, 'SIGKILL');
  },
});
await placements.end();
await catalog.end();
