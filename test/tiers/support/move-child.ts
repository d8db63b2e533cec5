// A mover in its own process, for the crash tests: it SIGKILLs itself right after the step named
// in MOVE_CRASH_AT is done and recorded. Input: MOVE_ENV (JSON: owner url, move id, crash step).
import pg from 'pg';
import { Placements } from '../../../src/tiers/placements.js';
import { TenantMover } from '../../../src/tiers/move/tenant-mover.js';

const env = JSON.parse(process.env.MOVE_ENV ?? '{}') as {
  ownerUrl: string;
  moveId: string;
  crashAt: string;
  batchSize: number;
};
const catalog = new pg.Pool({ connectionString: env.ownerUrl, max: 2 });
const placements = new Placements({ catalog, owners: { home: env.ownerUrl } });
const mover = new TenantMover({
  placements,
  catalog,
  batchSize: env.batchSize,
  onProgress: process.env.MOVE_DEBUG ? (p) => console.error(JSON.stringify(p)) : undefined,
  onStep: (step) => {
    if (process.env.MOVE_DEBUG) console.error('step', step);
    if (step === env.crashAt) process.kill(process.pid, 'SIGKILL');
  },
});
await mover.run(env.moveId);
await placements.end();
await catalog.end();
